from __future__ import annotations

import sqlite3
from pathlib import Path

from blocklists import Action, Entry
from blocklists.rows import ROWS_PER_INSERT, STAGED_TABLE, VALUE_COLUMNS, grouped, stage_rows


def _rows(count: int) -> list[tuple[object, ...]]:
    entries = [Entry.listing(f"h{n}.test/", Action.WARN, require_reason=n % 2 == 0) for n in range(count)]
    return sorted(e.row() for e in entries)


def test_value_columns_follow_the_entry_row() -> None:
    (row,) = _rows(1)
    assert len(row) == 1 + len(VALUE_COLUMNS.split(","))
    assert VALUE_COLUMNS.split(", ")[-2:] == ["require_reason", "marker"]


def test_grouped_flattens_full_groups_and_leaves_the_rest() -> None:
    rows = _rows(ROWS_PER_INSERT * 2 + 3)
    rest: list[tuple[object, ...]] = []
    groups = list(grouped(rows, rest))  # type: ignore[arg-type]
    assert [len(g) for g in groups] == [ROWS_PER_INSERT * len(rows[0])] * 2
    assert rest == rows[-3:]


def test_staged_rows_read_back_in_order(tmp_path: Path) -> None:
    rows = _rows(ROWS_PER_INSERT + 7)
    stage_rows(rows, tmp_path / "s.sqlite3")  # type: ignore[arg-type]
    db = sqlite3.connect(tmp_path / "s.sqlite3")
    back = db.execute(f"SELECT key, {VALUE_COLUMNS} FROM {STAGED_TABLE} ORDER BY rowid").fetchall()
    assert [(*r[:-2], bool(r[-2]), r[-1]) for r in back] == rows
