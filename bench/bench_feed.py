"""Benchmark feed sync: first sync of a large feed, a 10k-change diff, and event-loop stalls.

    uv run python bench/bench_feed.py                  # 1M entries
    uv run python bench/bench_feed.py --entries 200000

A feed is published into a temporary directory and served on 127.0.0.1 by
linkwarn's own feed server, in a process of its own as a feed server would be
(serving 50 MB from this process would take its turns at the GIL). The sync
runs in this process's event loop, as it does inside ``linkwarn run``, beside
a ticker that wakes every millisecond and records how late it wakes: the
longest lateness is the longest stall a proxy's requests would see. Each
sync includes the index rebuild that follows it.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from blocklists import Checker, Store  # noqa: E402
from blocklists.feed import publish  # noqa: E402
from blocklists.sync import FeedSubscription, FeedSyncer  # noqa: E402
from tests.support.synthetic import synthetic_entries  # noqa: E402

SERVE = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from blocklists.feedserver import make_server
server = make_server(Path(sys.argv[2]), "127.0.0.1", 0)
print(server.server_port, flush=True)
server.serve_forever()
"""


async def ticker(stop: asyncio.Event, lateness: list[float]) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        expected = loop.time() + 0.001
        await asyncio.sleep(0.001)
        lateness.append(loop.time() - expected)


async def timed_sync(syncer: FeedSyncer) -> tuple[str, float, float]:
    stop = asyncio.Event()
    lateness: list[float] = []
    tick = asyncio.create_task(ticker(stop, lateness))
    started = time.perf_counter()
    outcome = await syncer.sync_once()
    elapsed = time.perf_counter() - started
    stop.set()
    await tick
    assert outcome.error is None, outcome.error
    return (
        f"{outcome.result}, version {outcome.version}, {outcome.entries:,} entries",
        elapsed,
        max(lateness) * 1000,
    )


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--changes", type=int, default=10_000)
    args = parser.parse_args()
    key = Ed25519PrivateKey.generate()
    with tempfile.TemporaryDirectory(prefix="linkwarn-bench-") as work:
        feed = Path(work) / "feed"
        started = time.perf_counter()
        publish(list(synthetic_entries(args.entries)), feed, key, now=int(time.time()))
        print(f"published {args.entries:,} entries in {time.perf_counter() - started:.1f} s")
        # As linkwarn run does once loaded: nothing long-lived for the collector to walk.
        gc.collect()
        gc.freeze()
        server = await asyncio.create_subprocess_exec(
            sys.executable, "-c", SERVE, str(ROOT), str(feed), stdout=asyncio.subprocess.PIPE
        )
        assert server.stdout is not None
        url = f"http://127.0.0.1:{int(await server.stdout.readline())}/"
        async with Store.in_dir(Path(work) / "data") as store, httpx.AsyncClient(timeout=120) as client:
            checker = Checker(store)
            syncer = FeedSyncer(store, FeedSubscription(url, (key.public_key(),)), client, checker.refresh)
            what, seconds, stall = await timed_sync(syncer)
            print(f"first sync      {seconds:6.2f} s   longest loop stall {stall:6.1f} ms   ({what})")
            half = args.changes // 2
            # Half the changes remove entries, half add new ones.
            changed = [
                *synthetic_entries(args.entries - half, start=half),
                *synthetic_entries(half, start=args.entries),
            ]
            publish(changed, feed, key, now=int(time.time()))
            del changed
            gc.collect()
            what, seconds, stall = await timed_sync(syncer)
            label = f"{args.changes:,}-change diff"
            print(f"{label} {seconds:6.2f} s   longest loop stall {stall:6.1f} ms   ({what})")
        server.terminate()
        await server.wait()


if __name__ == "__main__":
    asyncio.run(main())
