"""The status report: feeds, entries, the store and the running proxy, for ``linkwarn status`` and the API.

Each feed has one ``state``: ``failing`` when its last sync failed (whatever
its expiry says: a feed is never called fresh after a failed sync),
``stale`` past its expiry, ``never synced``, else ``fresh``.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

from blocklists import Store
from blocklists.store import FeedState

__all__ = ["RUN_FILE", "feed_state_word", "running_proxy", "status_report", "store_bytes"]

RUN_FILE = "run.json"  # written by a running ``linkwarn run``: its pid and addresses


def feed_state_word(feed: FeedState, now: float) -> str:
    """``failing``, ``stale``, ``never synced`` or ``fresh`` (in that order of precedence)."""
    if feed.last_error is not None:
        return "failing"
    if feed.stale(now):
        return "stale"
    return "never synced" if feed.version is None else "fresh"


def store_bytes(path: Path) -> int:
    """The store's size on disk: its file, write-ahead log and shared memory."""
    total = 0
    for suffix in ("", "-wal", "-shm"):
        try:
            total += os.stat(f"{path}{suffix}").st_size
        except OSError:
            continue
    return total


async def status_report(store: Store, data_dir: Path, now: float) -> dict[str, Any]:
    """Each feed's state, version, entries, last success and error; the store's size and events."""
    feeds = await store.feed_states()
    sources = await store.sources()
    events, oldest = await store.event_summary()
    return {
        "feeds": [
            {
                "url": f.url,
                "feed_id": f.feed_id,
                "version": f.version,
                "entries": f.entries,
                "generated_at": f.generated_at,
                "expires_at": f.expires_at,
                "state": feed_state_word(f, now),
                "stale": f.stale(now),
                "last_success": f.last_success,
                "last_attempt": f.last_attempt,
                "last_error": f.last_error,
            }
            for f in feeds
        ],
        "index_entries": await store.count(),
        "sources": {s.name: s.entries for s in sources},
        "store": {
            "path": str(store.path),
            "bytes": await asyncio.to_thread(store_bytes, store.path),
            "events": events,
            "oldest_event": oldest,
        },
        "proxy": running_proxy(data_dir),
    }


def running_proxy(data_dir: Path) -> dict[str, Any] | None:
    """What the ``linkwarn run`` using *data_dir* wrote about itself, if it still runs."""
    try:
        info: dict[str, Any] = json.loads((data_dir / RUN_FILE).read_text())
        os.kill(int(info["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return info
