"""Resident memory of ``linkwarn run`` per listed entry, against the same proxy over an empty store.

    uv run python bench/bench_memory.py                       # 1M and 5M entries
    uv run python bench/bench_memory.py --entries 100000

For each size, a store is written (in batches, so this script stays small),
then ``linkwarn run`` starts on it and on an empty store, in the same run. Once
the lists are loaded (its log, on standard output, says so), and a few requests have gone through,
the process's resident memory (VmRSS) is read until it settles. Printed: the
resident memory of each, and the growth per entry, (RSS(n) - RSS(empty)) / n,
which is the whole process's cost of the list: index, SQLite's caches and
whatever the allocator kept after loading, not only the index's own size.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from blocklists import Store  # noqa: E402
from tests.support.servers import free_port  # noqa: E402
from tests.support.synthetic import synthetic_entries  # noqa: E402

TARGET = 16.0  # bytes of resident memory per entry, at most
BATCH = 1_000_000


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


async def write_store(data: Path, count: int) -> None:
    async with Store.in_dir(data) as store:
        entries = synthetic_entries(count)
        for start in range(0, count, BATCH):
            await store.import_entries(f"bench{start // BATCH}", list(islice(entries, BATCH)))


async def one_request(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET http://unlisted.example/ HTTP/1.1\r\nHost: unlisted.example\r\n\r\n")
    with contextlib.suppress(asyncio.IncompleteReadError):
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    writer.close()


async def resident(data: Path, work: Path, upstream: str) -> int:
    """The settled resident memory of ``linkwarn run`` on *data*, its lists loaded."""
    port = free_port()
    command = [str(Path(sys.executable).parent / "linkwarn"), "run", "--data-dir", str(data),
               "--listen-port", str(port), "--upstream", upstream, "--no-sample", "--api-port", "0",
               "--set", f"confdir={work}/conf"]  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        *command, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert process.stdout is not None
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            line = await asyncio.wait_for(process.stdout.readline(), 600)
            if not line:
                raise RuntimeError("linkwarn run ended before its lists were loaded")
            if b"entries ready in" in line:
                break
        drain = asyncio.create_task(process.stdout.read())
        for _ in range(20):
            await one_request(port)
        readings = []
        for _ in range(30):  # until two readings a second apart agree within 1 %
            await asyncio.sleep(1)
            readings.append(rss(process.pid))
            if len(readings) >= 3 and abs(readings[-1] - readings[-2]) < readings[-1] / 100:
                break
        return readings[-1]
    finally:
        process.terminate()
        await process.wait()
        with contextlib.suppress(NameError):
            drain.cancel()


async def upstream_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
        while await reader.readuntil(b"\r\n\r\n"):
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            await writer.drain()
    writer.close()


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, action="append", default=[])
    args = parser.parse_args()
    sizes = args.entries or [1_000_000, 5_000_000]
    server = await asyncio.start_server(upstream_server, "127.0.0.1", 0)
    upstream = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    with tempfile.TemporaryDirectory(prefix="linkwarn-memory-") as name:
        work = Path(name)
        await write_store(work / "empty", 0)
        empty = await resident(work / "empty", work, upstream)
        print(f"linkwarn run, empty store: {empty / 2**20:7.1f} MiB resident")
        worst = 0.0
        for count in sizes:
            data = work / f"n{count}"
            started = time.perf_counter()
            await write_store(data, count)
            print(f"store with {count:,} entries written in {time.perf_counter() - started:.0f} s")
            loaded = await resident(data, work, upstream)
            again = await resident(work / "empty", work, upstream)  # the baseline, in the same run
            baseline = min(empty, again)
            per_entry = (loaded - baseline) / count
            worst = max(worst, per_entry)
            print(f"linkwarn run, {count:>9,} entries: {loaded / 2**20:7.1f} MiB resident "
                  f"(empty: {baseline / 2**20:.1f} MiB): {per_entry:5.1f} bytes per entry "
                  f"(target <= {TARGET:g})")  # fmt: skip
            shutil.rmtree(data)
    server.close()
    print(f"worst: {worst:.1f} bytes per entry: {'OK' if worst <= TARGET else 'OVER THE TARGET'}")


if __name__ == "__main__":
    asyncio.run(main())
