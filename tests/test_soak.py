"""The soak's short form: a minute of 64 connections through ``linkwarn run``, HTTP and HTTPS."""

from __future__ import annotations

import asyncio

from .support.servers import RunningProxy, Upstream
from .support.soak import LISTED, resident_kib, soak

SECONDS = 60
CONNECTIONS = 64


def test_a_minute_of_load_holds(running_proxy: RunningProxy, upstreams: tuple[Upstream, Upstream]) -> None:
    marks = [u.mark() for u in upstreams]
    before = resident_kib(running_proxy.process.pid)
    result = asyncio.run(soak(running_proxy.port, SECONDS, CONNECTIONS, running_proxy.trust_file))
    after = resident_kib(running_proxy.process.pid)
    seen = set().union(*(u.hosts_since(m) for u, m in zip(upstreams, marks, strict=True)))
    print(
        f"\nsoak {SECONDS} s, {CONNECTIONS} connections: {result.requests} requests "
        f"({result.requests / SECONDS:.0f}/s), {result.listed_sent} listed, {result.errors} errors, "
        f"{result.listed_through} listed through; p50 {result.percentile(0.5):.1f} ms, "
        f"p99 {result.percentile(0.99):.1f} ms; resident {before // 1024} -> {after // 1024} MiB"
    )
    assert result.errors == 0, result.problems[:10]
    assert result.listed_through == 0
    assert result.listed_sent > 50
    assert result.requests > 1000
    assert not seen & set(LISTED), seen & set(LISTED)  # the upstreams never saw a listed host
