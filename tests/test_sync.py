"""Syncing a signed feed from a real HTTP server on 127.0.0.1, and every way it can go wrong."""

from __future__ import annotations

import base64
import dataclasses
import gzip
import hashlib
import json
import os
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from blocklists import Action, Checker, Entry, Store, key_of
from blocklists.feed import (
    MANIFEST,
    MANIFEST_MAGIC,
    MAX_MANIFEST,
    FileRef,
    Manifest,
    SelfTest,
    sign_manifest,
    verify_manifest,
)
from blocklists.feed import _ref_json as ref_json
from blocklists.sync import MIN_POLL, FeedSubscription, FeedSyncer, next_delay
from proxy_addon.status import status_report

from .support.feeds import ENDLESS_CHUNKS, FeedHost, entries, publish_version


class Proxy:
    """The store and index of a proxy following one feed."""

    def __init__(self, store: Store, syncer: FeedSyncer, checker: Checker) -> None:
        self.store, self.syncer, self.checker = store, syncer, checker

    async def listed(self) -> set[str]:
        return {str(e.expression) for e in await self.store.entries()}

    async def action(self, url: str) -> Action | None:
        return (await self.checker.check(url)).action


@pytest.fixture
async def proxy(tmp_path: Path, host: FeedHost, key: Ed25519PrivateKey) -> AsyncIterator[Proxy]:
    async with Store.in_dir(tmp_path / "data") as store, httpx.AsyncClient(timeout=2) as client:
        checker = Checker(store)
        syncer = FeedSyncer(store, FeedSubscription(host.url, (key.public_key(),)), client, checker.refresh)
        yield Proxy(store, syncer, checker)


async def test_first_sync_takes_the_snapshot(proxy: Proxy, host: FeedHost, key: Ed25519PrivateKey) -> None:
    publish_version(host, key, entries("leak.test/", "mirror.test/dump/"))
    outcome = await proxy.syncer.sync_once()
    assert (outcome.result, outcome.version, outcome.entries, outcome.error) == ("snapshot", 1, 2, None)
    assert await proxy.action("https://www.leak.test/") is Action.BLOCK  # the index was rebuilt
    state = await proxy.store.feed_state(host.url)
    assert state is not None
    assert (state.version, state.entries, state.last_error) == (1, 2, None)
    assert not state.stale(time.time())
    again = await proxy.syncer.sync_once()
    assert again.result == "unchanged"
    assert host.server.requests[-1] == "/manifest.json"  # answered 304: nothing else fetched


async def test_a_chain_of_diffs(proxy: Proxy, host: FeedHost, key: Ed25519PrivateKey) -> None:
    publish_version(host, key, entries("a.test/", "b.test/"))
    await proxy.syncer.sync_once()
    publish_version(host, key, entries("a.test/", "b.test/", "c.test/"))
    publish_version(host, key, entries("b.test/", "c.test/", "d.test/"))
    outcome = await proxy.syncer.sync_once()
    assert (outcome.result, outcome.version) == ("diffs", 3)
    assert await proxy.listed() == {"b.test/", "c.test/", "d.test/"}
    assert "/snapshot-3.jsonl.gz" not in host.server.requests
    assert await proxy.action("http://a.test/") is None


async def test_a_missing_diff_falls_back_to_the_snapshot(
    proxy: Proxy, host: FeedHost, key: Ed25519PrivateKey
) -> None:
    await _applied_then_republished(proxy, host, key)
    publish_version(host, key, entries("b.test/", "c.test/"))
    (host.directory / "diff-1-2.jsonl.gz").unlink()
    outcome = await proxy.syncer.sync_once()
    assert (outcome.result, outcome.version, outcome.error) == ("snapshot", 3, None)
    assert await proxy.listed() == {"b.test/", "c.test/"}


async def test_a_tampered_diff_falls_back_to_the_snapshot(
    proxy: Proxy, host: FeedHost, key: Ed25519PrivateKey
) -> None:
    await _applied_then_republished(proxy, host, key)
    diff = host.directory / "diff-1-2.jsonl.gz"
    data = diff.read_bytes()
    diff.write_bytes(data[:12] + bytes([data[12] ^ 0xFF]) + data[13:])
    outcome = await proxy.syncer.sync_once()
    assert (outcome.result, outcome.version) == ("snapshot", 2)
    assert await proxy.listed() == {"a.test/", "b.test/"}


