"""Benchmark the share warning: the cost of scanning a post for links, and of scanning on throughput.

    uv run python bench/bench_share.py                  # 100 KiB JSON scan, then 3 rounds of 10 s of posts
    uv run python bench/bench_share.py --seconds 5 --rounds 2

Part 1, in this process: a 100 KiB JSON body holding 200 URLs, each to a host
no body had before, searched and looked up in an index of 1M entries: every
link whole, each link's host first, and as the proxy does (the body's hosts
first, `find_links` with `Checker.reads_host`); printed per body.

Part 2: ``linkwarn run --no-share`` against ``linkwarn run`` (scanning on), one
after the other in each round, both chained to the same local upstream, under
the same load of POST requests (2 KiB form bodies, each with a few unlisted
links: what a social network's posts look like to the proxy). Printed:
throughput and latency of each, and the ratio. Target: scanning costs at most
5 % of throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_proxy import read_response, upstream  # noqa: E402
from bench.bench_selective import cpu_seconds  # noqa: E402
from blocklists import Checker, Store  # noqa: E402
from blocklists.links import find_links  # noqa: E402
from tests.support.servers import free_port  # noqa: E402
from tests.support.synthetic import synthetic_entries  # noqa: E402


def json_body(round_number: int = 0) -> bytes:
    posts = [
        {"id": i, "text": f"read https://news{i}-{round_number}.example/2014/12/{i}/story.html?ref=feed now"}
        for i in range(200)
    ]
    body = json.dumps({"posts": posts})
    return json.dumps({"posts": posts, "pad": "x" * (100 * 1024 - len(body))}).encode()


async def scan_cost(entries: int) -> None:
    """Each round's body links to hosts not seen before, so no host's answer is cached."""
    with tempfile.TemporaryDirectory(prefix="linkwarn-bench-") as work:
        async with Store.in_dir(Path(work)) as store:
            await store.import_entries("bench", synthetic_entries(entries))
            checker = Checker(store)
            await checker.reload()
            rounds = 50
            bodies = [json_body(n) for n in range(rounds)]
            started = time.perf_counter()
            for body in bodies:
                links = find_links(body, "application/json")
            found = (time.perf_counter() - started) / rounds
            started = time.perf_counter()
            for body in bodies:
                for link in find_links(body, "application/json"):
                    checker.prefilter(link)
            unscreened = (time.perf_counter() - started) / rounds
            checker._read_hosts.clear()
            started = time.perf_counter()
            for body in bodies:
                for link in find_links(body, "application/json"):
                    if checker.may_match(link):  # each link's host first
                        checker.prefilter(link)
            screened = (time.perf_counter() - started) / rounds
            checker._read_hosts.clear()
            checker._named.clear()
            started = time.perf_counter()
            for body in bodies:  # as the proxy does: the body's hosts first, then only what may match
                for link in find_links(body, "application/json", checker.reads_host):
                    if checker.may_match(link):
                        checker.prefilter(link)
            scanned = (time.perf_counter() - started) / rounds
    print(f"a {len(bodies[0]) // 1024} KiB JSON body with {len(links)} links, {entries:,} entries loaded:")
    print(f"  finding the links {found * 1000:.1f} ms; finding them and looking each up whole "
          f"{unscreened * 1000:.1f} ms; with each link's host screened first {screened * 1000:.1f} ms; "
          f"with the body's hosts screened first (as the proxy does) {scanned * 1000:.1f} ms\n")  # fmt: skip


async def post_load(port: int, seconds: float, connections: int, hosts: int = 0) -> tuple[int, list[float]]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    posted = itertools.count()
    pool = random.Random(7)

    def next_body() -> bytes:
        """A 2 KiB form post with five links: to hosts no post had before (`hosts` 0, nothing cached
        helps), or drawn from `hosts` sites, the popular ones far more often (Zipf-like)."""
        n = next(posted)
        sites = [f"{n}-{i}" for i in range(5)] if not hosts else [
            str(int(hosts ** pool.random())) for _ in range(5)
        ]  # fmt: skip
        text = " ".join(f"see https://site{site}.example/p/{n}" for site in sites)
        return urlencode({"status": text + " x" * 900, "csrf": "t0k3n"}).encode()

    async def worker(number: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        host = f"w{number}.social.example"  # a share site (--share-site social.example)
        try:
            while time.perf_counter() < deadline:
                body = next_body()
                start = time.perf_counter()
                head = (
                    f"POST http://{host}/post HTTP/1.1\r\nHost: {host}\r\n"
                    "Content-Type: application/x-www-form-urlencoded\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n"
                )
                writer.write(head.encode() + body)
                status = await read_response(reader)
                latencies.append((time.perf_counter() - start) * 1000)
                assert status == 200, status
        finally:
            writer.close()

    await asyncio.gather(*(worker(n) for n in range(connections)))
    return len(latencies), latencies


async def measure(
    command: list[str], port: int, args: argparse.Namespace
) -> tuple[float, float, float, float]:
    """Throughput, p50 and p99 latency (ms), and the proxy's CPU per post (ms)."""
    process = await asyncio.create_subprocess_exec(
        *command, cwd=ROOT, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(600):
            try:
                await post_load(port, 0.05, 1)
                break
            except OSError:
                await asyncio.sleep(0.05)
        await post_load(port, 2, args.connections, args.hosts)  # warm-up
        cpu_before = cpu_seconds(process.pid)
        count, latencies = await post_load(port, args.seconds, args.connections, args.hosts)
        cpu = cpu_seconds(process.pid) - cpu_before
    finally:
        process.terminate()
        await process.wait()
    latencies.sort()
    p50, p99 = latencies[len(latencies) // 2], latencies[int(0.99 * len(latencies))]
    return count / args.seconds, p50, p99, cpu / count * 1000


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--hosts",
        type=int,
        default=0,
        help="links go to this many sites, the popular ones more often (0: none twice)",
    )
    args = parser.parse_args()
    await scan_cost(args.entries)

    server = await asyncio.start_server(upstream, "127.0.0.1", 0)
    upstream_url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory(prefix="linkwarn-bench-") as work:
        data = Path(work) / "data"
        async with Store.in_dir(data) as store:
            await store.import_entries("bench", synthetic_entries(args.entries))
        print(
            f"posts: {args.connections} keep-alive connections, 2 KiB form bodies, {args.seconds:.0f} s, "
            + (f"links to {args.hosts:,} sites (Zipf-like)" if args.hosts else "every link to a new host")
        )
        results: dict[str, list[tuple[float, float, float, float]]] = {"off": [], "on": []}
        for round_number in range(1, args.rounds + 1):
            for name, extra in (("off", ["--no-share"]), ("on", ["--share-site", "social.example"])):
                port = free_port()
                command = [str(bin_dir / "linkwarn"), "run", "--data-dir", str(data),
                           "--listen-port", str(port), "--upstream", upstream_url, "--no-sample",
                           "--api-port", "0", "--set", f"confdir={work}/conf", *extra]  # fmt: skip
                results[name].append(await measure(command, port, args))
                rps, p50, p99, cpu = results[name][-1]
                print(f"  round {round_number} scanning {name:<3} {rps:8.0f} req/s  "
                      f"p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  proxy CPU {cpu:.3f} ms/post")  # fmt: skip
        off = [statistics.median(r[i] for r in results["off"]) for i in range(4)]
        on = [statistics.median(r[i] for r in results["on"]) for i in range(4)]
        print(f"\nmedians over {args.rounds} rounds, scanning on against off:")
        print(f"  throughput {on[0]:8.0f} vs {off[0]:8.0f} req/s = {on[0] / off[0]:.3f}x  (target >= 0.95x)")
        print(f"  latency p50 {on[1]:.2f} vs {off[1]:.2f} ms, p99 {on[2]:.2f} vs {off[2]:.2f} ms")
        print(f"  proxy CPU per post {on[3]:.3f} vs {off[3]:.3f} ms: the throughput a CPU-bound proxy keeps "
              f"= {off[3] / on[3]:.3f}x")  # fmt: skip
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
