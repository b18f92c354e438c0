"""linkwarn run with mitmproxy's proxyauth: the proxy user is the client of events and passes."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator

import httpx
import pytest

from .support.servers import RunningProxy, Upstream


@pytest.fixture(scope="module")
def authenticated(
    tmp_path_factory: pytest.TempPathFactory, upstreams: tuple[Upstream, Upstream]
) -> Iterator[RunningProxy]:
    plain, secure = upstreams
    proxy = RunningProxy.start(
        tmp_path_factory.mktemp("auth"), plain.port, secure.port, "--set", "proxyauth=alice:wonderland"
    )
    yield proxy
    proxy.stop()


def test_the_proxy_user_is_the_client_identity(authenticated: RunningProxy) -> None:
    with httpx.Client(proxy=authenticated.url) as anonymous:
        assert anonymous.get("http://mirror.test/").status_code == 407  # mitmproxy asks first
    auth_url = authenticated.url.replace("http://", "http://alice:wonderland@")
    with httpx.Client(proxy=auth_url, verify=False) as client:
        first = client.get("http://leak.example/inbox", headers={"accept": "text/html"})
        assert first.status_code == 303
        page = client.get(first.headers["location"], headers={"accept": "text/html"})
        assert page.status_code == 200
        assert "leak.example" in page.text
    deadline = time.monotonic() + 10
    events: list[str] = []
    while time.monotonic() < deadline and not events:
        time.sleep(0.3)  # the event log writes once a second
        events = _stored(authenticated)
    assert events, "no warning was stored"
    assert set(events) == {"user:alice"}


def _stored(proxy: RunningProxy) -> list[str]:
    with sqlite3.connect(proxy.data_dir / "linkwarn.sqlite3") as db:
        return [row[0] for row in db.execute("SELECT client FROM events WHERE kind = 'warning'")]
