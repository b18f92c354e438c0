"""``linkwarn run`` for real: a subprocess, real clients, local upstreams on 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import httpx
import pytest

from .support.servers import ROOT, ROUTE_SCRIPT, RunningProxy, Upstream, free_port

NAVIGATE = {"sec-fetch-dest": "document", "sec-fetch-mode": "navigate", "sec-fetch-site": "none"}


@pytest.fixture(scope="module")
def client(running_proxy: RunningProxy) -> Iterator[httpx.Client]:
    context = ssl.create_default_context(cafile=str(running_proxy.trust_file))
    with httpx.Client(proxy=running_proxy.url, verify=context, timeout=20) as opened:
        yield opened


@dataclass
class H2Response:
    status: int
    headers: dict[str, str]
    text: str
    alpn: str


def h2_get(proxy: RunningProxy, host: str, path: str, headers: dict[str, str]) -> H2Response:
    """GET over HTTP/2 through the proxy's CONNECT tunnel, offering only h2 in ALPN."""
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=20) as raw:
        raw.sendall(f"CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n\r\n".encode())
        assert raw.recv(4096).startswith(b"HTTP/1.1 200")
        context = ssl.create_default_context(cafile=str(proxy.trust_file))
        context.set_alpn_protocols(["h2"])
        with context.wrap_socket(raw, server_hostname=host) as tls:
            connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
            connection.initiate_connection()
            request = [(":method", "GET"), (":scheme", "https"), (":authority", host), (":path", path)]
            connection.send_headers(1, request + list(headers.items()), end_stream=True)
            tls.sendall(connection.data_to_send())
            status, response_headers, body, done = 0, {}, b"", False
            while not done:
                data = tls.recv(65536)
                assert data, "the proxy closed the connection"
                for event in connection.receive_data(data):
                    if isinstance(event, h2.events.ResponseReceived):
                        response_headers = {k.decode(): v.decode() for k, v in event.headers}
                        status = int(response_headers[":status"])
                    elif isinstance(event, h2.events.DataReceived):
                        body += event.data
                        connection.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                    elif isinstance(event, h2.events.StreamEnded):
                        done = True
                tls.sendall(connection.data_to_send())
            return H2Response(status, response_headers, body.decode(), tls.selected_alpn_protocol() or "")


def test_unlisted_urls_pass_untouched(client: httpx.Client, upstreams: tuple[Upstream, Upstream]) -> None:
    plain, secure = upstreams
    for url, upstream in (("http://clean.test/a?b=1", plain), ("https://clean.example/x", secure)):
        mark = upstream.mark()
        response = client.get(url, headers=NAVIGATE)
        assert response.status_code == 200, response.text
        assert "upstream page" in response.text
        assert "x-linkwarn" not in response.headers
        assert upstream.hosts_since(mark) == {url.split("/")[2]}


def test_listed_http_navigation_gets_the_page_and_the_host_is_never_contacted(
    client: httpx.Client, upstreams: tuple[Upstream, Upstream]
) -> None:
    marks = [upstream.mark() for upstream in upstreams]
    response = client.get("http://mirror.test/film.mkv", headers=NAVIGATE, follow_redirects=True)
    assert response.status_code == 200
    assert response.url.host == "linkwarn.internal"
    assert "This page is blocked" in response.text
    assert "Sample entry: hosts unreleased films" in response.text
    assert upstreams[0].hosts_since(marks[0]) | upstreams[1].hosts_since(marks[1]) == set()


def test_listed_https_navigation_over_http1(
    client: httpx.Client, upstreams: tuple[Upstream, Upstream]
) -> None:
    mark = upstreams[1].mark()
    response = client.get("https://leak.example/inbox", headers=NAVIGATE)
    assert response.http_version == "HTTP/1.1"
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("https://linkwarn.internal/warning?t=")
    # The own origin over HTTPS, verified against the proxy's CA, answered by the proxy itself.
    page = client.get(location, headers=NAVIGATE)
    assert page.status_code == 200
    assert "Warning: this link leads to leaked material" in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert upstreams[1].hosts_since(mark) == set()


def test_listed_https_navigation_over_http2(running_proxy: RunningProxy) -> None:
    response = h2_get(running_proxy, "www.leak.example", "/", NAVIGATE)
    assert response.alpn == "h2"
    assert response.status == 303
    assert response.headers["location"].startswith("https://linkwarn.internal/warning?t=")
    page = h2_get(
        running_proxy, "linkwarn.internal", response.headers["location"].split(".internal", 1)[1], NAVIGATE
    )
    assert page.status == 200
    assert 'action="/proceed"' in page.text


