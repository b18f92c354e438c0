"""Benchmark the share warning: the cost of scanning a post for links, and of scanning on throughput.

    uv run python bench/bench_share.py                  # 100 KiB JSON scan, 4 pairs x 20 rounds of 1 s
    uv run python bench/bench_share.py --hosts 100000   # links to popular sites
    uv run python bench/bench_share.py --same           # both proxies scanning off

Part 1, in this process: a 100 KiB JSON body holding 200 URLs, each to a host
no body had before, searched and looked up in an index of 1M entries: every
link whole, each link's host first, and as the proxy does (the body's hosts
first, `find_links` with `Checker.reads_host`); printed per body.

Part 2: ``linkwarn run --no-share`` and ``linkwarn run`` (scanning on), both
running, chained to the same local upstream, under the same load of POST
requests (2 KiB form bodies, each with five unlisted links: what a social
network's posts look like to the proxy), the load moving from one to the other
every second, round after round; then both are stopped and a fresh pair is
started (started the other way round: an even number of pairs starts each first
as often), since two processes of the same command can differ by a few percent
for the whole of their lives (hash seed, memory layout). Printed: posts per
second and the proxy's CPU time per post of each in some rounds; then the median
of all rounds' ratios and the middle half of them; and, read from each proxy's
own ``linkwarn_share_scan_seconds`` between bursts, the time its scan took as a
share of its CPU time in the burst: what scanning costs, measured in the
process itself, without the noise of comparing two.
Measured one after the other in runs of 10 s, two identical proxies differed by
up to 5 % on these machines; ``--same`` runs both with scanning off, to show
what the method reads as no difference. Target: scanning costs at most 5 % of
throughput.
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
from typing import NamedTuple
from urllib.parse import urlencode

import httpx
from prometheus_client.parser import text_string_to_metric_families

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


POSTED = itertools.count()  # a round never repeats the posts of the one before
SITES = random.Random(7)


def form_post(number: int, hosts: int, draw: random.Random) -> bytes:
    """Post *number*: a 2 KiB form post with five links, to hosts no post had before (*hosts* 0,
    nothing cached helps), or drawn from *hosts* sites, the popular ones far more often (Zipf-like)."""
    sites = [f"{number}-{i}" for i in range(5)] if not hosts else [
        str(int(hosts ** draw.random())) for _ in range(5)
    ]  # fmt: skip
    text = " ".join(f"see https://site{site}.example/p/{number}" for site in sites)
    return urlencode({"status": text + " x" * 900, "csrf": "t0k3n"}).encode()


def add_hosts_option(parser: argparse.ArgumentParser) -> None:
    """``--hosts``: the mix of sites the posts link to (`form_post`)."""
    parser.add_argument(
        "--hosts",
        type=int,
        default=0,
        help="links go to this many sites, the popular ones more often (0: none twice)",
    )


def form_request(host: str, body: bytes) -> bytes:
    """The proxy request that posts *body* to ``http://host/post``."""
    head = (
        f"POST http://{host}/post HTTP/1.1\r\nHost: {host}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def post_load(port: int, seconds: float, connections: int, hosts: int = 0) -> tuple[int, list[float]]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker(number: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        host = f"w{number}.social.example"  # a share site (--share-site social.example)
        try:
            while time.perf_counter() < deadline:
                body = form_post(next(POSTED), hosts, SITES)
                start = time.perf_counter()
                writer.write(form_request(host, body))
                status = await read_response(reader)
                latencies.append((time.perf_counter() - start) * 1000)
                assert status == 200, status
        finally:
            writer.close()

    await asyncio.gather(*(worker(n) for n in range(connections)))
    return len(latencies), latencies


async def started(command: list[str], port: int) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        *command, cwd=ROOT, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    for _ in range(600):
        try:
            await post_load(port, 0.05, 1)
            return process
        except OSError:
            await asyncio.sleep(0.05)
    raise RuntimeError(f"linkwarn run did not answer on port {port}")


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=1, help="each proxy's burst in a round")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=20, help="rounds with each pair of proxies")
    parser.add_argument("--pairs", type=int, default=4, help="pairs of proxies, each started afresh")
    add_hosts_option(parser)
    parser.add_argument(
        "--same", action="store_true", help="scanning off in both: what the method reads as no difference"
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
            f"posts: {args.connections} keep-alive connections, 2 KiB form bodies, {args.rounds} rounds "
            f"of {args.seconds:g} s on each proxy, "
            + (f"links to {args.hosts:,} sites (Zipf-like)" if args.hosts else "every link to a new host")
        )
        on_flags = ["--no-share"] if args.same else ["--share-site", "social.example"]
        results = []
        for pair in range(args.pairs):  # fresh processes: each one's layout (hash seed, addresses) differs
            proxies: dict[str, Proxy] = {}
            try:
                for name, extra in (("off", ["--no-share"]), ("on", on_flags))[:: 1 if pair % 2 else -1]:
                    port, metrics_port = free_port(), free_port()
                    command = [str(bin_dir / "linkwarn"), "run", "--data-dir", str(data),
                               "--listen-port", str(port), "--upstream", upstream_url, "--no-sample",
                               "--api-port", "0", "--metrics", f"127.0.0.1:{metrics_port}",
                               "--set", f"confdir={work}/conf-{name}", *extra]  # fmt: skip
                    proxies[name] = Proxy(port, metrics_port, await started(command, port))
                results += await rounds(proxies, args, pair)
            finally:
                for *_, process in proxies.values():
                    process.terminate()
                    await process.wait()
    server.close()
    ratios = sorted(on[0] / off[0] for off, on in results)
    quartiles = statistics.quantiles(ratios, n=4)
    cpu = statistics.median(off[1] / on[1] for off, on in results)
    shares = statistics.quantiles([on[2] for _, on in results], n=4)
    scanning = "off (--same)" if args.same else "on"
    print(f"\n{len(results)} rounds ({args.pairs} pairs of proxies), scanning {scanning} against off:")
    print(f"  throughput: median {statistics.median(ratios):.3f}x, middle half of the rounds "
          f"{quartiles[0]:.3f}x to {quartiles[2]:.3f}x  (target >= 0.95x)")  # fmt: skip
    print(f"  proxy CPU per post, off over on (what a CPU-bound proxy keeps): median {cpu:.3f}x")
    print(f"  the scan's own time (linkwarn_share_scan_seconds) as a share of the proxy's CPU: median "
          f"{shares[1]:.1%}, middle half {shares[0]:.1%} to {shares[2]:.1%}  (target <= 5%)")  # fmt: skip


