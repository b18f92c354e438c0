"""A feed snapshot decoded into a staging file by a process of its own.

Decoding a million JSON lines is seconds of Python. In a thread of the proxy's
process it takes turns at the GIL with the event loop, and every turn the loop
waits for stalls the requests in flight (5-40 ms measured on two cores, however
the work is sliced). In a child process it costs the proxy a core and nothing
else. The child checks and writes the rows, in key order, to a plain table in a
new SQLite file (`rows.stage_rows`); `Store.apply_feed` then copies them into the store with one
``INSERT ... SELECT``, which SQLite runs without holding the GIL.

The child is ``python -m blocklists.staging NAME OUT``, the snapshot on its
standard input; it exits 2 with the problem on standard error for a malformed
snapshot.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from functools import partial
from pathlib import Path

from .feed import FeedError, iter_snapshot
from .rows import stage_rows

__all__ = ["staged_snapshot"]

_STALE_SECONDS = 3600  # a staging lives seconds; older files are a killed sync's leftovers


@asynccontextmanager
async def staged_snapshot(chunks: Sequence[bytes], name: str, directory: Path) -> AsyncIterator[Path]:
    """The snapshot *chunks* decoded by a child process into a staging file in *directory*.

    Raises FeedError naming the problem with a malformed snapshot. The file is
    removed on the way out, and leftovers of killed syncs on the way in.
    """
    out = _new_file(directory)
    try:
        await _run_child(chunks, name, out)
        yield out
    finally:
        # Off the loop: unlinking a file of 100+ MB frees its blocks there and then (~20 ms).
        await asyncio.to_thread(_remove, out)


async def _run_child(chunks: Sequence[bytes], name: str, out: Path) -> None:
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "blocklists.staging", name, str(out),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert child.stdin is not None
    assert child.stderr is not None
    errors = asyncio.create_task(child.stderr.read())
    try:
        with suppress(BrokenPipeError, ConnectionResetError):  # it stopped at a malformed entry
            for chunk in chunks:
                child.stdin.write(chunk)
                await child.stdin.drain()
            child.stdin.close()
        code = await child.wait()
        message = (await errors).decode(errors="replace").strip()
    except BaseException:
        with suppress(ProcessLookupError):
            child.kill()
        await child.wait()
        errors.cancel()
        raise
    if code == 2 and message:
        raise FeedError(message)
    if code != 0:
        last = message.splitlines()[-1] if message else "no message"
        raise FeedError(f"{name}: decoding the snapshot failed (exit status {code}): {last}")


def _new_file(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for path in directory.glob("snapshot-*.sqlite3"):
        with suppress(OSError):
            if now - path.stat().st_mtime > _STALE_SECONDS:
                path.unlink()
    handle, name = tempfile.mkstemp(prefix="snapshot-", suffix=".sqlite3", dir=directory)
    os.close(handle)
    return Path(name)


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)


def main(argv: Sequence[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m blocklists.staging NAME OUT < snapshot", file=sys.stderr)
        return 1
    name, out = argv
    chunks = iter(partial(sys.stdin.buffer.read, 1 << 16), b"")
    try:
        stage_rows(iter_snapshot(chunks, name), Path(out))
    except FeedError as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
