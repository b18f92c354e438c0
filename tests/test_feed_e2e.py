"""Large feeds for real: a sync killed mid-apply, and a 1M-entry feed applied under traffic."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from blocklists import Action, Checker, Store
from blocklists.feed import public_key_text, publish
from blocklists.store import STORE_FILE

from .support.feeds import FeedHost, entries
from .support.servers import ROOT, RunningProxy, Upstream
from .support.synthetic import synthetic_entries

NAVIGATE = {"sec-fetch-dest": "document", "sec-fetch-mode": "navigate"}


def _sync_command(data_dir: Path, host: FeedHost, key: Ed25519PrivateKey) -> list[str]:
    return [sys.executable, "-m", "proxy_addon.cli", "sync", "--once", "--data-dir", str(data_dir),
            "--feed", host.url, "--feed-key", public_key_text(key.public_key())]  # fmt: skip


def _store_state(data_dir: Path, url: str) -> tuple[str, int | None, int, int]:
    """integrity_check, the recorded version and entry count, and the entries actually stored."""
    db = sqlite3.connect(data_dir / STORE_FILE)
    try:
        integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
        version, recorded = db.execute("SELECT version, entries FROM feeds WHERE url = ?", (url,)).fetchone()
        stored = db.execute(
            "SELECT count(*) FROM entries WHERE source_id = (SELECT id FROM sources WHERE name = ?)",
            (f"feed:{url}",),
        ).fetchone()[0]
    finally:
        db.close()
    return integrity, version, recorded, stored


def test_a_sync_killed_mid_apply_leaves_the_last_good_list(
    tmp_path: Path, host: FeedHost, key: Ed25519PrivateKey
) -> None:
    data_dir = tmp_path / "data"
    publish(entries("a.test/"), host.directory, key, now=int(time.time()))
    subprocess.run(_sync_command(data_dir, host, key), cwd=ROOT, check=True, capture_output=True)
    assert _store_state(data_dir, host.url) == ("ok", 1, 1, 1)

    big = [*entries("a.test/"), *synthetic_entries(200_000)]
    publish(big, host.directory, key, now=int(time.time()))
    killed_before_commit = 0
    for delay in (0.6, 0.9, 1.2, 1.5, 1.8, 2.1):
        process = subprocess.Popen(_sync_command(data_dir, host, key), cwd=ROOT, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)  # fmt: skip
        time.sleep(delay)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        integrity, version, recorded, stored = _store_state(data_dir, host.url)
        # Whenever the kill landed: an intact store holding a whole version, never half of one.
        assert integrity == "ok"
        assert (version, recorded, stored) in ((1, 1, 1), (2, 200_001, 200_001))
        if version == 1:
            killed_before_commit += 1

            # ...and the last good list still decides.
            async def still_listed() -> Action | None:
                async with Store.in_dir(data_dir) as store:
                    return (await Checker(store).check("http://www.a.test/")).action

            assert asyncio.run(still_listed()) is Action.BLOCK
        else:
            break
    assert killed_before_commit, "no kill landed before the commit; the test proved nothing"
    # Restarted, the sync completes.
    subprocess.run(_sync_command(data_dir, host, key), cwd=ROOT, check=True, capture_output=True)
    assert _store_state(data_dir, host.url) == ("ok", 2, 200_001, 200_001)


def test_requests_are_answered_while_a_1m_entry_feed_is_applied(
    tmp_path: Path, host: FeedHost, key: Ed25519PrivateKey, upstreams: tuple[Upstream, Upstream]
) -> None:
    publish(list(synthetic_entries(1_000_000)), host.directory, key, now=int(time.time()), min_interval=1)
    feed_listed = "http://mirror8.leak8.test/files/8/report.pdf"  # synthetic entry 8

    async def local_list() -> None:  # a local entry, to see listed URLs caught during the sync too
        async with Store.in_dir(tmp_path / "data") as store:
            await store.import_entries("local", entries("mirror.test/"))

    asyncio.run(local_list())
    proxy = RunningProxy.start(
        tmp_path / "data", upstreams[0].port, upstreams[1].port,
        "--feed", host.url, "--feed-key", public_key_text(key.public_key()),
    )  # fmt: skip
    try:
        answered: list[tuple[int, float]] = []
        with httpx.Client(proxy=proxy.url, timeout=30) as client:
            deadline = time.monotonic() + 120
            synced = False
            while time.monotonic() < deadline:
                for url, expect in (("http://clean.test/during-sync", 200), ("http://mirror.test/", 303)):
                    started = time.monotonic()
                    response = client.get(url, headers=NAVIGATE)
                    answered.append((response.status_code, time.monotonic() - started))
                    assert response.status_code == expect, url
                if any("snapshot, version 1, 1000000 entries" in line for line in proxy.output):
                    synced = True
                    break
                time.sleep(0.05)
            assert synced, "".join(proxy.output[-20:])
            proxy.wait_for("index rebuilt, 1000001 entries", 30)  # the feed and the local entry
            assert client.get(feed_listed, headers=NAVIGATE).status_code == 303  # to the warning page
        assert len(answered) >= 10  # traffic flowed the whole time the feed was applied
    finally:
        proxy.stop()
