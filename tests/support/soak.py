"""A soak load for a running proxy: many keep-alive connections, HTTP and HTTPS, listed and unlisted URLs.

Used by tests/test_soak.py (its short form) and bench/bench_soak.py (minutes, against
bare mitmdump). Every response is checked: an unlisted URL must come back 200 from the
upstream, a listed one must be answered by the proxy (the warning redirect or a 403).
Bounded in time; it stops by itself.
"""

from __future__ import annotations

import asyncio
import random
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path

LISTED = ("mirror.test", "www.leak.example", "files.example")  # listed by the sample list
LISTED_PATHS = {"mirror.test": "/film", "www.leak.example": "/inbox", "files.example": "/dump/x"}


@dataclass
class SoakResult:
    requests: int = 0
    errors: int = 0
    listed_sent: int = 0
    listed_through: int = 0  # listed requests the upstream answered: must stay 0
    latencies: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


async def _read(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """The response's status, and whether the connection stays open after it."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length, open_after = 0, head.startswith(b"HTTP/1.1")
    for line in head.split(b"\r\n"):
        lower = line.lower()
        if lower.startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
        elif lower.startswith(b"connection:"):
            open_after = b"close" not in lower
    await reader.readexactly(length)
    return status, open_after


async def _connection(
    port: int, secure: bool, host: str, ca_file: Path | None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    if not secure:
        return reader, writer
    writer.write(f"CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n\r\n".encode())
    await writer.drain()
    await reader.readuntil(b"\r\n\r\n")
    context = ssl.create_default_context(cafile=str(ca_file)) if ca_file else ssl._create_unverified_context()
    await writer.start_tls(context, server_hostname=host)
    return reader, writer


async def soak(
    port: int,
    seconds: float,
    connections: int,
    ca_file: Path | None,
    listed_share: float = 0.1,
    seed: int = 7,
) -> SoakResult:
    """Load the proxy on *port* for *seconds* with *connections* keep-alive connections."""
    result = SoakResult()
    deadline = time.monotonic() + seconds
    rng = random.Random(seed)

    async def worker(number: int) -> None:
        while time.monotonic() < deadline:
            secure = number % 2 == 1
            listed = rng.random() < listed_share
            host = rng.choice(LISTED) if listed else f"site{rng.randrange(200)}.news.example"
            try:
                reader, writer = await asyncio.wait_for(_connection(port, secure, host, ca_file), 20)
            except (TimeoutError, OSError, ssl.SSLError) as exc:
                result.errors += 1
                result.problems.append(f"connect {host}: {exc!r}")
                await asyncio.sleep(0.05)
                continue
            try:
                for n in range(20 if not listed else 1):
                    if time.monotonic() >= deadline:
                        break
                    path = LISTED_PATHS[host] if listed else f"/2014/12/{number}/{n}.html"
                    target = path if secure else f"http://{host}{path}"
                    started = time.monotonic()
                    writer.write(
                        f"GET {target} HTTP/1.1\r\nHost: {host}\r\nAccept: text/html\r\n\r\n".encode()
                    )
                    status, open_after = await asyncio.wait_for(_read(reader), 20)
                    result.latencies.append((time.monotonic() - started) * 1000)
                    result.requests += 1
                    if listed:
                        result.listed_sent += 1
                        if status == 200:
                            result.listed_through += 1
                        elif status not in (303, 403):
                            result.errors += 1
                            result.problems.append(f"{host}{path}: {status}")
                    elif status != 200:
                        result.errors += 1
                        result.problems.append(f"{host}{path}: {status}")
                    if not open_after:
                        break  # the server closes it: the next request goes on a new connection
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ssl.SSLError, ValueError) as exc:
                result.errors += 1
                result.problems.append(f"{host}: {exc!r}")
            finally:
                writer.close()

    await asyncio.gather(*(worker(n) for n in range(connections)))
    return result


def resident_kib(pid: int) -> int:
    """The resident memory of process *pid*, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise ValueError(f"no VmRSS for process {pid}")