def _varied(numbers: range) -> list[Entry]:
    """Entries that use every field, hosts and pages, plaintext and not."""
    made = []
    for n in numbers:
        expression = f"mirror{n}.test/" if n % 2 else f"dump{n}.example/files/{n}.zip"
        made.append(
            Entry.listing(
                expression,
                (Action.BLOCK, Action.WARN, Action.AUDIT, Action.ALLOW)[n % 4],
                reason=f"Mirror {n} of the mail leak" if n % 3 else "",
                category="leak" if n % 5 else "",
                incident=f"INC-{n}" if n % 7 else "",
                added_at=1_700_000_000 + n,
                expires_at=2_000_000_000 + n if n % 11 == 0 else None,
                require_reason=n % 13 == 0,
            )
        )
    return made


async def _stored(proxy: Proxy) -> set[tuple[object, ...]]:
    return {e.row() for e in await proxy.store.entries()}


async def test_a_snapshot_and_diffs_arrive_whole(
    proxy: Proxy, host: FeedHost, key: Ed25519PrivateKey
) -> None:
    # Large enough to be written many statements at a time, with a remainder.
    first = _varied(range(237))
    publish_version(host, key, first)
    assert (await proxy.syncer.sync_once()).result == "snapshot"
    assert await _stored(proxy) == {e.row() for e in first}
    changed = [
        dataclasses.replace(e, reason=e.reason + " (confirmed)", require_reason=not e.require_reason)
        for e in first[60:90]
    ]
    second = first[90:] + changed + _varied(range(237, 310))  # 60 gone, 30 changed, 73 new
    publish_version(host, key, second)
    outcome = await proxy.syncer.sync_once()
    assert (outcome.result, outcome.entries) == ("diffs", len(second))
    assert await _stored(proxy) == {e.row() for e in second}
    for entry in _varied(range(237, 310)):
        assert await proxy.action(f"http://{entry.expression}") is entry.action


def _resign_with_snapshot(host: FeedHost, key: Ed25519PrivateKey, lines: list[bytes]) -> None:
    """A publisher whose tooling broke: a validly signed manifest, its snapshot made of *lines*."""
    path = host.directory / MANIFEST
    manifest = verify_manifest(path.read_bytes(), [key.public_key()])
    text = b"\n".join(lines) + b"\n"
    data = gzip.compress(text)
    (host.directory / manifest.snapshot.name).write_bytes(data)
    snapshot = FileRef(manifest.snapshot.name, hashlib.sha256(data).hexdigest(), len(data), len(text))
    path.write_bytes(sign_manifest(dataclasses.replace(manifest, snapshot=snapshot, diffs=()), key))


def _line(expression: str, **fields: object) -> bytes:
    return json.dumps(
        {"k": key_of(expression).hex(), "a": "block", "e": expression, "t": 1, **fields}
    ).encode()


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        (_line("b.test/", t="yesterday"), "snapshot-2.jsonl.gz: malformed entry (bad times in entry"),
        (_line("b.test/", x=1.5), "snapshot-2.jsonl.gz: malformed entry (bad times in entry"),
        (_line("b.test/", a="delete"), "snapshot-2.jsonl.gz: malformed entry (bad entry"),
        (_line("b.test/", q="yes"), "snapshot-2.jsonl.gz: malformed entry (bad entry"),
        (_line("b.test/", r=["a", "list"]), "snapshot-2.jsonl.gz: malformed entry (bad entry"),
        (_line("b.test/", e=7), "snapshot-2.jsonl.gz: malformed entry (bad expression in entry"),
        (_line("b.test/", k="00ff"), "snapshot-2.jsonl.gz: malformed entry (bad entry '00ff')"),
        (_line("b.test/", k="not hex"), "snapshot-2.jsonl.gz: malformed entry (non-hexadecimal"),
        (b'{"a": "block", "e": "b.test/"}', "snapshot-2.jsonl.gz: malformed entry ('k')"),
        (b'{"k": "00", oops}', "snapshot-2.jsonl.gz:2: not a JSON line"),
    ],
)
async def test_a_signed_snapshot_with_a_malformed_entry_is_refused(
    proxy: Proxy, host: FeedHost, key: Ed25519PrivateKey, broken: bytes, message: str
) -> None:
    await _applied_then_republished(proxy, host, key)
    good = sorted(_line(f"h{n}.test/") for n in range(120))  # in key order: hex sorts as bytes do
    _resign_with_snapshot(host, key, [good[0], broken, *good[1:]])
    await _refused(proxy, message)
    assert not list((proxy.store.path.parent / "staging").iterdir())  # nothing left behind


