"""The event log: batched writes, and text made safe before anything is stored."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from blocklists import Store
from blocklists.errors import StoreError
from blocklists.store import Event
from proxy_addon import events
from proxy_addon.events import MAX_FIELD, EventKind, EventLog, safe_text

from .support.disk import fill
from .support.disk import small_disk as mounted_small_disk


def test_safe_text() -> None:
    assert safe_text("a\udcffb") == "a?b"
    assert safe_text("line\r\nnext\x1b[31m") == "line\\x0d\nnext\\x1b[31m"
    long = safe_text("x" * (MAX_FIELD + 10))
    assert len(long) == MAX_FIELD
    assert long.endswith("…")


async def test_an_event_with_hostile_text_is_stored_and_never_blocks_the_queue(tmp_path: Path) -> None:
    async with Store.in_dir(tmp_path) as store:
        log = EventLog(store)
        log.record(
            Event(at=1.0, kind=EventKind.REPORT, client="addr:1", detail="lone \udc80 surrogate", url="\x00")
        )
        log.record(Event(at=2.0, kind=EventKind.PROCEED, client="addr:1", detail="next"))
        await log.flush()
        stored = await store.events()
        assert [e.detail for e in stored] == ["lone ? surrogate", "next"]
        assert stored[0].url == "\\x00"


def _event(at: float = 1.0, **fields: object) -> Event:
    return Event(at=at, kind=EventKind.WARNING, client="addr:1", **fields)  # type: ignore[arg-type]


async def test_an_event_sqlite_refuses_is_dropped_and_counted_the_rest_stored(tmp_path: Path) -> None:
    async with Store.in_dir(tmp_path) as store:
        log = EventLog(store)
        log.record(_event(detail="before"))
        log.record(_event(action=10**30, detail="too big for SQLite"))  # type: ignore[arg-type]
        log.record(_event(at=float("nan"), detail="no time"))  # made a time when recorded
        log.record(_event(detail="after"))
        await log.flush()
        assert sorted(str(e.detail) for e in await store.events()) == ["after", "before", "no time"]
        assert (log.dropped, log.queued, log.write_error) == (1, 0, None)


async def test_the_queue_is_bounded_while_the_store_cannot_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events, "MAX_QUEUED", 50)
    store = Store.in_dir(tmp_path)  # never opened: every write fails
    log = EventLog(store)
    for n in range(80):
        log.record(_event(at=float(n)))
    with pytest.raises(StoreError):
        await log.flush()
    assert (log.queued, log.dropped) == (50, 30)
    assert log.write_error == "the store is not open"
    assert log.health()["write_error"] == "the store is not open"


async def test_a_failed_jsonl_append_loses_nothing(tmp_path: Path) -> None:
    jsonl = tmp_path / "later" / "events.jsonl"
    async with Store.in_dir(tmp_path / "data") as store:
        log = EventLog(store, jsonl)
        log.record(_event(detail="one"))
        await log.flush()  # stored; the file's directory does not exist yet
        assert log.jsonl_error is not None
        assert log.health()["jsonl_queued"] == 1
        log.record(_event(detail="two"))
        await log.flush()
        jsonl.parent.mkdir()
        log.record(_event(detail="three"))
        await log.flush()
        assert [json.loads(line)["detail"] for line in jsonl.read_text().splitlines()] == [
            "one",
            "two",
            "three",
        ]
        assert (log.jsonl_error, log.health()["jsonl_queued"]) == (None, 0)
        assert len(await store.events()) == 3


async def test_retention_deletes_old_events_in_steps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "RETENTION_STEP", 7)
    now = 1_000_000_000.0
    async with Store.in_dir(tmp_path) as store:
        log = EventLog(store, retention_days=90)
        for n in range(20):
            log.record(_event(at=now - 91 * 86400 - n))
        log.record(_event(at=now - 89 * 86400, detail="kept"))
        await log.flush()
        assert await log.prune(now) == 20
        assert [e.detail for e in await store.events()] == ["kept"]
        assert await store.event_summary() == (1, now - 89 * 86400)
        assert await EventLog(store, retention_days=0).prune(now + 10**9) == 0  # 0 keeps everything


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs: a disk that can really fill up."""
    with mounted_small_disk(tmp_path / "small", "2m") as path:
        yield path


async def test_a_full_disk_keeps_events_in_memory_until_there_is_room(small_disk: Path) -> None:
    async with Store.in_dir(small_disk) as store:
        log = EventLog(store)
        filler = small_disk / "filler"
        await asyncio.to_thread(fill, filler)
        for n in range(300):
            log.record(_event(at=float(n), detail="x" * 4000))
        with pytest.raises(sqlite3.OperationalError, match="full"):
            await log.flush()
        assert log.queued == 300
        assert log.write_error is not None
        assert "full" in log.write_error
        await asyncio.to_thread(filler.unlink)
        await log.flush()
        assert (log.queued, log.write_error, log.dropped) == (0, None, 0)
        assert len(await store.events()) == 300
