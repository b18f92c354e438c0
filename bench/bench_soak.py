"""Soak: minutes of load through ``linkwarn run`` with a large list, against bare mitmdump, in one run.

    uv run python bench/bench_soak.py                     # 1M entries, 3 minutes each, 64 connections
    uv run python bench/bench_soak.py --seconds 60 --entries 100000

Bare mitmdump decrypts all HTTPS with its own CA; ``linkwarn run`` is measured twice, as
deployed (unlisted HTTPS passed through untouched, see "What linkwarn reads") and with
``--intercept all`` (decrypting everything, like for like). Every connection goes to
local upstreams (HTTP and HTTPS) through the same routing script. The load (tests/support/soak.py)
is 64 keep-alive connections, half HTTP and half HTTPS, one request in ten for a listed host
(which bare mitmdump forwards, and linkwarn answers itself). Printed per proxy: requests,
errors, listed requests that got through (must be 0 for linkwarn), latency p50/p99,
throughput, resident memory at start and end; then the
ratios to bare mitmdump (targets: throughput >= 0.95x, p99 <= 1.2x).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from blocklists import Action, Entry, Store  # noqa: E402
from tests.support.servers import ROUTE_SCRIPT, RunningProxy, Upstream, free_port  # noqa: E402
from tests.support.soak import SoakResult, resident_kib, soak  # noqa: E402
from tests.support.synthetic import synthetic_entries  # noqa: E402


def show(name: str, result: SoakResult, seconds: float, rss: tuple[int, int]) -> None:
    print(f"  {name:<14} {result.requests:8d} requests {result.requests / seconds:7.0f}/s  "
          f"errors {result.errors}  listed through {result.listed_through}/{result.listed_sent}")  # fmt: skip
    print(f"  {'':<14} p50 {result.percentile(0.5):6.1f} ms  p99 {result.percentile(0.99):6.1f} ms  "
          f"resident {rss[0] // 1024} -> {rss[1] // 1024} MiB")  # fmt: skip


async def bare(
    args: argparse.Namespace, work: Path, plain: Upstream, secure: Upstream
) -> tuple[SoakResult, tuple[int, int]]:
    port = free_port()
    env = {"LINKWARN_TEST_HTTP_PORT": str(plain.port), "LINKWARN_TEST_HTTPS_PORT": str(secure.port)}
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "mitmdump"), "-q", "--listen-host", "127.0.0.1",
        "--listen-port", str(port),
        "-s", str(ROUTE_SCRIPT), "--set", "connection_strategy=lazy", "--set", "ssl_insecure=true",
        "--set", f"confdir={work / 'bare-conf'}", cwd=ROOT, env={**os.environ, **env},
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        ca = work / "bare-conf" / "mitmproxy-ca-cert.pem"
        for _ in range(300):
            if ca.exists():
                try:
                    await asyncio.open_connection("127.0.0.1", port)
                    break
                except OSError:
                    pass
            await asyncio.sleep(0.1)
        start = resident_kib(process.pid)
        result = await soak(
            port, args.seconds, args.connections, ca
        )  # the same mix: its upstream answers all
        return result, (start, resident_kib(process.pid))
    finally:
        process.terminate()
        await process.wait()


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="linkwarn-soak-") as folder:
        work = Path(folder)
        plain, secure = Upstream.start(), Upstream.start(tls_dir=work)
        data = work / "data"
        async with Store.in_dir(data) as store:
            started = time.perf_counter()
            await store.import_entries("bench", synthetic_entries(args.entries))
            await store.import_entries("listed", [
                Entry.listing("mirror.test/", Action.BLOCK), Entry.listing("leak.example/", Action.WARN),
                Entry.listing("files.example/dump/", Action.BLOCK),
            ])  # fmt: skip
        print(f"store with {args.entries:,} entries written in {time.perf_counter() - started:.1f} s")
        print(f"load: {args.connections} connections, half HTTPS, {args.seconds:.0f} s per proxy\n")
        bare_result, bare_rss = await bare(args, work, plain, secure)
        show("bare mitmdump", bare_result, args.seconds, bare_rss)
        bare_rate = bare_result.requests / args.seconds
        bare_p99 = bare_result.percentile(0.99)
        # linkwarn as deployed (unlisted HTTPS passed through untouched), and decrypting
        # everything as bare mitmdump does (--intercept all): the like-for-like figure.
        for name, extra in (("linkwarn run", ()), ("--intercept all", ("--intercept", "all"))):
            marks = plain.mark(), secure.mark()
            proxy = RunningProxy.start(data, plain.port, secure.port, *extra, upstream_ca=secure.ca_file)
            try:
                start = resident_kib(proxy.process.pid)
                ours = await soak(proxy.port, args.seconds, args.connections, proxy.trust_file)
                rss = (start, resident_kib(proxy.process.pid))
            finally:
                proxy.stop()
            show(name, ours, args.seconds, rss)
            seen = {
                host.split(":")[0]
                for host, _, _ in plain.server.seen[marks[0] :] + secure.server.seen[marks[1] :]
            }
            listed_seen = seen & {"mirror.test", "www.leak.example", "files.example"}
            print(f"  listed hosts the upstreams saw: {sorted(listed_seen) or 'none'}")
            # The same mix to both: bare mitmdump forwards the listed URLs too (its "listed through").
            ours_rate = ours.requests / args.seconds
            p99 = ours.percentile(0.99)
            print(f"  throughput (requests/s) {ours_rate:.0f} vs {bare_rate:.0f} "
                  f"= {ours_rate / max(1.0, bare_rate):.2f}x  (target >= 0.95x)")  # fmt: skip
            print(
                f"  latency p99 {p99:.1f} vs {bare_p99:.1f} ms = {p99 / max(0.001, bare_p99):.2f}x "
                "(target <= 1.2x)\n"
            )
        plain.stop()
        secure.stop()


if __name__ == "__main__":
    asyncio.run(main())