async def test_a_snapshot_is_staged_in_a_file_that_goes_away(
    proxy: Proxy, host: FeedHost, key: Ed25519PrivateKey
) -> None:
    staging = proxy.store.path.parent / "staging"
    staging.mkdir()
    leftover, recent = staging / "snapshot-killed.sqlite3", staging / "snapshot-running.sqlite3"
    leftover.write_bytes(b"from a sync killed two hours ago")
    recent.write_bytes(b"another sync's, right now")
    two_hours_ago = time.time() - 7200
    os.utime(leftover, (two_hours_ago, two_hours_ago))
    publish_version(host, key, _varied(range(300)))
    assert (await proxy.syncer.sync_once()).entries == 300
    assert list(staging.iterdir()) == [recent]


async def test_a_snapshot_with_fewer_entries_than_its_manifest_says_is_refused(
    proxy: Proxy, host: FeedHost, key: Ed25519PrivateKey
) -> None:
    await _applied_then_republished(proxy, host, key)
    _resign_with_snapshot(host, key, sorted(_line(f"h{n}.test/") for n in range(120)))  # manifest: 2
    await _refused(proxy, "after the update the list has 120 entries, not 2")


async def test_a_signed_snapshot_out_of_key_order_is_refused(
    proxy: Proxy, host: FeedHost, key: Ed25519PrivateKey
) -> None:
    await _applied_then_republished(proxy, host, key)
    lines = sorted(_line(f"h{n}.test/") for n in range(120))
    lines[70], lines[71] = lines[71], lines[70]
    _resign_with_snapshot(host, key, lines)
    await _refused(proxy, "snapshot-2.jsonl.gz: entries out of key order at")


async def _applied_then_republished(proxy: Proxy, host: FeedHost, key: Ed25519PrivateKey) -> None:
    """Version 1 ({a.test/}) applied, version 2 ({a.test/, b.test/}) published: the refusal tests' start."""
    publish_version(host, key, entries("a.test/"))
    await proxy.syncer.sync_once()
    publish_version(host, key, entries("a.test/", "b.test/"))


async def _refused(proxy: Proxy, message: str, version: int = 1, listed: set[str] | None = None) -> None:
    outcome = await proxy.syncer.sync_once()
    assert outcome.result == "failed"
    assert outcome.error is not None
    assert message in outcome.error
    state = await proxy.store.feed_state(proxy.syncer.subscription.url)
    assert state is not None
    assert state.version == version
    assert state.last_error is not None
    assert message in state.last_error
    assert await proxy.listed() == (listed or {"a.test/"})  # the last good list, untouched
    assert await proxy.action("http://a.test/") is Action.BLOCK


async def test_a_tampered_manifest_is_refused(proxy: Proxy, host: FeedHost, key: Ed25519PrivateKey) -> None:
    await _applied_then_republished(proxy, host, key)
    path = host.directory / MANIFEST
    manifest = verify_manifest(path.read_bytes(), [key.public_key()])
    old, new = f'"expires_at": {manifest.expires_at}', f'"expires_at": {manifest.expires_at + 10**6}'
    path.write_bytes(path.read_bytes().replace(old.encode(), new.encode()))  # a longer life, without the key
    await _refused(proxy, "bad signature")


