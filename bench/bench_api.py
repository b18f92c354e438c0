"""Benchmark the local API as the extension uses it: lookups on one keep-alive connection.

    uv run python bench/bench_api.py            # 2,000 lookups of one URL each, then batches of 500

Against a running ``linkwarn run`` (bundled sample list), one httpx client, one
kept-alive connection, one request after the other, as the extension's service
worker sends them. The baseline, in the same run and on the same connection, is
a request the API refuses before any work (a body that is not JSON): what the
server stack itself costs. A response written in two segments once waited
40 ms for the client's delayed acknowledgement (about 23 lookups a second); the
listener sets TCP_NODELAY, so a lookup costs what its work costs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.servers import RunningProxy, Upstream  # noqa: E402


def timed(client: httpx.Client, count: int, send: object) -> list[float]:
    times = []
    for n in range(count):
        started = time.perf_counter()
        send(client, n)  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    return times


def one_url(client: httpx.Client, n: int) -> None:
    response = client.post("/v1/check", json={"urls": [f"http://site{n}.example/page"]})
    assert response.status_code == 200, response.text


def batch(client: httpx.Client, n: int) -> None:
    urls = [f"http://site{n}-{i}.example/page" for i in range(500)]
    response = client.post("/v1/check", json={"urls": urls})
    assert response.status_code == 200, response.text


def refused(client: httpx.Client, n: int) -> None:
    response = client.post("/v1/check", content=b"x", headers={"content-type": "text/plain"})
    assert response.status_code == 415, response.text


def show(name: str, times: list[float], per: int = 1) -> float:
    median = statistics.median(times)
    print(f"  {name:<34} {1 / median:8.0f} requests/s  median {median * 1000:6.2f} ms"
          f"  p99 {sorted(times)[int(0.99 * len(times))] * 1000:6.2f} ms"
          + (f"  ({per / median:,.0f} URLs/s)" if per > 1 else ""))  # fmt: skip
    return median


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=2000)
    args = parser.parse_args()
    upstream = Upstream.start()
    with tempfile.TemporaryDirectory(prefix="linkwarn-bench-") as work:
        proxy = RunningProxy.start(Path(work), upstream.port, upstream.port)
        try:
            with httpx.Client(base_url=proxy.api_url, timeout=30) as client:
                timed(client, 50, one_url)  # warm-up
                print(f"one keep-alive connection, {args.count} requests each:")
                base = show("refused before any work (baseline)", timed(client, args.count, refused))
                one = show("lookup of one URL", timed(client, args.count, one_url))
                show("lookup of 500 URLs", timed(client, max(20, args.count // 50), batch), per=500)
                print(f"\na one-URL lookup costs {one / base:.2f}x the baseline request")
        finally:
            proxy.stop()
            upstream.stop()


if __name__ == "__main__":
    main()
