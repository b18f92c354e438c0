"""Benchmark the proxy: bare mitmdump against ``linkwarn run`` with a large list loaded.

    uv run python bench/bench_proxy.py                 # 1M entries, 15 s of load each
    uv run python bench/bench_proxy.py --entries 100000 --seconds 5

Everything runs on 127.0.0.1: a small asyncio upstream (used as each proxy's
upstream proxy, so nothing is resolved and connections are reused), the proxy under test
and a load generator of keep-alive HTTP/1.1 connections sending unlisted URLs
(the traffic a proxy mostly sees). The two proxies run one after the other with
the same upstream, routing script and load. Printed per proxy: requests per
second, latency p50/p99, and the time from start to the first served request.
For ``linkwarn run`` it also sends a listed URL while the list is still loading
and reports whether it was caught.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from blocklists import Store  # noqa: E402
from tests.support.servers import free_port  # noqa: E402
from tests.support.synthetic import synthetic_entries  # noqa: E402

BODY = b"<!doctype html><title>upstream</title><p>hello</p>"
RESPONSE = b"HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: %d\r\n\r\n%s" % (len(BODY), BODY)


async def upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while await reader.readuntil(b"\r\n\r\n"):
            writer.write(RESPONSE)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await reader.readexactly(length)
    return status


async def one_request(port: int, url: str, accept: str = "text/html") -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    host = url.split("/")[2]
    writer.write(f"GET {url} HTTP/1.1\r\nHost: {host}\r\nAccept: {accept}\r\n\r\n".encode())
    try:
        return await asyncio.wait_for(read_response(reader), 30)
    finally:
        writer.close()


async def load(port: int, seconds: float, connections: int) -> tuple[int, list[float]]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    counter = 0

    async def worker(number: int) -> None:
        # Like a browser: one keep-alive connection per host, a new host every 50 requests.
        nonlocal counter
        while time.perf_counter() < deadline:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            host = f"site{counter}-{number}.news.example"
            try:
                for _ in range(50):
                    if time.perf_counter() >= deadline:
                        break
                    counter += 1
                    path = f"/2014/12/{counter}/story.html?ref=feed&n={counter}"
                    start = time.perf_counter()
                    writer.write(f"GET http://{host}{path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
                    status = await read_response(reader)
                    latencies.append((time.perf_counter() - start) * 1000)
                    assert status == 200, status
            finally:
                writer.close()

    await asyncio.gather(*(worker(n) for n in range(connections)))
    return len(latencies), latencies


async def first_served(port: int, started: float, listed: str | None) -> tuple[float, int | None]:
    """Seconds from start until a request is served; and the status of a listed URL sent at once."""
    listed_status = None
    while True:
        try:
            status = await one_request(port, "http://first.example/")
        except OSError:
            await asyncio.sleep(0.005)
            continue
        elapsed = time.perf_counter() - started
        assert status == 200, status
        if listed is not None:
            listed_status = await one_request(port, listed)
        return elapsed, listed_status


@dataclass
class Result:
    rps: float
    p50: float
    p99: float
    ready: float
    listed_status: int | None


async def measure(
    command: list[str], port: int, args: argparse.Namespace, listed: str | None = None
) -> Result:
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        *command, cwd=ROOT, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        ready, listed_status = await asyncio.wait_for(first_served(port, started, listed), 120)
        await load(port, 2, args.connections)  # warm-up
        count, latencies = await load(port, args.seconds, args.connections)
    finally:
        process.terminate()
        await process.wait()
    latencies.sort()
    return Result(
        count / args.seconds,
        latencies[len(latencies) // 2],
        latencies[int(0.99 * len(latencies))],
        ready,
        listed_status,
    )


def report(name: str, result: Result) -> None:
    print(
        f"  {name:<14} {result.rps:8.0f} req/s   p50 {result.p50:6.2f} ms   p99 {result.p99:6.2f} ms   "
        f"first request served after {result.ready:5.2f} s"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    server = await asyncio.start_server(upstream, "127.0.0.1", 0)
    upstream_port = server.sockets[0].getsockname()[1]
    # Both proxies hand every request to the local upstream as their upstream proxy,
    # so no name is ever resolved and upstream connections are reused.
    upstream_url = f"http://127.0.0.1:{upstream_port}"
    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory(prefix="linkwarn-bench-") as work:
        data = Path(work) / "data"
        async with Store.in_dir(data) as store:
            start = time.perf_counter()
            await store.import_entries("bench", synthetic_entries(args.entries))
            print(f"store with {args.entries:,} entries written in {time.perf_counter() - start:.1f} s")
        seconds = f"{args.seconds:.0f} s"
        print(f"load: {args.connections} keep-alive connections, unlisted URLs, {seconds} per proxy\n")
        common = ["--set", "connection_strategy=lazy", "--set", f"confdir={work}/conf"]

        bare_results: list[Result] = []
        linkwarn_results: list[Result] = []
        # Alternate the two, round after round: on a small machine shared by the
        # load, the upstream and the proxy, single runs vary by 10-20 %.
        for round_number in range(1, args.rounds + 1):
            print(f"round {round_number}")
            port = free_port()
            bare = [str(bin_dir / "mitmdump"), "-q", "--listen-host", "127.0.0.1", "--listen-port", str(port),
                    "--mode", f"upstream:{upstream_url}", *common]  # fmt: skip
            bare_results.append(await measure(bare, port, args))
            report("bare mitmdump", bare_results[-1])
            port = free_port()
            linkwarn = [str(bin_dir / "linkwarn"), "run", "--data-dir", str(data), "--listen-port", str(port),
                        "--upstream", upstream_url, "--no-sample", *common]  # fmt: skip
            linkwarn_results.append(
                await measure(linkwarn, port, args, listed="http://mirror0.leak0.test/files/0/x")
            )
            report("linkwarn run", linkwarn_results[-1])
            caught = linkwarn_results[-1].listed_status
            print(f"  {'':<14} a listed URL sent while the list was loading: "
                  + (f"caught ({caught})" if caught in (303, 403) else f"NOT caught ({caught})"))  # fmt: skip

        def median(results: list[Result], field: str) -> float:
            return statistics.median(getattr(r, field) for r in results)

        entries = f"{args.entries:,} entries"
        print(f"\nmedians over {args.rounds} rounds, linkwarn run with {entries} against bare mitmdump:")
        for field, label, target in (
            ("rps", "throughput", ">= 0.95x"),
            ("p50", "latency p50", ""),
            ("p99", "latency p99", "<= 1.2x"),
            ("ready", "start to first request", "<= 1.5x"),
        ):
            ours, theirs = median(linkwarn_results, field), median(bare_results, field)
            goal = f"target {target}" if target else ""
            print(f"  {label:<24} {ours:9.2f} vs {theirs:9.2f}  = {ours / theirs:5.2f}x  {goal}")
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
