"""Count what scanning costs the proxy per post, in instructions and cache misses (valgrind).

    uv run python bench/bench_share_counted.py                  # every link to a new host
    uv run python bench/bench_share_counted.py --hosts 100000   # links to popular sites

Needs valgrind (Debian: ``apt-get install valgrind``); takes about 15 minutes.

``linkwarn run --no-share`` and ``linkwarn run`` (scanning on) each run under
valgrind's callgrind, one after the other, with 1M entries, and get the same
posts as `bench_share` part 2 (2 KiB form bodies, five unlisted links each).
Counting starts after a warm-up and stops after a fixed number of posts, so
the start and the index build are not counted. Printed per post, for each: the
instructions, and the misses of a simulated 32 KiB L1 (instructions and data)
and 1 MiB L2 cache (``--last-level 32768``: a 32 MiB L3), this machine's sizes.
A count does not drift with the machine's speed as a timed comparison does
(`bench_share` part 2): from run to run it moves by a few tenths of a percent
(how many posts the event loop takes at once depends on timing). So the ratio
of instructions is the cost of scanning without the machine's noise, and the
misses show whether scanning makes the rest of the proxy miss its caches more
than in proportion: a cost that a timed comparison would see and the scan's
own time would not.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_proxy import read_response, upstream  # noqa: E402
from bench.bench_share import add_hosts_option, form_post, form_request  # noqa: E402
from blocklists import Store  # noqa: E402
from tests.support.servers import free_port  # noqa: E402
from tests.support.synthetic import synthetic_entries  # noqa: E402

L1 = ["--I1=32768,8,64", "--D1=32768,8,64"]


def last_level(kib: int) -> str:
    """The simulated last level: this machine's L2 (1 MiB, 8 ways) or its L3 (32 MiB, 16 ways)."""
    return f"--LL={kib * 1024},{8 if kib <= 1024 else 16},64"


async def posted(port: int, numbers: range, hosts: int, seed: int, connections: int = 4) -> None:
    """Posts *numbers* through the proxy on *port*, their sites drawn from *seed*: the same posts
    for the same arguments."""
    draw = random.Random(seed)
    bodies = [form_post(number, hosts, draw) for number in numbers]
    bodies.reverse()

    async def worker(number: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        host = f"w{number}.social.example"  # a share site (--share-site social.example)
        try:
            while bodies:
                writer.write(form_request(host, bodies.pop()))
                status = await read_response(reader)
                assert status == 200, status
        finally:
            writer.close()

    await asyncio.gather(*(worker(n) for n in range(connections)))


async def until_ready(metrics_port: int, process: asyncio.subprocess.Process) -> None:
    """Until the proxy's ``/readyz`` answers 200: its index built (slow under valgrind)."""
    deadline = time.monotonic() + 1800
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if process.returncode is not None:
                raise RuntimeError(f"linkwarn run exited with {process.returncode}")
            try:
                if (await client.get(f"http://127.0.0.1:{metrics_port}/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(2)
    raise RuntimeError("linkwarn run was not ready in 30 minutes")


def control(*args: str) -> None:
    subprocess.run(["callgrind_control", *args], check=True, capture_output=True, timeout=600)


def totals(profile: Path) -> dict[str, int]:
    """The event totals of a callgrind profile."""
    names: list[str] = []
    for line in profile.read_text().splitlines():
        if line.startswith("events:"):
            names = line.split()[1:]
        elif line.startswith("totals:"):
            return dict(zip(names, map(int, line.split()[1:]), strict=True))
    raise RuntimeError(f"{profile} has no totals")


async def counted(name: str, flags: list[str], data: Path, work: Path, upstream_url: str,
                  args: argparse.Namespace) -> dict[str, int]:  # fmt: skip
    """The events of *args.posts* posts through ``linkwarn run`` with *flags*, under callgrind."""
    port, metrics_port = free_port(), free_port()
    out = work / f"callgrind-{name}"
    command = ["valgrind", "--tool=callgrind", f"--log-file={work}/valgrind-{name}.log",
               "--instr-atstart=no", "--cache-sim=yes", *L1, last_level(args.last_level),
               f"--callgrind-out-file={out}", sys.executable, "-m", "proxy_addon.cli", "run",
               "--data-dir", str(data), "--listen-port", str(port), "--upstream", upstream_url,
               "--no-sample", "--api-port", "0", "--metrics", f"127.0.0.1:{metrics_port}",
               "--set", f"confdir={work}/conf-{name}", *flags]  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        *command, cwd=ROOT, env=dict(os.environ, PYTHONHASHSEED="0"), stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        await until_ready(metrics_port, process)
        await posted(port, range(10**9, 10**9 + args.warm_up), args.hosts, seed=1)
        control("--instr=on", str(process.pid))
        started = time.monotonic()
        await posted(port, range(args.posts), args.hosts, seed=7)
        control("--dump", str(process.pid))
        print(f"  {name}: {args.posts:,} posts counted in {time.monotonic() - started:.0f} s", flush=True)
    finally:
        process.terminate()
        await process.wait()
    return totals(Path(f"{out}.1"))


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--posts", type=int, default=1000, help="posts counted on each proxy")
    parser.add_argument("--warm-up", type=int, default=200, help="posts before counting starts")
    add_hosts_option(parser)
    parser.add_argument(
        "--last-level",
        type=int,
        default=1024,
        metavar="KIB",
        help="the simulated last cache level: 1024, this machine's L2 (default); 32768, its L3",
    )
    args = parser.parse_args()
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        sys.exit("bench_share_counted needs valgrind's callgrind_control (Debian: apt-get install valgrind)")
    server = await asyncio.start_server(upstream, "127.0.0.1", 0)
    upstream_url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    mix = f"links to {args.hosts:,} sites (Zipf-like)" if args.hosts else "every link to a new host"
    with tempfile.TemporaryDirectory(prefix="linkwarn-bench-") as directory:
        work = Path(directory)
        data = work / "data"
        async with Store.in_dir(data) as store:
            await store.import_entries("bench", synthetic_entries(args.entries))
        print(f"callgrind, {args.entries:,} entries, {args.posts:,} posts on each proxy, {mix}:")
        off = await counted("off", ["--no-share"], data, work, upstream_url, args)
        on = await counted("on", ["--share-site", "social.example"], data, work, upstream_url, args)
    server.close()

    def per_post(figures: dict[str, int], *events: str) -> float:
        return sum(figures[event] for event in events) / args.posts

    rows = (("instructions", ("Ir",)), ("L1 misses", ("I1mr", "D1mr", "D1mw")),
            (f"last-level misses ({args.last_level:,} KiB)", ("ILmr", "DLmr", "DLmw")))  # fmt: skip
    for label, events in rows:
        before, after = per_post(off, *events), per_post(on, *events)
        print(f"  {label} per post: off {before:,.0f}, on {after:,.0f}: "
              f"+{after / before - 1:.1%}, off/on {before / after:.3f}x")  # fmt: skip
    print("  target: scanning costs at most 5 % (off/on >= 0.95x)")


if __name__ == "__main__":
    asyncio.run(main())
