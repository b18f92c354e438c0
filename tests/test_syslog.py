"""Events to syslog: RFC 5424 over UDP and TCP to local collectors that go away and come back."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from blocklists import Action, Entry
from blocklists.store import Event
from proxy_addon.syslog import SyslogExport, SyslogTarget, parse_syslog_target, rfc5424_line

from .support.hooks import NAVIGATE, Proxy, proxy_with

ENTRIES = [Entry.listing("mirror.test/", Action.BLOCK, source="corp")]
# RFC 5424: <PRI>VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP STRUCTURED-DATA SP MSG
RFC5424 = re.compile(
    r"^<(?P<pri>\d{1,3})>1 (?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z) (?P<host>[!-~]{1,255}) "
    r"(?P<app>[!-~]{1,48}) (?P<pid>\d+) (?P<msgid>[!-~]{1,32}) - (?P<msg>.*)$"
)


class _TCPServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


@dataclass
class Collector:
    """A syslog collector on 127.0.0.1 (UDP or TCP with one message a line) that can stop and start again."""

    transport: str
    port: int = 0
    messages: list[str] = field(default_factory=list)
    server: socketserver.BaseServer | None = None
    connections: list[socket.socket] = field(default_factory=list)

    def start(self) -> None:
        collector = self

        class Lines(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                collector.connections.append(self.connection)
                for line in self.rfile:
                    collector.messages.append(line.decode().rstrip("\n"))

        class Datagrams(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                collector.messages.append(self.request[0].decode())

        if self.transport == "tcp":
            server: socketserver.BaseServer = _TCPServer(("127.0.0.1", self.port), Lines)
        else:
            server = socketserver.UDPServer(("127.0.0.1", self.port), Datagrams)
        self.port = server.server_address[1]  # type: ignore[index]
        self.server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()
        for connection in self.connections:  # the collector goes away: its connections too
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()
        self.connections.clear()
        self.server = None

    def events(self) -> list[dict[str, object]]:
        found = []
        for message in list(self.messages):
            match = RFC5424.match(message)
            assert match is not None, message
            assert match["app"] == "linkwarn"
            found.append(json.loads(match["msg"]))
        return found

    def wait_for(self, count: int, seconds: float = 10) -> list[dict[str, object]]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and len(self.messages) < count:
            time.sleep(0.05)
        return self.events()


@pytest.fixture(params=["udp", "tcp"])
def collector(request: pytest.FixtureRequest) -> Iterator[Collector]:
    started = Collector(request.param)
    started.start()
    yield started
    if started.server is not None:
        started.stop()


async def block(proxy: Proxy, n: int) -> float:
    """Navigate to a listed page; how long the proxy took to answer."""
    started = time.perf_counter()
    flow = await proxy.request(f"http://mirror.test/page{n}", headers=NAVIGATE)
    assert flow.response is not None
    assert flow.response.status_code == 303
    return time.perf_counter() - started


async def test_every_event_reaches_the_collector_across_a_restart(
    tmp_path: Path, collector: Collector
) -> None:
    # The block page is shown on the own origin: each navigation makes one "block" event there.
    async with proxy_with(
        tmp_path, ENTRIES, linkwarn_events_syslog=f"{collector.transport}://127.0.0.1:{collector.port}"
    ) as proxy:
        assert proxy.runtime.events is not None
        for n in range(3):
            await proxy.warning_page(f"http://mirror.test/page{n}")
        await proxy.runtime.events.flush()
        first = collector.wait_for(3)
        assert [e["url"] for e in first] == [f"http://mirror.test/page{n}" for n in range(3)]
        assert {e["kind"] for e in first} == {"block"}
        assert {e["client"] for e in first} == {"addr:127.0.0.1"}

        collector.stop()
        slowest = 0.0
        for n in range(3, 8):  # the collector is gone: requests are answered as fast as ever
            slowest = max(slowest, await block(proxy, n))
            await proxy.warning_page(f"http://mirror.test/page{n}")
            await proxy.runtime.events.flush()
        assert slowest < 0.5
        collector.start()  # the same port
        for n in range(8, 10):
            await proxy.warning_page(f"http://mirror.test/page{n}")
        await proxy.runtime.events.flush()
        # Over UDP what was sent while the collector was away is gone; TCP retries (backoff up to 5 s).
        collector.wait_for(9 if collector.transport == "tcp" else 5, seconds=15)
        urls = [e["url"] for e in collector.events()]
        assert "http://mirror.test/page9" in urls
        assert "http://mirror.test/page8" in urls
        if collector.transport == "tcp":
            # Over TCP what waited while the collector was away is sent once it is back, in order; at most
            # the line the kernel took just before the collector died is lost.
            assert len(set(urls)) >= 9, urls
            assert urls == sorted(urls, key=lambda u: int(u.rsplit("page", 1)[1]))
        # The store kept its copy of every event either way.
        stored = [e.url for e in await proxy.events() if e.kind == "block" and e.detail is None]
        assert stored == [f"http://mirror.test/page{n}" for n in range(10)]


def test_a_collector_that_reads_nothing_never_blocks_the_sender() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:  # accepts, never reads
        port = listener.getsockname()[1]
        drops: list[int] = []
        export = SyslogExport(
            SyslogTarget("tcp", "127.0.0.1", port), on_drop=lambda: drops.append(1), queue_size=50
        )
        export.start()
        event = Event(at=time.time(), kind="warning", client="addr:127.0.0.1", url="leak.test/" + "x" * 3000)
        started = time.perf_counter()
        for _ in range(200):
            export.send([event] * 10)
        assert time.perf_counter() - started < 1.0
        assert export.dropped == len(drops) > 0
        export.close(timeout=0.5)


def test_the_message_is_rfc5424_with_the_event_as_json() -> None:
    event = Event(
        at=0.5, kind="proceed", client="user:alice", action="warn", url="leak.test/a", detail="für Arbeit"
    )
    line = "<13>" + rfc5424_line(event, "proxy 1.corp", 42)
    match = RFC5424.match(line)
    assert match is not None
    assert match["ts"] == "1970-01-01T00:00:00.500000Z"
    assert match["host"] == "proxy1.corp"  # no space may stand in a header field
    assert (match["pid"], match["msgid"]) == ("42", "proceed")
    assert json.loads(match["msg"]) == event.to_json()


@pytest.mark.parametrize(
    "text", ["syslog://h:514", "udp://h", "tcp://:514", "udp://h:0", "h:514", "tcp://h:99999"]
)
def test_bad_targets(text: str) -> None:
    with pytest.raises(ValueError, match="udp://HOST:PORT"):
        parse_syslog_target(text)


def test_targets() -> None:
    assert parse_syslog_target("TCP://logs.corp.example:6514") == SyslogTarget(
        "tcp", "logs.corp.example", 6514
    )
    assert parse_syslog_target("udp://[::1]:514") == SyslogTarget("udp", "::1", 514)