async def test_a_tampered_snapshot_is_refused(proxy: Proxy, host: FeedHost, key: Ed25519PrivateKey) -> None:
    publish_version(host, key, entries("a.test/"))
    await proxy.syncer.sync_once()
    publish_version(host, key, entries("b.test/"))
    for name in ("snapshot-2.jsonl.gz", "diff-1-2.jsonl.gz"):
        path = host.directory / name
        path.write_bytes(b"\x00" + path.read_bytes()[1:])
    await _refused(proxy, "snapshot-2.jsonl.gz: SHA-256 does not match")


async def test_a_feed_signed_with_another_key_is_refused(
    proxy: Proxy, host: FeedHost, key: Ed25519PrivateKey
) -> None:
    publish_version(host, key, entries("a.test/"))
    await proxy.syncer.sync_once()
    shutil.rmtree(host.directory)
    publish_version(host, Ed25519PrivateKey.generate(), entries("a.test/", "evil-allow.test/"))
    await _refused(proxy, "bad signature")


async def test_an_older_version_is_refused(
    proxy: Proxy, host: FeedHost, key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    publish_version(host, key, entries("a.test/"))
    saved = tmp_path / "v1"
    shutil.copytree(host.directory, saved)
    publish_version(host, key, entries("a.test/", "b.test/"))
    await proxy.syncer.sync_once()
    shutil.rmtree(host.directory)
    shutil.copytree(saved, host.directory)  # an attacker replays the old, validly signed version
    await _refused(
        proxy, "rollback refused: version 1 is older than 2", version=2, listed={"a.test/", "b.test/"}
    )


async def test_an_expired_manifest_is_applied_but_stale(
    proxy: Proxy, host: FeedHost, key: Ed25519PrivateKey
) -> None:
    publish_version(host, key, entries("a.test/"), now=int(time.time()) - 3600, expires_in=60)
    outcome = await proxy.syncer.sync_once()
    assert (outcome.result, outcome.stale) == ("snapshot", True)
    state = await proxy.store.feed_state(host.url)
    assert state is not None
    assert state.stale(time.time())
    assert await proxy.action("http://a.test/") is Action.BLOCK
    publish_version(host, key, entries("a.test/"))  # IT publishes again: same version, new expiry
    refreshed = await proxy.syncer.sync_once()
    assert (refreshed.result, refreshed.version, refreshed.stale) == ("refreshed", 1, False)


async def test_a_truncated_download_is_refused(proxy: Proxy, host: FeedHost, key: Ed25519PrivateKey) -> None:
    publish_version(host, key, entries("a.test/"))
    await proxy.syncer.sync_once()
    publish_version(host, key, entries(*(f"h{n}.test/" for n in range(2000)), "a.test/"))
    host.server.mode = "truncate"
    outcome = await proxy.syncer.sync_once()
    assert outcome.result == "failed"
    assert await proxy.listed() == {"a.test/"}


@pytest.mark.parametrize(
    ("mode", "message"), [("500", "HTTP 500"), ("slow", "timed out"), ("down", "ConnectError")]
)
async def test_an_unreachable_feed_keeps_the_last_good_list(
    proxy: Proxy, host: FeedHost, key: Ed25519PrivateKey, mode: str, message: str
) -> None:
    await _applied_then_republished(proxy, host, key)
    if mode == "down":
        host.stop()
    else:
        host.server.mode = mode
    await _refused(proxy, message)


async def test_a_failing_self_test_is_refused(proxy: Proxy, host: FeedHost, key: Ed25519PrivateKey) -> None:
    await _applied_then_republished(proxy, host, key)
    # A publisher whose tooling broke: the manifest promises what the list does not hold.
    path = host.directory / MANIFEST
    manifest = verify_manifest(path.read_bytes(), [key.public_key()])
    broken = Manifest(**{**{f: getattr(manifest, f) for f in manifest.__slots__},  # type: ignore[attr-defined]
                         "self_tests": (SelfTest(True, url="https://must-match.test/"),)})  # fmt: skip
    path.write_bytes(sign_manifest(broken, key))
    await _refused(proxy, "self-test failed: https://must-match.test/ should match")


async def test_hashed_feed_matches_without_plaintext(
    proxy: Proxy, host: FeedHost, key: Ed25519PrivateKey
) -> None:
    from blocklists import Entry

    listed = [Entry.listing("secret-mirror.test/", Action.BLOCK, reason="Mirror of the mail leak")]
    publish_version(
        host, key, listed, hashed=True,
        self_tests=[(True, "https://www.secret-mirror.test/x"), (False, "https://clean.test/")],
    )  # fmt: skip
    for path in host.directory.iterdir():
        data = path.read_bytes()
        text = gzip.decompress(data) if path.suffix == ".gz" else data
        assert b"secret-mirror" not in text
    outcome = await proxy.syncer.sync_once()
    assert outcome.error is None
    assert await proxy.action("https://www.secret-mirror.test/x") is Action.BLOCK


async def test_local_entries_apply_on_top_of_a_feed(
    proxy: Proxy, host: FeedHost, key: Ed25519PrivateKey
) -> None:
    from blocklists import Entry

    publish_version(host, key, entries("a.test/"))
    await proxy.syncer.sync_once()
    await proxy.store.import_entries("local", [Entry.listing("a.test/", Action.AUDIT)])
    await proxy.checker.reload()
    assert await proxy.action("http://a.test/") is Action.AUDIT  # local, same expression: wins


async def test_another_feed_at_the_same_address_is_refused(
    proxy: Proxy, host: FeedHost, key: Ed25519PrivateKey
) -> None:
    publish_version(host, key, entries("a.test/"))
    await proxy.syncer.sync_once()
    shutil.rmtree(host.directory)
    publish_version(host, key, entries("a.test/"), feed_id="some-other-feed")
    await _refused(proxy, "is not the feed")


def test_a_hashed_feed_refuses_a_reason_that_names_the_address(
    host: FeedHost, key: Ed25519PrivateKey
) -> None:
    from blocklists.feed import FeedError

    with pytest.raises(FeedError, match=r"names secret-mirror\.test, which a hashed feed would then publish"):
        publish_version(host, key, entries("secret-mirror.test/"), hashed=True)
    assert not (host.directory / MANIFEST).exists()


def test_polling_honours_the_minimum_interval_and_backs_off_up_to_a_day() -> None:
    from blocklists.sync import next_delay

    assert next_delay(0, poll_interval=300, min_interval=0, jitter=1.0) == 300
    assert next_delay(0, poll_interval=60, min_interval=900, jitter=1.0) == 900  # the feed asks for less
    assert next_delay(0, poll_interval=300, min_interval=0, jitter=1.1) == pytest.approx(330)
    assert [next_delay(n, 300, 0, 1.0) for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert next_delay(30, 300, 0, 1.0) == 24 * 3600


async def test_a_snapshot_from_before_require_reason_still_applies(
    proxy: Proxy, host: FeedHost, key: Ed25519PrivateKey
) -> None:
    await _applied_then_republished(proxy, host, key)
    lines = sorted([_line("old.test/"), _line("strict.test/", q=True)])  # no "q": false, as before
    _resign_with_snapshot(host, key, lines)
    manifest_path = host.directory / MANIFEST
    manifest = verify_manifest(manifest_path.read_bytes(), [key.public_key()])
    manifest_path.write_bytes(sign_manifest(dataclasses.replace(manifest, entries=2, version=3), key))
    outcome = await proxy.syncer.sync_once()
    assert (outcome.result, outcome.error) == ("snapshot", None)
    assert {(e.expression, e.require_reason) for e in await proxy.store.entries()} == {
        ("old.test/", False), ("strict.test/", True),
    }  # fmt: skip


# -- hostile servers and hostile (but signed) manifests ---------------------------------------------


def _signed(payload: bytes, key: Ed25519PrivateKey) -> bytes:
    """A format-2 manifest file around any *payload*, validly signed."""
    signature = base64.b64encode(key.sign(payload)).decode()
    return MANIFEST_MAGIC + b"\n" + f"sig k {signature}\n".encode() + b"\n" + payload


async def _status_of(proxy: Proxy) -> dict[str, object]:
    report = await status_report(proxy.store, proxy.store.path.parent, time.time())
    (feed,) = report["feeds"]
    return dict(feed)


async def test_a_trickling_server_fails_within_the_deadline(
    proxy: Proxy, host: FeedHost, key: Ed25519PrivateKey
) -> None:
    await _applied_then_republished(proxy, host, key)
    proxy.syncer.deadline = 1.5  # a byte every 0.1 s never trips httpx's read timeout (2 s) alone
    host.server.mode = "trickle"
    started = time.monotonic()
    await _refused(proxy, "not received within 1.5 s")
    assert time.monotonic() - started < 4
    assert (await _status_of(proxy))["state"] == "failing"


async def test_an_endless_manifest_is_cut_off_at_the_limit(
    proxy: Proxy, host: FeedHost, key: Ed25519PrivateKey
) -> None:
    await _applied_then_republished(proxy, host, key)
    host.server.mode = "endless"
    await _refused(proxy, f"more than the {MAX_MANIFEST} bytes allowed")
    # It stopped reading: most of the 100 MB was never sent (the kernel buffers hold a few MB).
    assert host.server.sent < ENDLESS_CHUNKS // 4


async def test_a_compressed_manifest_is_never_decompressed(
    proxy: Proxy, host: FeedHost, key: Ed25519PrivateKey
) -> None:
    # The real manifest, gzip'd under Content-Encoding: decoding it would verify; the raw bytes do not.
    await _applied_then_republished(proxy, host, key)
    host.server.mode = "compressed"
    await _refused(proxy, "not a signed linkwarn manifest")


async def test_a_file_longer_than_its_manifest_says_is_refused_unread(
    proxy: Proxy, host: FeedHost, key: Ed25519PrivateKey
) -> None:
    await _applied_then_republished(proxy, host, key)
    manifest = verify_manifest((host.directory / MANIFEST).read_bytes(), [key.public_key()])
    path = host.directory / manifest.snapshot.name
    path.write_bytes(path.read_bytes() + b"\0" * 5_000_000)
    for _, _, ref in manifest.diffs:
        (host.directory / ref.name).unlink()  # force the snapshot
    await _refused(proxy, f"the server sends {manifest.snapshot.size + 5_000_000} bytes, more than")


async def test_a_deeply_nested_signed_manifest_is_recorded_as_a_failure(
    proxy: Proxy, host: FeedHost, key: Ed25519PrivateKey
) -> None:
    await _applied_then_republished(proxy, host, key)
    (host.directory / MANIFEST).write_bytes(_signed(b"[" * 200_000 + b"]" * 200_000, key))
    await _refused(proxy, "malformed manifest: the signed payload is not JSON (RecursionError)")
    status = await _status_of(proxy)
    assert status["state"] == "failing"
    assert "RecursionError" in str(status["last_error"])


async def test_a_signed_manifest_whose_diffs_loop_is_refused(
    proxy: Proxy, host: FeedHost, key: Ed25519PrivateKey
) -> None:
    await _applied_then_republished(proxy, host, key)
    path = host.directory / MANIFEST
    manifest = verify_manifest(path.read_bytes(), [key.public_key()])
    ((_, _, ref),) = manifest.diffs
    looping = manifest.to_json()
    looping["version"] = 3
    looping["diffs"] = [{"from": 1, "to": 2, **ref_json(ref)}, {"from": 2, "to": 1, **ref_json(ref)}]
    path.write_bytes(_signed(json.dumps(looping).encode(), key))
    started = time.monotonic()
    await _refused(proxy, "goes from version 2 to 1, not forward")
    assert time.monotonic() - started < 2


def test_the_poll_interval_has_a_floor() -> None:
    client = httpx.AsyncClient()
    syncer = FeedSyncer(None, FeedSubscription("http://feed.test/", ()), client, poll_interval=0)  # type: ignore[arg-type]
    assert syncer.poll_interval == MIN_POLL == 30
    assert next_delay(0, 0, 0, 1.0) == 30  # neither the option nor a feed's min_interval of 0 goes below
    assert next_delay(0, 60, 10**9, 1.0) == 86400  # a signed min_interval counts up to a day
    assert next_delay(10_000, 60, 0, 1.0) == 86400  # backing off never overflows
