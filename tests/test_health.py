"""/healthz and /readyz in each state, and the listener inside a real ``linkwarn run``."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from blocklists import Action, Entry
from blocklists.store import FeedState
from proxy_addon.health import create_app
from proxy_addon.runtime import Runtime
from proxy_addon.settings import parse_listen

from .support.hooks import proxy_with
from .support.servers import RunningProxy, Upstream, free_port

ENTRIES = [Entry.listing("leak.test/", Action.WARN, source="corp")]


async def get(runtime: Runtime, path: str) -> tuple[int, Any]:
    transport = httpx.ASGITransport(app=create_app(runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        response = await client.get(path)
    return response.status_code, response.json()


async def test_loading_is_neither_healthy_nor_ready() -> None:
    runtime = Runtime()  # configured and opening, not yet deciding
    assert await get(runtime, "/healthz") == (
        503,
        {"status": "loading", "why": "the lists are still opening"},
    )
    status, body = await get(runtime, "/readyz")
    assert status == 503
    assert body["failing"] == ["lists", "feeds", "store"]


async def test_ready_when_lists_are_loaded_and_the_store_takes_writes(tmp_path: Path) -> None:
    async with proxy_with(tmp_path, ENTRIES) as proxy:
        status, body = await get(proxy.runtime, "/healthz")
        assert (status, body["status"]) == (200, "ok")
        status, body = await get(proxy.runtime, "/readyz")
        assert status == 200, body
        assert body["status"] == "ready"
        assert body["checks"]["store"] == {"ok": True, "why": "the store takes writes"}
        assert proxy.runtime.store is not None
        assert await proxy.runtime.store.feed_states() == []  # the write probe left nothing behind


async def test_a_feed_past_its_expiry_is_not_ready_but_healthy(tmp_path: Path) -> None:
    async with proxy_with(tmp_path, ENTRIES) as proxy:
        assert proxy.runtime.store is not None
        now = int(time.time())
        await proxy.runtime.store.save_feed_state(
            FeedState(url="http://127.0.0.1:1/feed/", feed_id="corp", version=3, generated_at=now - 86400,
                      expires_at=now - 60, last_success=now - 86400.0)
        )  # fmt: skip
        assert (await get(proxy.runtime, "/healthz"))[0] == 200
        status, body = await get(proxy.runtime, "/readyz")
        assert status == 503
        assert body["failing"] == ["feeds"]
        assert body["checks"]["feeds"]["why"] == "1 of 1 feeds are past their expiry"


async def test_a_read_only_store_is_not_ready(tmp_path: Path) -> None:
    async with proxy_with(tmp_path, ENTRIES) as proxy:
        store = proxy.runtime.store
        assert store is not None
        # SQLite's own read-only mode on the writer connection: the proxy runs as root here, so file
        # modes cannot make the store read-only; every write then fails as on a read-only mount.
        writer = store._writer
        assert writer is not None
        await writer.execute("PRAGMA query_only = ON")
        status, body = await get(proxy.runtime, "/readyz")
        assert status == 503
        assert body["failing"] == ["store"]
        assert "readonly" in body["checks"]["store"]["why"]
        assert (await get(proxy.runtime, "/healthz"))[0] == 200  # requests are still decided
        await writer.execute("PRAGMA query_only = OFF")
        assert (await get(proxy.runtime, "/readyz"))[0] == 200


async def test_lists_that_cannot_be_used_are_unhealthy(tmp_path: Path) -> None:
    (tmp_path / "linkwarn.sqlite3").write_bytes(b"not a database at all" * 100)
    async with proxy_with(tmp_path, []) as proxy:
        status, body = await get(proxy.runtime, "/healthz")
        assert status == 503
        assert body["status"] == "unavailable"
        assert "not a usable linkwarn store" in body["why"]


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [("9808", "127.0.0.1", 9808), (":9808", "127.0.0.1", 9808), ("0.0.0.0:9808", "0.0.0.0", 9808),
     ("[::1]:9808", "::1", 9808)],
)  # fmt: skip
def test_listen_addresses(text: str, host: str, port: int) -> None:
    assert (parse_listen(text).host, parse_listen(text).port) == (host, port)


@pytest.mark.parametrize("text", ["", "host:", "host:0", "host:70000", "a b:80", "[::1]9808"])
def test_bad_listen_addresses(text: str) -> None:
    with pytest.raises(ValueError, match=r"HOST:PORT|no usable host"):
        parse_listen(text)


# -- inside linkwarn run ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def monitored(
    tmp_path_factory: pytest.TempPathFactory, upstreams: tuple[Upstream, Upstream]
) -> Iterator[tuple[RunningProxy, str]]:
    plain, secure = upstreams
    port = free_port()
    proxy = RunningProxy.start(
        tmp_path_factory.mktemp("monitored"), plain.port, secure.port, "--metrics", f"127.0.0.1:{port}"
    )
    yield proxy, f"http://127.0.0.1:{port}"
    proxy.stop()


def test_linkwarn_run_serves_metrics_and_health(monitored: tuple[RunningProxy, str]) -> None:
    proxy, base = monitored
    assert any(f"metrics and health: {base}/metrics" in line for line in proxy.output)
    assert httpx.get(f"{base}/healthz").json()["status"] == "ok"
    ready = httpx.get(f"{base}/readyz")
    assert ready.status_code == 200, ready.text
    assert json.loads((proxy.data_dir / "run.json").read_text())["metrics"] == base

    def decided() -> float:
        text = httpx.get(f"{base}/metrics").text
        return sum(
            s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == "linkwarn_decisions_total" and s.labels == {"action": "block", "kind": "page"}
        )

    before = decided()
    with httpx.Client(proxy=proxy.url) as client:
        answer = client.get("http://mirror.test/", headers={"accept": "text/html"})
    assert answer.status_code == 303
    assert decided() == before + 1
    assert httpx.get(f"{base}/nothing").status_code == 404