def test_a_decrypted_unlisted_host_over_http2_reaches_the_upstream(running_proxy: RunningProxy) -> None:
    # social.example is a share site here, so it is decrypted: HTTP/2 to the proxy, HTTP/1.1 on.
    response = h2_get(running_proxy, "social.example", "/h2", NAVIGATE)
    assert (response.alpn, response.status) == ("h2", 200)
    assert "upstream page" in response.text


def test_subresource_gets_a_short_403(running_proxy: RunningProxy) -> None:
    response = h2_get(
        running_proxy, "leak.example", "/logo.png", {"sec-fetch-dest": "image", "sec-fetch-mode": "no-cors"}
    )
    assert response.status == 403
    assert response.headers["x-linkwarn"] == "warn; entry=leak.example/"
    assert response.headers["content-type"].startswith("text/plain")
    assert len(response.text) < 300


def test_each_hop_of_a_redirect_chain_is_checked(
    client: httpx.Client, upstreams: tuple[Upstream, Upstream]
) -> None:
    mark = upstreams[0].mark()
    url = "https://short.test/redirect/2?to=http://mirror.test/film"
    hops = []
    for _ in range(5):
        response = client.get(url, headers=NAVIGATE)
        hops.append(response.status_code)
        if response.status_code != 302:
            break
        url = str(response.url.join(response.headers["location"]))
    # short.test is unlisted, so its tunnel passes through untouched and its redirects reach the
    # client as they are; the request to the listed hop is then the proxy's to answer.
    assert hops == [302, 302, 302, 303]
    assert response.headers["location"].startswith("https://linkwarn.internal/warning?t=")
    assert "mirror.test/film" in client.get(response.headers["location"], headers=NAVIGATE).text
    assert "mirror.test" not in upstreams[0].hosts_since(mark)


def test_proceed_through_a_warning(client: httpx.Client, upstreams: tuple[Upstream, Upstream]) -> None:
    first = client.get("https://leak.example/salaries?q=1", headers=NAVIGATE)
    page = client.get(first.headers["location"], headers=NAVIGATE)
    token = re.search(r'name="token" value="([^"]+)"', page.text)
    assert token is not None
    time.sleep(1.05)  # as long as a person takes to read the page, at least
    posted = client.post(
        "https://linkwarn.internal/proceed",
        data={"token": token.group(1)},
        headers={"origin": "https://linkwarn.internal", "sec-fetch-site": "same-origin"},
    )
    assert posted.status_code == 303
    with_code = posted.headers["location"]
    assert with_code.startswith("https://leak.example/salaries?q=1&linkwarn-proceed-code=")
    consumed = client.get(with_code, headers=NAVIGATE)
    assert consumed.status_code == 303
    assert consumed.headers["location"] == "https://leak.example/salaries?q=1"
    assert "HttpOnly" in consumed.headers["set-cookie"]
    through = client.get("https://leak.example/salaries?q=1", headers=NAVIGATE)
    assert through.status_code == 200
    assert "upstream page" in through.text
    host, path, cookie = upstreams[1].server.seen[-1]
    assert (host, path) == ("leak.example", "/salaries?q=1")  # neither the code nor the pass went up
    assert cookie is None or "linkwarn_pass" not in cookie
    client.cookies.clear()


def test_the_own_origin_over_plain_http_offers_the_ca(running_proxy: RunningProxy) -> None:
    with httpx.Client(proxy=running_proxy.url, timeout=20) as plain:
        page = plain.get("http://linkwarn.internal/", headers=NAVIGATE)
        assert page.status_code == 200
        assert "Install linkwarn" in page.text
        pem = plain.get("http://linkwarn.internal/cert/pem")
    assert pem.content == running_proxy.ca_file.read_bytes()


