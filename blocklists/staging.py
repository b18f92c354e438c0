"""A feed snapshot decoded into a staging file by a process of its own.

Decoding a million JSON lines is seconds of Python. In a thread of the proxy's
process it takes turns at the GIL with the event loop, and every turn the loop
waits for stalls the requests in flight (5-40 ms measured on two cores, however
the work is sliced). In a child process it costs the proxy a core and nothing
else. The child checks and writes the rows, in key order, to a plain table in a
new SQLite file (`rows.stage_rows`); `Store.apply_feed` then copies them into the store with one
``INSERT ... SELECT``, which SQLite runs without holding the GIL.

The child runs isolated, ``python -I`` (no ``PYTHONPATH``, no user site, not
the working directory on ``sys.path``): it imports the very ``blocklists``
package the proxy runs, from the directory the proxy loaded it from, and
nothing a working directory could hold. Its arguments are that directory, the
snapshot's NAME, the staging file OUT and the number of bytes the snapshot
unpacks to (``-`` when unknown); the snapshot comes on its standard input. It
exits 2 with the problem on standard error for a malformed snapshot.
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
_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)  # the directory holding this blocklists
_CHILD = (
    "import sys; sys.path.insert(0, sys.argv.pop(1)); from blocklists.staging import main; "
    "sys.exit(main(sys.argv[1:]))"
)


@asynccontextmanager
async def staged_snapshot(
    chunks: Sequence[bytes], name: str, directory: Path, unpacked: int | None = None
) -> AsyncIterator[Path]:
    """The snapshot *chunks* decoded by a child process into a staging file in *directory*.

    Raises FeedError naming the problem with a malformed snapshot. The file is
    removed on the way out, and leftovers of killed syncs on the way in.
    """
    out = _new_file(directory)
    try:
        await _run_child(chunks, name, out, unpacked)
        yield out
    finally:
        # Off the loop: unlinking a file of 100+ MB frees its blocks there and then (~20 ms).
        await asyncio.to_thread(_remove, out)


def child_command(name: str, out: Path, unpacked: int | None) -> list[str]:
    """The isolated child's command line."""
    size = "-" if unpacked is None else str(unpacked)
    return [sys.executable, "-I", "-c", _CHILD, _PACKAGE_ROOT, name, str(out), size]


async def _run_child(chunks: Sequence[bytes], name: str, out: Path, unpacked: int | None) -> None:
    child = await asyncio.create_subprocess_exec(
        *child_command(name, out, unpacked),
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
    if len(argv) != 3 or not (argv[2] == "-" or argv[2].isdecimal()):
        print("usage: python -I -m blocklists.staging NAME OUT UNPACKED|- < snapshot", file=sys.stderr)
        return 1
    name, out, size = argv
    unpacked = None if size == "-" else int(size)
    chunks = iter(partial(sys.stdin.buffer.read, 1 << 16), b"")
    try:
        stage_rows(iter_snapshot(chunks, name, unpacked), Path(out))
    except FeedError as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
