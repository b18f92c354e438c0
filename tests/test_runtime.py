"""The runtime of a running ``linkwarn run``: it follows other processes' writes to the store, live."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .support.servers import ROOT, RunningProxy, Upstream

NAVIGATE = {"sec-fetch-dest": "document", "sec-fetch-mode": "navigate", "sec-fetch-site": "none"}


@pytest.fixture
def proxy(tmp_path: Path, upstreams: tuple[Upstream, Upstream]) -> Iterator[RunningProxy]:
    started = RunningProxy.start(tmp_path / "data", upstreams[0].port, upstreams[1].port)
    yield started
    started.stop()


def linkwarn(proxy: RunningProxy, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "proxy_addon.cli", *args, "--data-dir", str(proxy.data_dir)]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True, timeout=300)


def status(client: httpx.Client, url: str) -> int:
    return client.get(url, headers=NAVIGATE).status_code


def seconds_until(client: httpx.Client, url: str, expected: int, limit: float) -> float:
    started = time.monotonic()
    while status(client, url) != expected:
        elapsed = time.monotonic() - started
        assert elapsed < limit, f"{url} did not get {expected} within {limit} s"
        time.sleep(0.02)
    return time.monotonic() - started


def test_an_import_by_another_process_is_enforced_within_a_second(
    proxy: RunningProxy, tmp_path: Path
) -> None:
    listing = tmp_path / "late.txt"
    listing.write_text("late-leak.test\nhttp://other.example/leaked/page\n")
    with httpx.Client(proxy=proxy.url, timeout=10) as client:
        assert status(client, "http://late-leak.test/") == 200
        linkwarn(proxy, "import", str(listing), "--source", "late")
        assert seconds_until(client, "http://late-leak.test/", 303, 1.0) < 1.0
        assert status(client, "http://other.example/leaked/page") == 303
        linkwarn(proxy, "remove", "--source", "late", "--all")
        assert seconds_until(client, "http://late-leak.test/", 200, 1.0) < 1.0


def test_requests_are_answered_while_a_million_entries_are_imported(
    proxy: RunningProxy, tmp_path: Path
) -> None:
    listing = tmp_path / "million.txt"
    with listing.open("w") as file:
        for n in range(1_000_000):
            file.write(f"host{n}.mirror{n % 1009}.test\n")
    worst, answered, stop = [0.0], [0], threading.Event()

    def traffic() -> None:
        with httpx.Client(proxy=proxy.url, timeout=10) as client:
            while not stop.is_set():
                for url, expected in (("http://clean.test/during", 200), ("http://mirror.test/", 303)):
                    started = time.monotonic()
                    assert status(client, url) == expected, url
                    worst[0] = max(worst[0], time.monotonic() - started)
                    answered[0] += 1

    runner = threading.Thread(target=traffic)
    runner.start()
    try:
        linkwarn(proxy, "import", str(listing), "--source", "million")
        with httpx.Client(proxy=proxy.url, timeout=10) as client:
            took = seconds_until(client, f"http://host999999.mirror{999_999 % 1009}.test/", 303, 15.0)
    finally:
        stop.set()
        runner.join(30)
    assert answered[0] > 20  # requests flowed the whole time
    assert worst[0] < 1.0, f"a request waited {worst[0]:.2f} s during the import"
    print(f"\n1M entries imported by another process: enforced {took:.2f} s after it ended; "
          f"{answered[0]} requests meanwhile, the slowest {worst[0] * 1000:.0f} ms")  # fmt: skip
