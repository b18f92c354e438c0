"""Send every event to a syslog collector as an RFC 5424 message whose text is the event's JSON.

``--events-syslog udp://HOST:PORT`` or ``tcp://HOST:PORT`` (option
``linkwarn_events_syslog``). The sockets, priorities and sending are the
standard library's `logging.handlers.SysLogHandler`; this module formats the
RFC 5424 header (``<PRI>1 TIMESTAMP HOST linkwarn PID KIND - {json}``; the
handler writes ``<PRI>``) and keeps the collector off the request path:

- `SyslogExport.send` only puts lines in a bounded queue (`QUEUE_SIZE`); a
  thread of its own sends them. A full queue drops the newest and counts it
  (``linkwarn_syslog_dropped_total``); the store's copy of every event is
  written before, and whatever syslog does, it stays.
- Over TCP (RFC 6587 framing: one message per line), a collector that is
  gone or refuses is retried with backoff (`RETRY_MIN` to `RETRY_MAX`) while
  the unsent line waits; once it is back, sending resumes in order. Lines the
  kernel accepted just before the collector died are lost, as with any plain
  TCP syslog. Over UDP nothing is ever known to be lost or received.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import logging.handlers
import os
import queue
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from blocklists.store import Event

__all__ = ["SyslogExport", "SyslogTarget", "parse_syslog_target", "rfc5424_line"]

logger = logging.getLogger(__name__)

QUEUE_SIZE = 10_000
RETRY_MIN, RETRY_MAX = 0.2, 5.0
APP_NAME = "linkwarn"
_SEVERITY = {"warning": "WARNING", "block": "WARNING", "refused": "WARNING", "report": "NOTICE"}
_STOP = object()


@dataclass(frozen=True, slots=True)
class SyslogTarget:
    transport: str  # "udp" or "tcp"
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.transport}://{self.host}:{self.port}"


def parse_syslog_target(text: str) -> SyslogTarget:
    """``udp://HOST:PORT`` or ``tcp://HOST:PORT``; raises ValueError naming what is wrong."""
    scheme, sep, rest = text.strip().partition("://")
    if not sep or scheme.lower() not in ("udp", "tcp"):
        raise ValueError(f"{text!r} must be udp://HOST:PORT or tcp://HOST:PORT")
    if rest.startswith("["):
        host, _, port = rest[1:].partition("]:")
    else:
        host, _, port = rest.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) <= 65535 or any(c in host for c in "/@ "):
        raise ValueError(f"{text!r} must be udp://HOST:PORT or tcp://HOST:PORT")
    return SyslogTarget(scheme.lower(), host, int(port))


def _header_field(value: str, limit: int) -> str:
    """An RFC 5424 header field: printable US-ASCII without spaces, at most *limit*, or '-'."""
    cleaned = "".join(c for c in value if "!" <= c <= "~")[:limit]
    return cleaned or "-"


def rfc5424_line(event: Event, hostname: str, procid: int) -> str:
    """The message after ``<PRI>``: ``1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG``."""
    stamp = datetime.datetime.fromtimestamp(event.at, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    body = json.dumps(event.to_json(), ensure_ascii=False, separators=(",", ":"))
    msgid = _header_field(event.kind, 32)
    return f"1 {stamp} {_header_field(hostname, 255)} {APP_NAME} {procid} {msgid} - {body}"


class _Handler(logging.handlers.SysLogHandler):
    """The standard handler, told to report a failed send instead of printing it, and to reconnect."""

    append_nul = False

    def __init__(self, target: SyslogTarget) -> None:
        self.failed: str | None = None
        kind = socket.SOCK_STREAM if target.transport == "tcp" else socket.SOCK_DGRAM
        try:
            super().__init__((target.host, target.port), logging.handlers.SysLogHandler.LOG_USER, kind)
        except OSError as exc:  # a TCP collector not there yet: connect again at the first send
            self.socket = None
            self.failed = str(exc)
        self.setFormatter(logging.Formatter("%(message)s\n" if kind == socket.SOCK_STREAM else "%(message)s"))

    def deliver(self, record: logging.LogRecord) -> str | None:
        """Send one record; why it failed, or None."""
        self.failed = None
        if self.socket is None:
            try:
                self.createSocket()
            except OSError as exc:
                self.socket = None
                return str(exc)
        self.emit(record)  # calls handleError on failure
        return self.failed

    def handleError(self, record: logging.LogRecord) -> None:
        import sys

        exc = sys.exc_info()[1]
        self.failed = str(exc) or type(exc).__name__
        if self.socket is not None:
            self.socket.close()
            self.socket = None


class SyslogExport:
    """Events to one collector, from a thread of its own; `send` never blocks."""

    def __init__(
        self,
        target: SyslogTarget,
        on_drop: Callable[[], None] | None = None,
        queue_size: int = QUEUE_SIZE,
    ) -> None:
        self.target = target
        self.on_drop = on_drop
        self.hostname = socket.gethostname()
        self.sent = 0
        self.dropped = 0
        self._queue: queue.Queue[object] = queue.Queue(queue_size)
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="linkwarn-syslog", daemon=True)
        self._thread.start()

    def send(self, events: Sequence[Event]) -> None:
        pid = os.getpid()
        for event in events:
            record = logging.makeLogRecord(
                {
                    "msg": rfc5424_line(event, self.hostname, pid),
                    "levelname": _SEVERITY.get(event.kind, "INFO"),
                }
            )
            try:
                self._queue.put_nowait(record)
            except queue.Full:
                self.dropped += 1
                if self.on_drop is not None:
                    self.on_drop()

    def close(self, timeout: float = 2.0) -> None:
        """Send what is queued (for up to *timeout* seconds), then stop. Blocking: call off the loop."""
        if self._thread is None:
            return
        self._closing.set()
        with contextlib.suppress(queue.Full):
            self._queue.put(_STOP, timeout=timeout)
        self._thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        handler = _Handler(self.target)
        warned = False
        try:
            while True:
                record = self._queue.get()
                if record is _STOP:
                    return
                assert isinstance(record, logging.LogRecord)
                delay = RETRY_MIN
                while (problem := handler.deliver(record)) is not None:
                    if self.target.transport == "udp" or self._closing.is_set():
                        break  # UDP: nothing to wait for; closing: no collector to wait for
                    if not warned:
                        logger.warning(
                            "linkwarn: syslog collector %s unreachable (%s); retrying", self.target, problem
                        )
                        warned = True
                    if self._closing.wait(delay):
                        break
                    delay = min(delay * 2, RETRY_MAX)
                else:
                    self.sent += 1
                    if warned:
                        logger.info("linkwarn: syslog collector %s reachable again", self.target)
                        warned = False
        finally:
            handler.close()
