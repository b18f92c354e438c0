"""The snapshot decoder child: isolated from the working directory, PYTHONPATH and user site."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest

from blocklists import key_of
from blocklists.feed import FeedError
from blocklists.rows import STAGED_TABLE
from blocklists.staging import child_command, staged_snapshot


def _snapshot(*expressions: str) -> bytes:
    lines = sorted(
        json.dumps({"k": key_of(e).hex(), "a": "block", "e": e, "t": 1}) + "\n" for e in expressions
    )
    return "".join(sorted(lines, key=lambda line: json.loads(line)["k"])).encode()


def _planted(directory: Path) -> Path:
    """`blocklists` and `sqlite3` packages in *directory* that leave a mark when imported."""
    mark = directory / "imported"
    for name in ("blocklists", "sqlite3"):
        package = directory / name
        package.mkdir()
        (package / "__init__.py").write_text(f"open({str(mark)!r}, 'w').close()\n")
    return mark


async def test_the_child_never_imports_from_the_working_directory_or_pythonpath(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    planted = tmp_path / "planted"
    planted.mkdir()
    mark = _planted(planted)
    monkeypatch.chdir(planted)
    monkeypatch.setenv("PYTHONPATH", str(planted))
    text = _snapshot("a.test/", "b.test/")
    async with staged_snapshot(
        [gzip.compress(text)], "snapshot-1.jsonl.gz", tmp_path / "s", len(text)
    ) as out:
        import sqlite3

        with sqlite3.connect(out) as db:
            assert db.execute(f"SELECT count(*) FROM {STAGED_TABLE}").fetchone() == (2,)
    assert not mark.exists()
    assert "-I" in child_command("n", out, None)


async def test_the_child_refuses_more_than_the_stated_unpacked_size(tmp_path: Path) -> None:
    text = _snapshot("a.test/")
    with pytest.raises(FeedError, match="decompresses to more than"):
        async with staged_snapshot([gzip.compress(text * 100)], "snapshot-1.jsonl.gz", tmp_path, len(text)):
            pass
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".sqlite3")]  # the staging file went away
