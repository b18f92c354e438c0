"""Benchmark the matching core: index size, decision time, load time, GC pauses.

    uv run python bench/bench_index.py            # 1M and 5M entries
    uv run python bench/bench_index.py --sizes 1000000

For each size it fills a real SQLite store with synthetic entries, then prints:
the index's bytes per entry; the time to load it from the store; decision time
(canonicalize + expressions + index lookup) p50/p99 for typical URLs and for
URLs with 30 expressions, and the time to answer a TLS connection's "must
this host be read?" (the host markers); the longest garbage-collector pause while deciding,
and a forced full collection, with the index resident. For comparison it
prints what a Python set of the same expressions costs.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from blocklists import Checker, PrefixIndex, Store
from tests.support.synthetic import synthetic_entries

DECISIONS = 20_000


def typical_urls(count: int, rng: random.Random) -> list[str]:
    paths = ["/", "/index.html", "/news/2014/12/story.html?id=42", "/search?q=studio+leak", "/a/b/c.png"]
    hosts = ["www.news.example", "cdn.static.test", "mail.corp.example", "intranet.test", "social.example"]
    return [f"https://{rng.choice(hosts)}{rng.choice(paths)}&n={n}".replace("/&", "/?") for n in range(count)]


def deep_urls(count: int) -> list[str]:
    # Five hosts (exact + four under the registrable domain) x six paths = 30 expressions.
    return [f"http://a{n}.b.c.d.e.leak.test/1/2/3/4/page{n}.html?session={n}" for n in range(count)]


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def time_decisions(checker: Checker, urls: list[str]) -> tuple[float, float, int]:
    samples = []
    clock = time.perf_counter_ns
    expressions = 0
    for url in urls:
        start = clock()
        _, found, _ = checker.prefilter(url)
        samples.append((clock() - start) / 1000)
        expressions = max(expressions, len(found))
    return statistics.median(samples), percentile(samples, 0.99), expressions


def time_host_reads(checker: Checker, hosts: list[str]) -> tuple[float, float]:
    """`Checker.reads_host`: the question each TLS ClientHello asks (selective decryption)."""
    samples = []
    clock = time.perf_counter_ns
    for host in hosts:
        start = clock()
        checker.reads_host(host)
        samples.append((clock() - start) / 1000)
    return statistics.median(samples), percentile(samples, 0.99)


def full_collection_ms() -> float:
    gc.collect()
    start = time.perf_counter()
    gc.collect()
    return (time.perf_counter() - start) * 1000


class GcPauses:
    """Records how long each garbage collection takes while installed."""

    def __init__(self) -> None:
        self.pauses: list[float] = []
        self._start = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.pauses.append((time.perf_counter() - self._start) * 1000)

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


async def run_size(count: int, workdir: Path) -> None:
    print(f"\n== {count:,} entries ==")
    async with Store(workdir / f"bench-{count}.sqlite3") as store:
        start = time.perf_counter()
        await store.import_entries("bench", synthetic_entries(count))
        print(f"store filled in            {time.perf_counter() - start:8.1f} s")
        checker = Checker(store)
        gc.collect()
        start = time.perf_counter()
        index = await checker.reload()
        print(f"index load from store      {time.perf_counter() - start:8.2f} s")
        mib = index.nbytes / 2**20
        print(f"index memory               {index.nbytes / count:8.2f} bytes/entry ({mib:.1f} MiB)")
        assert checker.hosts is not None
        markers = checker.hosts.markers
        print(f"host markers               {len(markers):,} hosts, {markers.nbytes / 2**20:.1f} MiB")

        rng = random.Random(7)
        typical = typical_urls(DECISIONS, rng)
        deep = deep_urls(DECISIONS)
        time_decisions(checker, typical[:2000])  # warm the caches as a running proxy has
        with GcPauses() as pauses:
            p50, p99, n = time_decisions(checker, typical)
            print(f"decision, typical URL      p50 {p50:6.1f} us   p99 {p99:6.1f} us")
            p50, p99, n = time_decisions(checker, deep)
            print(f"decision, {n}-expression URL p50 {p50:6.1f} us   p99 {p99:6.1f} us")
            p50, p99 = time_host_reads(checker, [url.split("/")[2] for url in typical])
            print(f"read this host? (TLS)      p50 {p50:6.1f} us   p99 {p99:6.1f} us   hosts seen before")
            new_hosts = [f"www{n}.site{n % 997}.example" for n in range(len(typical))]
            p50, p99 = time_host_reads(checker, new_hosts)
            print(f"                           p50 {p50:6.1f} us   p99 {p99:6.1f} us   each host new")
            assert checker.reads_host("www.mirror8.leak8.test"), "a listed host must be read"
            hit = "http://www.mirror8.leak8.test/files/8/salaries.xlsx"
            verdict = await checker.check(hit)
            assert verdict.entry is not None, "a listed URL must match"
        longest = max(pauses.pauses, default=0)
        print(f"GC while deciding          {len(pauses.pauses)} collections, longest {longest:.2f} ms")
        with_index = full_collection_ms()
        checker.index = PrefixIndex.empty()
        del index
        without_index = full_collection_ms()
        print(
            f"forced full collection     {with_index:.1f} ms with the index resident, "
            f"{without_index:.1f} ms without: the index adds {with_index - without_index:+.1f} ms"
        )

        if count <= 1_000_000:
            expressions = {entry.expression for entry in synthetic_entries(count)}
            before = time.perf_counter()
            gc.collect()
            full = (time.perf_counter() - before) * 1000
            size = sys.getsizeof(expressions) + sum(sys.getsizeof(e) for e in expressions)
            print(
                f"for comparison, set[str]   {size / count:8.1f} bytes/entry, full collection {full:.0f} ms"
            )
            del expressions


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 5_000_000])
    args = parser.parse_args()
    print(f"Python {sys.version.split()[0]} on {sys.platform}")
    with tempfile.TemporaryDirectory(prefix="linkwarn-bench-") as workdir:
        for count in args.sizes:
            asyncio.run(run_size(count, Path(workdir)))


if __name__ == "__main__":
    main()