def test_events_are_stored_and_listed(running_proxy: RunningProxy, client: httpx.Client) -> None:
    client.get("https://mirror.test/events-check", headers=NAVIGATE, follow_redirects=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        command = [sys.executable, "-m", "proxy_addon.cli", "events", "--json"]
        result = subprocess.run(
            [*command, "--data-dir", str(running_proxy.data_dir)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        events = [json.loads(line) for line in result.stdout.splitlines()]
        if any(e["url"] == "https://mirror.test/events-check" for e in events):
            break
        time.sleep(0.3)
    else:
        pytest.fail("the block event never reached the store")
    event = next(e for e in events if e["url"] == "https://mirror.test/events-check")
    assert (event["kind"], event["action"], event["expression"]) == ("block", "block", "mirror.test/")
    assert event["client"] == "addr:127.0.0.1"
    assert not any("clean.test" in (e["url"] or "") for e in events)  # unlisted traffic is never logged


def test_oversized_and_malformed_requests_never_crash_the_proxy(
    running_proxy: RunningProxy, client: httpx.Client
) -> None:
    with socket.create_connection(("127.0.0.1", running_proxy.port), timeout=20) as raw:
        raw.sendall(
            b"GET http://mirror.test/ HTTP/1.1\r\nHost: mirror.test\r\nX-Big: " + b"a" * 300_000 + b"\r\n\r\n"
        )
        answer = raw.recv(200)
    assert answer.startswith(b"HTTP/1.1 4")  # refused one way or another, never forwarded
    for junk in (
        b"\x00\x01garbage\r\n\r\n",
        b"GET http://[::zz]/ HTTP/1.1\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
    ):
        with socket.create_connection(("127.0.0.1", running_proxy.port), timeout=20) as raw:
            raw.sendall(junk)
            raw.recv(200)
    # Still serving, still catching.
    assert client.get("http://mirror.test/after", headers=NAVIGATE).status_code == 303
    assert client.get("http://clean.test/after", headers=NAVIGATE).status_code == 200


def test_the_addon_loads_in_plain_mitmdump(tmp_path: Path, upstreams: tuple[Upstream, Upstream]) -> None:
    port, api_port = free_port(), free_port()
    mitmdump = Path(sys.executable).parent / "mitmdump"
    env = {**os.environ, "LINKWARN_TEST_HTTP_PORT": str(upstreams[0].port), "LINKWARN_TEST_HTTPS_PORT": "1"}
    process = subprocess.Popen(
        [str(mitmdump), "-q", "--listen-host", "127.0.0.1", "--listen-port", str(port),
         "-s", str(ROOT / "proxy_addon" / "addon.py"), "-s", str(ROUTE_SCRIPT),
         "--set", "connection_strategy=lazy", "--set", f"confdir={tmp_path / 'conf'}",
         "--set", f"linkwarn_data_dir={tmp_path / 'data'}", "--set", "linkwarn_proceed_ttl=5m",
         "--set", f"linkwarn_api_port={api_port}"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        with httpx.Client(proxy=f"http://127.0.0.1:{port}", timeout=10) as plain:
            while True:
                try:
                    response = plain.get("http://mirror.test/", headers=NAVIGATE)
                    break
                except httpx.TransportError:
                    assert process.poll() is None, "mitmdump exited"
                    assert time.monotonic() < deadline, "mitmdump did not start in time"
                    time.sleep(0.2)
            assert response.status_code == 303
            assert plain.get("http://clean.test/", headers=NAVIGATE).status_code == 200
        with httpx.Client(proxy=f"http://127.0.0.1:{port}", timeout=10, verify=False) as insecure:
            page = insecure.get(response.headers["location"], headers=NAVIGATE)  # served by mitmdump
            assert page.status_code == 200
            assert "This page is blocked" in page.text
        # The script serves the extension's local API too.
        status = httpx.get(f"http://127.0.0.1:{api_port}/v1/status", timeout=10).json()
        assert status["ok"] is True
        assert status["sources"] == {"sample": 6}
    finally:
        process.terminate()
        process.wait(15)


def test_mitmdump_refuses_a_bad_linkwarn_option(tmp_path: Path) -> None:
    mitmdump = Path(sys.executable).parent / "mitmdump"
    result = subprocess.run(
        [str(mitmdump), "-q", "--listen-port", "0", "-s", str(ROOT / "proxy_addon" / "addon.py"),
         "--set", f"confdir={tmp_path}", "--set", "linkwarn_proceed_ttl=forever"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "linkwarn_proceed_ttl: invalid duration 'forever'" in result.stdout + result.stderr


def test_secrets_the_ca_key_and_the_store_are_readable_by_their_owner_only(
    running_proxy: RunningProxy,
) -> None:
    import stat

    data = running_proxy.data_dir
    for path in (data / "proceed.key", data / "api.token", data / "linkwarn.sqlite3", data / "mitmproxy"
                 / "mitmproxy-ca.pem", data / "mitmproxy"):  # fmt: skip
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, f"{path.name} is {oct(mode)}"
