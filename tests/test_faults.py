"""`linkwarn run` killed (SIGKILL) mid-sync, mid-write and beside a killed import; a feed gone past expiry.

Each test kills or starves a real process and then checks what a restart
finds: the store opens and passes SQLite's integrity check, the last good list
is served, and the events committed before the kill are there.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from blocklists import Store
from blocklists.feed import public_key_text, publish
from blocklists.store import STORE_FILE

from .support.disk import fill, small_disk
from .support.feeds import FeedHost, entries
from .support.servers import ROOT, RunningProxy, Upstream
from .support.synthetic import synthetic_entries

NAVIGATE = {"sec-fetch-dest": "document", "sec-fetch-mode": "navigate"}


def _query(data_dir: Path, sql: str) -> list[tuple[object, ...]]:
    db = sqlite3.connect(data_dir / STORE_FILE)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def _killed(proxy: RunningProxy) -> None:
    proxy.process.send_signal(signal.SIGKILL)
    proxy.process.wait(10)


def _trusting(proxy: RunningProxy) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(proxy.ca_file))


def _wait(condition: object, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError(f"never happened: {what}")


def test_sigkill_during_a_feed_sync_keeps_the_last_good_list(
    tmp_path: Path, host: FeedHost, key: Ed25519PrivateKey, upstreams: tuple[Upstream, Upstream]
) -> None:
    data = tmp_path / "data"
    publish(entries("first.test/"), host.directory, key, now=int(time.time()), min_interval=1)
    feed = ("--feed", host.url, "--feed-key", public_key_text(key.public_key()))
    proxy = RunningProxy.start(data, upstreams[0].port, upstreams[1].port, *feed)
    proxy.wait_for("snapshot, version 1", 30)
    _killed(proxy)
    publish(list(synthetic_entries(300_000)), host.directory, key, now=int(time.time()), min_interval=1)
    for diff in host.directory.glob("diff-*"):
        diff.unlink()  # the snapshot, then: staged by the child, copied in one transaction
    proxy = RunningProxy.start(data, upstreams[0].port, upstreams[1].port, *feed)
    try:
        staging = data / "staging"
        _wait(lambda: staging.is_dir() and any(staging.iterdir()), 60, "the snapshot being staged")
    finally:
        _killed(proxy)  # mid-sync: staging, or copying into the store
    assert _query(data, "PRAGMA integrity_check") == [("ok",)]
    assert _query(data, "SELECT version FROM feeds") == [(1,)]
    proxy = RunningProxy.start(data, upstreams[0].port, upstreams[1].port)  # no feed: what the store holds
    try:
        with httpx.Client(proxy=proxy.url, timeout=30) as client:
            assert client.get("http://first.test/", headers=NAVIGATE).status_code == 303
            assert client.get("http://clean.test/", headers=NAVIGATE).status_code == 200
    finally:
        proxy.stop()


def test_sigkill_during_event_writes_keeps_every_committed_event(
    tmp_path: Path, upstreams: tuple[Upstream, Upstream]
) -> None:
    data = tmp_path / "data"

    async def listed() -> None:
        async with Store.in_dir(data) as store:
            await store.import_entries("local", entries("mirror.test/"))

    asyncio.run(listed())
    proxy = RunningProxy.start(data, upstreams[0].port, upstreams[1].port, "--no-sample")
    try:
        # Following the redirect shows the block page: one event each.
        with httpx.Client(
            proxy=proxy.url, timeout=30, follow_redirects=True, verify=_trusting(proxy)
        ) as client:
            for n in range(200):
                assert client.get(f"http://mirror.test/{n}", headers=NAVIGATE).url.host == "linkwarn.internal"
            time.sleep(2)  # the writer flushes each second
            committed = _query(data, "SELECT count(*) FROM events")[0][0]
            assert isinstance(committed, int)
            assert committed > 0
            for n in range(200):  # more, some still queued when the kill comes
                client.get(f"http://mirror.test/more/{n}", headers=NAVIGATE)
    finally:
        _killed(proxy)
    assert _query(data, "PRAGMA integrity_check") == [("ok",)]
    count = _query(data, "SELECT count(*) FROM events")[0][0]
    assert isinstance(count, int)
    assert count >= committed
    proxy = RunningProxy.start(data, upstreams[0].port, upstreams[1].port, "--no-sample")
    try:
        with httpx.Client(
            proxy=proxy.url, timeout=30, follow_redirects=True, verify=_trusting(proxy)
        ) as client:
            assert client.get("http://mirror.test/after", headers=NAVIGATE).url.host == "linkwarn.internal"
    finally:
        proxy.stop()
    assert _query(data, "SELECT count(*) FROM events")[0][0] == count + 1  # type: ignore[operator]


def test_sigkill_of_an_import_leaves_the_running_proxy_and_the_store_whole(
    tmp_path: Path, upstreams: tuple[Upstream, Upstream]
) -> None:
    data = tmp_path / "data"
    listing = tmp_path / "big.txt"
    listing.write_text("".join(f"host{n}.bulk.test\n" for n in range(400_000)))

    async def listed() -> None:
        async with Store.in_dir(data) as store:
            await store.import_entries("local", entries("mirror.test/"))

    asyncio.run(listed())
    proxy = RunningProxy.start(data, upstreams[0].port, upstreams[1].port, "--no-sample")
    try:
        importer = subprocess.Popen(
            [sys.executable, "-m", "proxy_addon.cli", "import", str(listing), "--data-dir", str(data),
             "--source", "bulk"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(2.5)  # parsing and writing, not yet done
        assert importer.poll() is None, "the import ended before it could be killed: give it more lines"
        importer.send_signal(signal.SIGKILL)
        importer.wait(10)
        with httpx.Client(proxy=proxy.url, timeout=30) as client:
            assert client.get("http://mirror.test/", headers=NAVIGATE).status_code == 303
            assert client.get("http://clean.test/", headers=NAVIGATE).status_code == 200
    finally:
        proxy.stop()
    assert _query(data, "PRAGMA integrity_check") == [("ok",)]
    bulk = _query(data, "SELECT count(*) FROM entries e JOIN sources s ON s.id = e.source_id "
                        "WHERE s.name = 'bulk'")[0][0]  # fmt: skip
    assert bulk in (0, 400_000)  # all of the import or none of it


def test_a_feed_gone_past_its_expiry_is_shown_stale_and_requests_are_still_answered(
    tmp_path: Path, host: FeedHost, key: Ed25519PrivateKey, upstreams: tuple[Upstream, Upstream]
) -> None:
    # A day without the feed server, in seconds: the feed expires 4 s after publishing.
    publish(entries("first.test/"), host.directory, key, now=int(time.time()), expires_in=4, min_interval=1)
    feed = ("--feed", host.url, "--feed-key", public_key_text(key.public_key()))
    proxy = RunningProxy.start(tmp_path / "data", upstreams[0].port, upstreams[1].port, *feed)
    try:
        proxy.wait_for("snapshot, version 1", 30)
        host.stop()
        time.sleep(4.5)
        headers = {"authorization": f"Bearer {proxy.api_token}"}
        with httpx.Client(proxy=proxy.url, timeout=30) as client, httpx.Client(timeout=10) as api:
            status = api.get(proxy.api_url + "/v1/status", headers=headers).json()
            assert status["stale"] is True
            assert [f["state"] for f in status["feeds"]] == ["stale"]
            assert client.get("http://first.test/", headers=NAVIGATE).status_code == 303
            assert client.get("http://clean.test/", headers=NAVIGATE).status_code == 200
        done = subprocess.run(
            [sys.executable, "-m", "proxy_addon.cli", "status", "--data-dir", str(tmp_path / "data")],
            cwd=ROOT, capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert "STALE (past its expiry)" in done.stdout
    finally:
        proxy.stop()


def test_a_full_disk_is_shown_in_status_and_survived(
    tmp_path: Path, upstreams: tuple[Upstream, Upstream]
) -> None:
    with small_disk(tmp_path / "disk", "8m") as disk:
        _full_disk_under_a_running_proxy(disk, upstreams)


def _full_disk_under_a_running_proxy(disk: Path, upstreams: tuple[Upstream, Upstream]) -> None:
    proxy = RunningProxy.start(disk / "data", upstreams[0].port, upstreams[1].port)  # the sample list
    filler = disk / "filler"
    try:
        fill(filler)
        with httpx.Client(proxy=proxy.url, verify=_trusting(proxy), timeout=20) as client:
            for n in range(50):  # block pages shown, each an event the full disk cannot take
                page = client.get(
                    f"http://mirror.test/{n}-" + "x" * 2000, headers=NAVIGATE, follow_redirects=True
                )
                assert page.url.host == "linkwarn.internal"

        def status() -> str:
            return subprocess.run(
                [sys.executable, "-m", "proxy_addon.cli", "status", "--data-dir", str(proxy.data_dir)],
                cwd=ROOT, capture_output=True, text=True, check=False,
            ).stdout  # fmt: skip

        _wait(lambda: "EVENTS ARE NOT BEING STORED" in status(), 20, "linkwarn status names the failure")
        assert "full" in status()
        filler.unlink()
        _wait(
            lambda: "EVENTS ARE NOT BEING STORED" not in status(), 20, "the events written once there is room"
        )
        assert _query(proxy.data_dir, "SELECT count(*) FROM events WHERE kind = 'block'")[0][0] >= 50

    finally:
        proxy.stop()
