"""Write events off the request path: batched into the store, optionally as JSON lines and to syslog.

The request hook only appends to a list. A background task writes what has
gathered once a second (or sooner when a batch fills) in one transaction, and
`close` writes the rest, so a normal shutdown loses nothing. Text from outside
(URLs, referrers, reasons, comments) is made safe when it is recorded: invalid
UTF-8 and lone surrogates replaced, control characters escaped, long fields
cut with a marker, so one event can never stop the queue.

Each batch goes to the store first; only once it is there is it appended to
the JSON-lines file and handed to syslog (`proxy_addon.syslog`, whose thread
does the sending), so neither can cost the store its copy. `record` also counts
the event in the runtime's metrics (an increment, no await).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from dataclasses import fields, replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from blocklists.store import Event, Store

if TYPE_CHECKING:
    from proxy_addon.metrics import Metrics
    from proxy_addon.syslog import SyslogExport

__all__ = ["EventKind", "EventLog", "safe_text"]

logger = logging.getLogger(__name__)

MAX_FIELD = 4096
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class EventKind(StrEnum):
    WARNING = "warning"  # a warning page was shown
    BLOCK = "block"  # a block page was shown, or a subresource refused
    PROCEED = "proceed"  # a person proceeded past a warning (with their reason, if asked)
    AUDIT = "audit"  # an audit entry matched; the request went on
    REPORT = "report"  # a person reported a mistake
    REFUSED = "refused"  # a tunnel, WebSocket, code or pass refused
    SHARE_WARNED = "share-warned"  # a post holding a warn link was held back (the link, where it went)
    SHARE_BLOCKED = "share-blocked"  # a post holding a block link was held back
    SHARE_SENT = "share-sent-anyway"  # a person sent a held post on anyway
    SHARE_AUDIT = "share-audit"  # a post held an audit link, and went on


def safe_text(value: str, limit: int = MAX_FIELD) -> str:
    """*value* made safe to store and show: valid UTF-8, no control characters, at most *limit*."""
    text = value.encode("utf-8", "replace").decode("utf-8")
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def _safe_event(event: Event) -> Event:
    changes: dict[str, Any] = {
        f.name: safe_text(value) for f in fields(event) if isinstance(value := getattr(event, f.name), str)
    }
    return replace(event, **changes)


class EventLog:
    def __init__(
        self,
        store: Store,
        jsonl: Path | None = None,
        interval: float = 1.0,
        batch: int = 500,
        *,
        syslog: SyslogExport | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        self.jsonl = jsonl
        self.syslog = syslog
        self.metrics = metrics
        self.interval = interval
        self.batch = batch
        self._pending: list[Event] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def record(self, event: Event) -> None:
        """Queue an event; never blocks, never awaits."""
        self._pending.append(_safe_event(event))
        if self.metrics is not None:
            self.metrics.recorded(event)
        if len(self._pending) >= self.batch:
            self._wake.set()

    @property
    def queued(self) -> int:
        """How many events wait to be written to the store."""
        return len(self._pending)

    def start(self) -> None:
        if self.syslog is not None:
            self.syslog.start()
        self._task = asyncio.create_task(self._run(), name="linkwarn-events")

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()
            try:
                await self.flush()
            except Exception:
                logger.exception("linkwarn: writing events failed; will retry")

    async def flush(self) -> None:
        batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            await self.store.add_events(batch)
        except BaseException:
            self._pending[:0] = batch  # keep them for the next try
            raise
        if self.jsonl is not None:
            lines = "".join(json.dumps(event.to_json()) + "\n" for event in batch)
            await asyncio.to_thread(self._append, self.jsonl, lines)
        if self.syslog is not None:
            self.syslog.send(batch)

    @staticmethod
    def _append(path: Path, text: str) -> None:
        with path.open("a", encoding="utf-8") as file:
            file.write(text)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            await self.flush()
        finally:
            if self.syslog is not None:
                await asyncio.to_thread(self.syslog.close)
