"""The status report: feeds, entries and the running proxy, for ``linkwarn status`` and the API."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from blocklists import Store

__all__ = ["RUN_FILE", "running_proxy", "status_report"]

RUN_FILE = "run.json"  # written by a running ``linkwarn run``: its pid and addresses


async def status_report(store: Store, data_dir: Path, now: float) -> dict[str, Any]:
    """Each feed's version, entries, last success and error and staleness; the store's size."""
    feeds = await store.feed_states()
    sources = await store.sources()
    return {
        "feeds": [
            {
                "url": f.url,
                "feed_id": f.feed_id,
                "version": f.version,
                "entries": f.entries,
                "generated_at": f.generated_at,
                "expires_at": f.expires_at,
                "stale": f.stale(now),
                "last_success": f.last_success,
                "last_attempt": f.last_attempt,
                "last_error": f.last_error,
            }
            for f in feeds
        ],
        "index_entries": await store.count(),
        "sources": {s.name: s.entries for s in sources},
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
