"""Benchmark ``linkwarn import`` of a big domain list against a floor measured in the same run.

    uv run python bench/bench_import.py                      # 1M lines
    uv run python bench/bench_import.py --sizes 1000000 5000000
    uv run python bench/bench_import.py --file ../shared/real-lists/domains-an0m-aggregate.txt.gz

For each size it writes a synthetic domain list (reserved and real-looking
suffixes, a few subdomains, some upper case: the shapes of the real lists),
then times, each in a fresh process and alternating over --rounds rounds:

- the floor: plain Python that reads the file, makes each line's ``host/``
  expression and its SHA-256 key, and inserts the rows into a SQLite table
  keyed like the store's in one transaction;
- ``linkwarn import FILE`` into an empty data directory (detecting the format,
  canonicalizing, linting against the Public Suffix List, de-duplicating, and
  writing the store in one transaction).

It prints the best time of each and their ratio (the target: at most 2x).
Both include starting Python; the ratio is what to compare across machines.
"""

from __future__ import annotations

import argparse
import gzip
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

FLOOR = r"""
import hashlib, sqlite3, sys
path, store = sys.argv[1], sys.argv[2]
db = sqlite3.connect(store, isolation_level=None)
db.execute("PRAGMA journal_mode = WAL")
db.execute("CREATE TABLE entries (key BLOB NOT NULL PRIMARY KEY, expression TEXT) WITHOUT ROWID")
rows = []
with open(path, encoding="utf-8") as lines:
    for line in lines:
        host = line.strip().lower()
        if host and not host.startswith("#"):
            expression = host + "/"
            rows.append((hashlib.sha256(expression.encode()).digest(), expression))
db.execute("BEGIN")
db.executemany("INSERT OR REPLACE INTO entries VALUES (?, ?)", rows)
db.execute("COMMIT")
print(len(rows))
"""

SUFFIXES = (
    ["com"] * 40 + ["net"] * 8 + ["org"] * 6 + ["xyz", "top", "shop", "online", "info", "ru", "de", "cn"] * 3
    + ["co.uk", "com.br", "com.au", "co.jp", "workers.dev", "pages.dev", "azure-api.net", "github.io",
       "blogspot.com", "test", "example"]
)  # fmt: skip


def write_list(path: Path, count: int, seed: int = 7) -> None:
    """*count* distinct names, one a line, in a fixed pseudo-random mix."""
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz0123456789"
    with path.open("w", encoding="utf-8") as out:
        for n in range(count):
            label = "".join(rng.choices(letters, k=rng.randint(5, 14))) + f"{n:x}"
            name = f"{label}.{rng.choice(SUFFIXES)}"
            roll = rng.random()
            if roll < 0.25:
                name = f"{rng.choice(['www', 'mail', 'login', 'cdn', 'secure'])}.{name}"
            elif roll < 0.30:
                name = f"a{n % 97}.b{n % 13}.{name}"
            if roll > 0.97:
                name = name.upper()
            out.write(name + "\n")


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{command[:4]} failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return elapsed


def measure(path: Path, rounds: int, work: Path) -> tuple[float, float, int]:
    lines = sum(1 for _ in path.open(encoding="utf-8"))
    floors, imports = [], []
    for _ in range(rounds):
        store = work / "floor.sqlite3"
        for leftover in work.glob("floor.sqlite3*"):
            leftover.unlink()
        floors.append(timed([sys.executable, "-c", FLOOR, str(path), str(store)]))
        data = work / "data"
        shutil.rmtree(data, ignore_errors=True)
        imports.append(
            timed([sys.executable, "-m", "proxy_addon.cli", "import", "--data-dir", str(data), str(path)])
        )
        print(f"    round: floor {floors[-1]:.2f} s, linkwarn import {imports[-1]:.2f} s", flush=True)
    return min(floors), min(imports), lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--file", type=Path, default=None, help="a real list (.txt or .txt.gz) instead")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="linkwarn-bench-import-") as scratch:
        work = Path(scratch)
        jobs: list[tuple[str, Path]] = []
        if args.file is not None:
            path = work / args.file.name.removesuffix(".gz")
            data = args.file.read_bytes()
            path.write_bytes(gzip.decompress(data) if args.file.suffix == ".gz" else data)
            jobs.append((args.file.name, path))
        else:
            for size in args.sizes:
                path = work / f"domains-{size}.txt"
                write_list(path, size)
                jobs.append((f"{size:,} synthetic domains", path))
        print("| list | lines | floor | linkwarn import | ratio |")
        print("| --- | ---: | ---: | ---: | ---: |")
        rows = []
        for label, path in jobs:
            print(f"  {label}: {args.rounds} rounds", flush=True)
            floor, imported, lines = measure(path, args.rounds, work)
            rows.append(
                f"| {label} | {lines:,} | {floor:.2f} s | {imported:.2f} s | {imported / floor:.2f}x |"
            )
            path.unlink()
        print("\n".join(rows))


if __name__ == "__main__":
    main()
