"""The event log: batched writes, and text made safe before anything is stored."""

from __future__ import annotations

from pathlib import Path

from blocklists import Store
from blocklists.store import Event
from proxy_addon.events import MAX_FIELD, EventKind, EventLog, safe_text


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
