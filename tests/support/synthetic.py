"""Synthetic entries for large-list tests and benchmarks: reserved names, reproducible."""

from __future__ import annotations

from collections.abc import Iterator

from blocklists import Action, Entry, key_of


def synthetic_entries(count: int, start: int = 0, action: Action = Action.BLOCK) -> Iterator[Entry]:
    """Hosts, folders and pages in a fixed mix; entry n is the same whatever the count."""
    for n in range(start, start + count):
        if n % 4 == 0:
            expression = f"mirror{n}.leak{n % 997}.test/files/{n}/"
        elif n % 4 == 1:
            expression = f"dump{n}.example/leak/{n}.zip"
        else:
            expression = f"host{n}.mirror{n % 1009}.test/"
        yield Entry(key=key_of(expression), action=action, expression=expression, added_at=0)
