"""Entries as plain rows in SQLite: the column order, and rows grouped per INSERT.

Bulk paths (an import, a feed's diff, a snapshot's staging file) write
`EntryRow` tuples rather than `Entry` objects. This module says, once, which
columns a row's values go to and how many rows one statement carries; the
store and the staging child both write through it. It knows nothing of the
feed format.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from itertools import chain, islice
from pathlib import Path
from typing import Any

from .entry import EntryRow

__all__ = ["ROWS_PER_INSERT", "STAGED_TABLE", "VALUE_COLUMNS", "grouped", "stage_rows"]

STAGED_TABLE = "staged"
# An EntryRow's columns after its key, in its order (see `Entry.row`).
VALUE_COLUMNS = "expression, action, reason, category, incident, added_at, expires_at, require_reason, marker"
_ROW_MARKS = "(" + ", ".join("?" * (1 + VALUE_COLUMNS.count(",") + 1)) + ")"

# Rows per INSERT statement. Python's sqlite3 spends more on each statement
# execution than SQLite spends storing a row; 50 rows a statement halve a
# million-row insert (measured), and their 500 parameters stay under the 999
# that the oldest SQLite allows.
ROWS_PER_INSERT = 50


def grouped(rows: Iterable[EntryRow], rest: list[EntryRow]) -> Iterator[tuple[Any, ...]]:
    """*rows* flattened, ROWS_PER_INSERT at a time; the last, shorter group goes to *rest*."""
    it = iter(rows)
    while len(group := list(islice(it, ROWS_PER_INSERT))) == ROWS_PER_INSERT:
        yield tuple(chain.from_iterable(group))
    rest.extend(group)


def stage_rows(rows: Iterable[EntryRow], out: Path) -> None:
    """Write *rows* (in key order) to the staging table of a new SQLite file *out*."""
    db = sqlite3.connect(out, isolation_level=None)
    try:
        # A scratch file: no journal, no syncs; a crash leaves a file nobody applies.
        db.execute("PRAGMA journal_mode = OFF")
        db.execute("PRAGMA synchronous = OFF")
        db.execute(f"CREATE TABLE {STAGED_TABLE} (key, {VALUE_COLUMNS})")
        db.execute("BEGIN")
        rest: list[EntryRow] = []
        many = ",".join([_ROW_MARKS] * ROWS_PER_INSERT)
        db.executemany(f"INSERT INTO {STAGED_TABLE} VALUES {many}", grouped(rows, rest))  # noqa: S608
        db.executemany(f"INSERT INTO {STAGED_TABLE} VALUES {_ROW_MARKS}", rest)  # noqa: S608
        db.execute("COMMIT")
    finally:
        db.close()
