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

Nothing stops the log. A batch the store refuses for one event's sake is
written event by event, and only the events SQLite itself refuses are
dropped (and counted). A store that cannot be written (read-only, disk full)
keeps the batch queued, says why in `write_error`, and is tried again each
second; the queue holds at most `MAX_QUEUED` events, dropping (and counting)
the oldest beyond that, so memory stays bounded however long the outage. The
JSON-lines export keeps its own queue: lines that could not be appended are
appended on the next flush (a half-written batch is cut back first), so a
failed append loses nothing. Events older than *retention_days* are deleted
every hour, a bounded step at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import re
import sqlite3
import time
from dataclasses import fields, replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from blocklists import LinkwarnError
from blocklists.store import Event, Store

if TYPE_CHECKING:
    from proxy_addon.metrics import Metrics
    from proxy_addon.syslog import SyslogExport

__all__ = ["EventKind", "EventLog", "safe_text"]

logger = logging.getLogger(__name__)

MAX_FIELD = 4096
MAX_QUEUED = 100_000  # events (and JSON lines) kept while the store (or file) cannot be written
DEFAULT_RETENTION_DAYS = 90
RETENTION_EVERY = 3600.0  # seconds between deletions of old events
RETENTION_STEP = 10_000  # events deleted per transaction, so events never wait long behind it
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
    if not (isinstance(event.at, int | float) and math.isfinite(event.at)):
        changes["at"] = time.time()
    return replace(event, **changes)


_STORE_DOWN = (LinkwarnError, OSError, sqlite3.OperationalError)  # the store, not an event, is the problem


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
        retention_days: int = DEFAULT_RETENTION_DAYS,
    ) -> None:
        self.store = store
        self.jsonl = jsonl
        self.syslog = syslog
        self.metrics = metrics
        self.interval = interval
        self.batch = batch
        self.retention_days = retention_days  # 0: keep every event
        self.dropped = 0  # events lost: refused by SQLite one by one, or beyond MAX_QUEUED
        self.write_error: str | None = None  # why the store cannot be written now, while it cannot
        self.jsonl_error: str | None = None
        self._pending: list[Event] = []
        self._lines: list[str] = []  # JSON lines stored but not yet appended to the file
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._pruned_at = 0.0

    def record(self, event: Event) -> None:
        """Queue an event; never blocks, never awaits."""
        safe = _safe_event(event)
        self._pending.append(safe)
        if self.metrics is not None:
            self.metrics.recorded(safe)
        if len(self._pending) > MAX_QUEUED:
            excess = len(self._pending) - MAX_QUEUED
            del self._pending[:excess]
            self.dropped += excess
        if len(self._pending) >= self.batch:
            self._wake.set()

    def health(self) -> dict[str, Any]:
        """What the status report says about the log: queued, dropped, and why writing fails."""
        return {
            "queued": len(self._pending),
            "dropped": self.dropped,
            "write_error": self.write_error,
            "jsonl_queued": len(self._lines),
            "jsonl_error": self.jsonl_error,
            "retention_days": self.retention_days,
        }

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
                await self.prune()
            except Exception:
                logger.exception("linkwarn: writing events failed; will retry")

    async def flush(self) -> None:
        """Write what is queued: to the store, then the JSON-lines file and syslog.

        Raises only when the store cannot be written at all (the batch stays queued).
        """
        batch, self._pending = self._pending, []
        if batch:
            try:
                stored = await self._store(batch)
            except BaseException as exc:
                self._pending[:0] = batch  # keep them for the next try
                if isinstance(exc, _STORE_DOWN):
                    if self.write_error is None:
                        logger.error(
                            "linkwarn: events cannot be written (%s); kept in memory, will retry", exc
                        )
                    self.write_error = str(exc) or type(exc).__name__
                raise
            if self.write_error is not None:
                logger.info("linkwarn: events are written again")
            self.write_error = None
            if self.jsonl is not None:
                self._lines += [json.dumps(event.to_json()) + "\n" for event in stored]
                if len(self._lines) > MAX_QUEUED:
                    del self._lines[: len(self._lines) - MAX_QUEUED]
            if self.syslog is not None:
                self.syslog.send(stored)
        await self._export()

    async def _store(self, batch: list[Event]) -> list[Event]:
        """Write *batch*; when SQLite refuses it for an event's sake, write event by event."""
        try:
            await self.store.add_events(batch)
            return batch
        except _STORE_DOWN:
            raise
        except (sqlite3.Error, ValueError, TypeError, OverflowError):
            logger.exception(
                "linkwarn: a batch of %d events was refused; writing them one by one", len(batch)
            )
        stored = []
        for event in batch:
            try:
                await self.store.add_events([event])
            except _STORE_DOWN:
                raise
            except (sqlite3.Error, ValueError, TypeError, OverflowError) as exc:
                self.dropped += 1
                logger.error(
                    "linkwarn: an event (%s) was refused by the store and dropped: %s", event.kind, exc
                )
                continue
            stored.append(event)
        return stored

    async def _export(self) -> None:
        """Append the queued JSON lines; on failure keep them all for the next flush."""
        if self.jsonl is None or not self._lines:
            return
        lines = self._lines
        try:
            await asyncio.to_thread(self._append, self.jsonl, "".join(lines))
        except OSError as exc:
            if self.jsonl_error is None:
                logger.error("linkwarn: appending events to %s failed (%s); will retry", self.jsonl, exc)
            self.jsonl_error = str(exc)
            return
        self.jsonl_error = None
        del self._lines[: len(lines)]

    @staticmethod
    def _append(path: Path, text: str) -> None:
        """Append *text* whole, or cut the file back to where it was: never half a batch."""
        with path.open("a", encoding="utf-8") as file:
            start = file.tell()
            try:
                file.write(text)
                file.flush()
            except OSError:
                with contextlib.suppress(OSError):
                    os.truncate(path, start)
                raise

    async def prune(self, now: float | None = None) -> int:
        """Delete events past the retention (at most hourly unless *now* is given); returns how many."""
        moment = time.time() if now is None else now
        if not self.retention_days or (now is None and moment - self._pruned_at < RETENTION_EVERY):
            return 0
        self._pruned_at = moment
        cutoff = moment - self.retention_days * 86400
        deleted = 0
        for _ in range(1000):  # bounded: ten million events a run at most
            async with self.store.transaction() as tx:
                step = await tx.delete_events_before(cutoff, RETENTION_STEP)
            deleted += step
            if step < RETENTION_STEP:
                break
            await asyncio.sleep(0)  # let events and feeds have the writer between steps
        if deleted:
            logger.info("linkwarn: deleted %d events older than %d days", deleted, self.retention_days)
        return deleted

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
