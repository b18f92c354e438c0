from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from blocklists import Store

from .support.feeds import FeedHost
from .support.servers import RunningProxy, Upstream

VECTORS = Path(__file__).parent / "vectors"
E2E_MODULES = frozenset({"test_evasion", "test_faults", "test_feed_e2e", "test_proxy_e2e", "test_runner",
                         "test_runtime", "test_selective_e2e", "test_soak", "test_tunnels"})  # fmt: skip
BROWSER_MODULES = frozenset({"test_browser_proxy", "test_extension", "test_report"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the slow kinds, so ``-m "not e2e and not browser"`` is the quick loop."""
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1] if item.module else ""
        if module in BROWSER_MODULES:
            item.add_marker(pytest.mark.browser)
        elif module in E2E_MODULES or "running_proxy" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.e2e)


def load_vectors(name: str) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = json.loads((VECTORS / name).read_text("utf-8"))["cases"]
    return cases


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with Store.in_dir(tmp_path) as opened:
        yield opened


@pytest.fixture(scope="session")
def upstreams(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Upstream, Upstream]]:
    plain = Upstream.start()
    secure = Upstream.start(tls_dir=tmp_path_factory.mktemp("upstream-tls"))
    yield plain, secure
    plain.stop()
    secure.stop()


@pytest.fixture(scope="module")
def running_proxy(
    tmp_path_factory: pytest.TempPathFactory, upstreams: tuple[Upstream, Upstream]
) -> Iterator[RunningProxy]:
    """One ``linkwarn run`` per test module, with the bundled sample list."""
    yield from proxy_between(
        tmp_path_factory, upstreams, "--share-site", "social.example", "--share-site", "chat.example"
    )


def proxy_between(
    tmp_path_factory: pytest.TempPathFactory, upstreams: tuple[Upstream, Upstream], *extra: str
) -> Iterator[RunningProxy]:
    """A ``linkwarn run`` with *extra* arguments, routed to the test upstreams, for a module fixture."""
    plain, secure = upstreams
    proxy = RunningProxy.start(
        tmp_path_factory.mktemp("proxy-data"), plain.port, secure.port, *extra, upstream_ca=secure.ca_file
    )
    yield proxy
    proxy.stop()


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def host(tmp_path: Path) -> Iterator[FeedHost]:
    started = FeedHost.start(tmp_path / "feed")
    yield started
    started.stop()