class Proxy(NamedTuple):
    port: int
    metrics_port: int
    process: asyncio.subprocess.Process


async def scan_seconds(proxy: Proxy) -> float:
    """The proxy's ``linkwarn_share_scan_seconds`` (read between bursts, outside their CPU time)."""
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"http://127.0.0.1:{proxy.metrics_port}/metrics")).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "linkwarn_share_scan_seconds_total":
                return sample.value
    raise RuntimeError("the proxy's metrics have no linkwarn_share_scan_seconds")


async def rounds(
    proxies: dict[str, Proxy], args: argparse.Namespace, pair: int
) -> list[tuple[tuple[float, float, float], tuple[float, float, float]]]:
    """Each round loads one proxy for a burst, then the other (off first in odd rounds, on first
    in even ones), so that whatever else the machine does slows both alike, and only one proxy
    works at a time (two at once share the caches: each one's misses would slow the other).
    Each round's (posts/s, CPU ms per post, the scan's share of the CPU time) of each, for pair
    number *pair*."""
    for name in ("off", "on"):
        await post_load(proxies[name].port, 3, args.connections, args.hosts)  # warm-up
    results = []
    for round_number in range(1, args.rounds + 1):
        figures = {}
        for name in ("off", "on") if round_number % 2 else ("on", "off"):
            proxy = proxies[name]
            scanned_before = await scan_seconds(proxy)
            cpu_before, started_at = cpu_seconds(proxy.process.pid), time.perf_counter()
            count, _ = await post_load(proxy.port, args.seconds, args.connections, args.hosts)
            cpu, elapsed = cpu_seconds(proxy.process.pid) - cpu_before, time.perf_counter() - started_at
            scanned = await scan_seconds(proxy) - scanned_before
            figures[name] = (count / elapsed, cpu / count * 1000, scanned / cpu)
        off, on = figures["off"], figures["on"]
        if round_number <= 2 or round_number % 10 == 0:
            print(f"  pair {pair + 1} round {round_number:2}"
                  f"  off {off[0]:5.0f} posts/s {off[1]:.3f} ms CPU/post"
                  f"  on {on[0]:5.0f} posts/s {on[1]:.3f} ms CPU/post"
                  f"  ratio {on[0] / off[0]:.3f}  scan {on[2]:.1%} of CPU")  # fmt: skip
        results.append((off, on))
    return results


if __name__ == "__main__":
    asyncio.run(main())
