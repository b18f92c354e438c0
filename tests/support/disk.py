"""A small tmpfs: a disk that can really fill up (mounting needs root, as .ci/run has)."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

__all__ = ["fill", "small_disk"]


@contextlib.contextmanager
def small_disk(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of *size* (``2m``) mounted at *path* while the block runs."""
    path.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=False)
    assert done.returncode == 0, "this test mounts a small tmpfs: run it as root (as .ci/run does)"
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def fill(path: Path) -> None:
    """Write *path* until the disk is full (or 16 MB)."""
    with contextlib.suppress(OSError), path.open("wb") as file:
        for _ in range(4096):
            file.write(b"\0" * 4096)
            file.flush()
