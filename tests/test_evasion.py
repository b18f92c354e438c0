"""No way past the proxy: the evasion corpus through check, the local API and a running proxy.

Every case of ``tests/vectors/evasion.json`` (spellings of listed URLs, and near
misses that must pass) gets the same answer from `Checker` (what ``linkwarn
check`` runs), from ``linkwarn check`` itself, from ``POST /v1/check`` and from
``linkwarn run`` over HTTP/1.1, HTTPS and HTTP/2, against local upstreams that
record every request, so a listed host is shown never to have been contacted.
Channel cases (other Host headers, SNI, CONNECT targets, absolute-form requests
inside tunnels) go over raw sockets.
"""

from __future__ import annotations

import json
import re
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ada_url
import h2.config
import h2.connection
import h2.events
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blocklists import Action, Checker, Entry, Store
from blocklists.links import find_links
from tests.support.evasion import full_url, render
from tests.support.hooks import NAVIGATE, proxy_with

from .conftest import VECTORS
from .support.servers import ROOT, RunningProxy, Upstream, read_response

CORPUS = json.loads((VECTORS / "evasion.json").read_text("utf-8"))
CASES: list[dict[str, Any]] = CORPUS["cases"]
ENTRIES = [Entry.listing(e["expression"], Action(e["action"]), source="corpus") for e in CORPUS["entries"]]
HELD = {"block", "warn"}


def expected_action(case: dict[str, Any]) -> str | None:
    return case["expect"]


def test_the_corpus_file_is_what_its_generator_makes() -> None:
    assert (VECTORS / "evasion.json").read_text("utf-8") == render()
    listed = [c for c in CASES if c["expect"]]
    assert len(listed) >= 400
    assert len(CASES) - len(listed) >= 300


def _effective(action: str | None) -> str | None:
    return None if action in (None, "allow") else action


# -- check ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("evasion-store")

    async def fill() -> None:
        async with Store.in_dir(data_dir) as store:
            await store.import_entries("corpus", ENTRIES)

    import asyncio

    asyncio.run(fill())
    return data_dir


async def test_every_case_through_the_checker(corpus_store: Path) -> None:
    async with Store.in_dir(corpus_store) as store:
        checker = Checker(store)
        await checker.reload()
        wrong = []
        for case in CASES:
            verdict = await checker.check(full_url(case))
            got = _effective(None if verdict.action is None else str(verdict.action))
            if got != case["expect"]:
                wrong.append((case["url"][:100], case["expect"], got))
    assert wrong == []


# Where a post's reader would not see one link: a tab or a line break inside the host name.
NOT_A_LINK_IN_TEXT = re.compile(r"^[a-z]+://[^/]*[\t\n\r]")


async def test_every_listed_case_posted_as_a_link_is_held(corpus_store: Path) -> None:
    """Each listed spelling in a post's text is found, screened (`Checker.may_match`) and decided listed."""
    async with Store.in_dir(corpus_store) as store:
        checker = Checker(store)
        await checker.reload()
        missed = []
        for case in CASES:
            url = full_url(case)
            verdict = await checker.check(url)
            if verdict.action is not None and verdict.action is not Action.ALLOW:
                assert checker.may_match(url), url  # the screen never hides a listed URL
            if case["expect"] not in HELD:
                continue
            body = json.dumps({"text": f"look {url} now"}).encode()
            actions = set()
            for link in find_links(body, "application/json"):
                if checker.may_match(link):
                    found = await checker.check(link)
                    actions.add(None if found.action is None else str(found.action))
            if case["expect"] not in actions:
                missed.append(url)
            assert checker.screens_hosts
            screened = set()  # as a share guard finds them: the body's hosts screened first
            for link in find_links(body, "application/json", checker.reads_host):
                if checker.may_match(link):
                    found = await checker.check(link)
                    screened.add(None if found.action is None else str(found.action))
            assert actions - {None} <= screened, url
    assert [url for url in missed if not NOT_A_LINK_IN_TEXT.match(url)] == []
    assert len(missed) <= 3


def test_every_case_through_linkwarn_check(corpus_store: Path) -> None:
    urls = [full_url(case) for case in CASES]
    result = subprocess.run(
        [sys.executable, "-m", "proxy_addon.cli", "check", "--json", "--data-dir", str(corpus_store), *urls],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == len(CASES), result.stderr[-2000:]
    wrong = [
        (case["url"][:100], case["expect"], _effective(line.get("action")))
        for case, line in zip(CASES, lines, strict=True)
        if _effective(line.get("action")) != case["expect"]
    ]
    assert wrong == []


# -- the running proxy ---------------------------------------------------------------


@pytest.fixture(scope="module")
def proxy(
    tmp_path_factory: pytest.TempPathFactory, upstreams: tuple[Upstream, Upstream], corpus_store: Path
) -> Iterator[RunningProxy]:
    data_dir = tmp_path_factory.mktemp("evasion-proxy")
    for name in ("linkwarn.sqlite3",):
        (data_dir / name).write_bytes((corpus_store / name).read_bytes())
    started = RunningProxy.start(
        data_dir,
        upstreams[0].port,
        upstreams[1].port,
        "--no-sample",
        "--set",
        "stream_large_bodies=1k",
        upstream_ca=upstreams[1].ca_file,
    )
    yield started
    started.stop()


def test_every_case_through_the_api(proxy: RunningProxy) -> None:
    wrong = []
    with httpx.Client(base_url=proxy.api_url, timeout=30) as client:
        for start in range(0, len(CASES), 100):
            batch = CASES[start : start + 100]
            response = client.post("/v1/check", json={"urls": [full_url(c) for c in batch]})
            assert response.status_code == 200, response.text[:500]
            for case, result in zip(batch, response.json()["results"], strict=True):
                if _effective(result["action"]) != case["expect"]:
                    wrong.append((case["url"][:100], case["expect"], result["action"], result["error"]))
    assert wrong == []


def wire_forms(url: str) -> list[tuple[str, str, str]]:
    """(scheme, authority, path) as clients put this URL on the wire: as typed where HTTP can carry
    it, and as a browser sends it (the WHATWG parser's form)."""
    forms = []
    parsed = None
    has_scheme = re.match(r"[\x00-\x20]*[a-zA-Z][a-zA-Z0-9+.-]*:", url) is not None
    for attempt in (url,) if has_scheme else ("http://" + url.lstrip("/"),):  # a bare host is http, as typed
        try:
            parsed = ada_url.URL(attempt)
        except ValueError:
            continue
        if parsed.protocol in ("http:", "https:"):
            break
    if parsed is not None and parsed.protocol in ("http:", "https:"):
        forms.append((parsed.protocol[:-1], parsed.host, (parsed.pathname or "/") + parsed.search))
    scheme, sep, rest = url.partition("://")
    authority, slash, path = rest.partition("/")
    path = "/" + path.split("#", 1)[0]
    typed = (scheme.lower(), authority.rsplit("@", 1)[-1], path)
    printable = all(0x21 <= ord(c) < 0x7F for c in authority + path)
    carried = sep and slash and scheme.lower() in ("http", "https") and authority and printable
    if carried and "\\" not in authority and typed not in forms:
        forms.append(typed)
    return forms


def _sni(authority: str) -> str | None:
    host = authority.rsplit(":", 1)[0] if not authority.startswith("[") else authority
    try:
        parsed = ada_url.URL(f"https://{authority}/")
    except ValueError:
        return None
    if parsed.host_type != ada_url.HostType.DEFAULT or not host:
        return None
    return parsed.hostname


class Wire:
    """Raw HTTP/1.1 to the proxy: plain absolute-form, or inside a CONNECT tunnel with TLS."""

    def __init__(self, proxy: RunningProxy, trust: Path | None = None) -> None:
        self.proxy = proxy
        self.trust = trust if trust is not None else proxy.trust_file  # the CAs the client trusts

    def _read(self, sock: Any) -> tuple[int, dict[str, str]]:
        status, headers, _ = read_response(sock)
        return status, headers

    def plain(self, authority: str, path: str, extra: str = "") -> int:
        with socket.create_connection(("127.0.0.1", self.proxy.port), timeout=20) as sock:
            target = f"http://{authority}{path}"
            sock.sendall(
                f"GET {target} HTTP/1.1\r\nHost: {authority}\r\nAccept: text/html\r\n{extra}\r\n".encode(
                    "latin-1"
                )
            )
            try:
                return self._read(sock)[0]
            except ConnectionError:
                return 0

    def tunnel(self, connect: str, sni: str | None, request: str) -> int:
        with socket.create_connection(("127.0.0.1", self.proxy.port), timeout=20) as raw:
            raw.sendall(f"CONNECT {connect} HTTP/1.1\r\nHost: {connect}\r\n\r\n".encode())
            if not raw.recv(4096).startswith(b"HTTP/1.1 200"):
                return 0
            context = ssl.create_default_context(cafile=str(self.trust))
            if sni is None:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            try:
                with context.wrap_socket(raw, server_hostname=sni) as tls:
                    tls.sendall(request.encode("latin-1"))
                    return self._read(tls)[0]
            except (ConnectionError, ssl.SSLError, OSError):
                return 0

    def https(self, authority: str, path: str) -> int:
        host = _connect_target(authority)
        request = f"GET {path} HTTP/1.1\r\nHost: {authority}\r\nAccept: text/html\r\n\r\n"
        return self.tunnel(host, _sni(authority), request)

    def h2(
        self, authority: str, path: str, extra: list[tuple[str, str]] | None = None, sni: str | None = None
    ) -> int:
        host = _connect_target(authority)
        with socket.create_connection(("127.0.0.1", self.proxy.port), timeout=20) as raw:
            raw.sendall(f"CONNECT {host} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            if not raw.recv(4096).startswith(b"HTTP/1.1 200"):
                return 0
            context = ssl.create_default_context(cafile=str(self.trust))
            context.set_alpn_protocols(["h2"])
            name = sni if sni is not None else _sni(authority)
            if name is None:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            try:
                with context.wrap_socket(raw, server_hostname=name) as tls:
                    if tls.selected_alpn_protocol() != "h2":
                        return -1
                    connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
                    connection.initiate_connection()
                    pseudo = [
                        (":method", "GET"),
                        (":scheme", "https"),
                        (":authority", authority),
                        (":path", path),
                    ]
                    headers = [*pseudo, *NAVIGATE.items(), *(extra or [])]
                    connection.send_headers(1, headers, end_stream=True)
                    tls.sendall(connection.data_to_send())
                    while True:
                        data = tls.recv(65536)
                        if not data:
                            return 0
                        for event in connection.receive_data(data):
                            if isinstance(event, h2.events.ResponseReceived):
                                return int(dict(event.headers)[b":status"])
                            if isinstance(event, h2.events.StreamReset | h2.events.ConnectionTerminated):
                                return 0
                        tls.sendall(connection.data_to_send())
            except (ConnectionError, ssl.SSLError, OSError, h2.exceptions.ProtocolError):
                return 0


def _connect_target(authority: str) -> str:
    if authority.startswith("["):
        end = authority.index("]")
        return authority[: end + 1] + ":443"
    return authority.rsplit(":", 1)[0] + ":443" if ":" in authority else authority + ":443"


def _held(status: int) -> bool:
    """The proxy answered itself (warning redirect, refusal) or refused to carry it at all."""
    return status != 200


@pytest.mark.parametrize("channel", ["http1", "https", "h2"])
def test_every_case_through_the_running_proxy(
    proxy: RunningProxy, upstreams: tuple[Upstream, Upstream], channel: str
) -> None:
    """Each case as typed (where HTTP can carry it) and as a browser sends it.

    A listed case must never reach an upstream, and must get linkwarn's own answer (the warning
    redirect) in at least one of its forms: a form the proxy cannot even parse (a host of
    percent-escapes, a request line of 66 KB) is refused by mitmproxy before linkwarn sees it,
    which holds it too, but then the browser's form must be linkwarn's to answer. A near miss, as
    a browser sends it, must reach the upstream.
    """
    wire = Wire(proxy)
    leaked, blocked, unanswered = [], [], []
    for case in CASES:
        url = full_url(case)
        forms = wire_forms(url)
        assert forms, f"no wire form for {case['url'][:80]}"
        if not case["expect"]:
            forms = forms[:1]
        answered = False
        for _scheme, authority, path in forms:
            marks = [u.mark() for u in upstreams]
            if channel == "http1":
                status = wire.plain(authority, path)
            elif channel == "https":
                status = wire.https(authority, path)
            else:
                status = wire.h2(authority, path)
                if status == -1 and not case["expect"]:
                    # Passed through to the test upstream, which speaks HTTP/1.1 only: ask it that way.
                    status = wire.https(authority, path)
            assert status != -1, "HTTP/2 was not negotiated"
            contacted = [u.mark() for u in upstreams] != marks
            if case["expect"]:
                answered = answered or status == 303
                if contacted or status == 200:
                    leaked.append((case["url"][:90], authority[:60], path[:60], status))
            elif status != 200 or not contacted:
                blocked.append((case["url"][:90], authority[:60], path[:60], status))
        if case["expect"] and not answered:
            unanswered.append((case["category"], case["url"][:60]))
    assert leaked == [], f"{len(leaked)} listed requests reached an upstream: {leaked[:20]}"
    assert blocked == [], f"{len(blocked)} near misses did not get through: {blocked[:20]}"
    # Refused before linkwarn saw them, in every form: mitmproxy cannot parse the host (empty labels
    # such as mirror..test, a percent-escaped percent) or carry the request (66 KB); held all the
    # same, but they must stay the exception.
    listed = sum(1 for case in CASES if case["expect"])
    assert len(unanswered) <= listed // 10, unanswered
    print(f"\n{channel}: {listed} listed held, {listed - len(unanswered)} by linkwarn's answer; "
          f"{len(CASES) - listed} near misses through")  # fmt: skip


# -- channels: other names for the same request ---------------------------------------------

CHANNELS = [
    (
        "absolute URL unlisted, Host listed",
        "plain",
        "GET http://clean.test/x HTTP/1.1\r\nHost: mirror.test\r\n",
    ),
    ("Host listed with a junk port", "plain", "GET /x HTTP/1.1\r\nHost: mirror.test:abc\r\n"),
    ("comma-joined Host", "plain", "GET /x HTTP/1.1\r\nHost: clean.test, mirror.test\r\n"),
    ("two Host headers", "plain", "GET /x HTTP/1.1\r\nHost: clean.test\r\nHost: mirror.test\r\n"),
    ("Host with a trailing dot and case", "plain", "GET /x HTTP/1.1\r\nHost: MIRROR.test.\r\n"),
    (
        "allowed URL host, listed Host",
        "plain",
        "GET http://press.leak.test/ HTTP/1.1\r\nHost: mirror.test\r\n",
    ),
    (
        "raw # in the path, as the server reads it",
        "plain",
        "GET /clean#/../dump/y HTTP/1.1\r\nHost: files.test\r\n",
    ),
    ("IPv6 literal Host", "plain", "GET /x HTTP/1.1\r\nHost: [2001:db8::7]\r\n"),
    ("IPv4-mapped IPv6 Host", "plain", "GET /x HTTP/1.1\r\nHost: [::ffff:10.11.12.13]:8080\r\n"),
]


@pytest.mark.parametrize(("name", "kind", "head"), CHANNELS, ids=[c[0] for c in CHANNELS])
def test_every_name_of_a_plain_request_is_checked(
    proxy: RunningProxy, upstreams: tuple[Upstream, Upstream], name: str, kind: str, head: str
) -> None:
    marks = [u.mark() for u in upstreams]
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=20) as sock:
        line, _, rest = head.partition("\r\n")
        method, target, version = line.split(" ")
        if not target.startswith("http"):
            # origin-form through a proxy: absolute-form naming the Host's server, as proxies receive it
            host = rest.split("Host:", 1)[1].split("\r\n", 1)[0].strip().split(",")[0]
            target = f"http://{host}{target}"
        sock.sendall(f"{method} {target} {version}\r\n{rest}Accept: text/html\r\n\r\n".encode())
        status = Wire(proxy)._read(sock)[0]
    assert [u.mark() for u in upstreams] == marks, name
    assert status != 200, name


TUNNELS = [
    ("SNI listed, CONNECT unlisted", "clean.test:443", "mirror.test", "clean.test"),
    ("CONNECT listed, SNI unlisted", "mirror.test:443", "clean.test", "clean.test"),
]
# A request naming a listed host inside a tunnel whose every name is unlisted (domain fronting, by
# a tool: a browser never sends one). Such a tunnel is passed through untouched, unread, unless IT
# asks for full interception (--intercept all); then it is decrypted and every name is checked.
FRONTED = [
    ("Host listed inside an unlisted tunnel", "clean.test:443", "clean.test", "mirror.test"),
    ("absolute-form to a listed host inside an unlisted tunnel", "clean.test:443", "clean.test", "ABSOLUTE"),
]


def _tunnelled(host: str) -> str:
    if host == "ABSOLUTE":
        return "GET https://mirror.test/x HTTP/1.1\r\nHost: clean.test\r\nAccept: text/html\r\n\r\n"
    return f"GET /x HTTP/1.1\r\nHost: {host}\r\nAccept: text/html\r\n\r\n"


@pytest.mark.parametrize(("name", "connect", "sni", "host"), TUNNELS, ids=[t[0] for t in TUNNELS])
def test_every_name_of_a_tunnel_is_checked(
    proxy: RunningProxy, upstreams: tuple[Upstream, Upstream], name: str, connect: str, sni: str, host: str
) -> None:
    marks = [u.mark() for u in upstreams]
    status = Wire(proxy).tunnel(connect, sni, _tunnelled(host))
    assert [u.mark() for u in upstreams] == marks, name
    assert status != 200, name


@pytest.fixture(scope="module")
def full_proxy(
    tmp_path_factory: pytest.TempPathFactory, upstreams: tuple[Upstream, Upstream], corpus_store: Path
) -> Iterator[RunningProxy]:
    """The same lists with --intercept all: every TLS connection decrypted."""
    data_dir = tmp_path_factory.mktemp("evasion-full")
    (data_dir / "linkwarn.sqlite3").write_bytes((corpus_store / "linkwarn.sqlite3").read_bytes())
    started = RunningProxy.start(
        data_dir, upstreams[0].port, upstreams[1].port, "--no-sample", "--intercept", "all",
        upstream_ca=upstreams[1].ca_file,
    )  # fmt: skip
    yield started
    started.stop()


@pytest.mark.parametrize(("name", "connect", "sni", "host"), FRONTED, ids=[t[0] for t in FRONTED])
def test_with_full_interception_every_name_of_a_tunnelled_request_is_checked(
    full_proxy: RunningProxy,
    upstreams: tuple[Upstream, Upstream],
    name: str,
    connect: str,
    sni: str,
    host: str,
) -> None:
    marks = [u.mark() for u in upstreams]
    status = Wire(full_proxy).tunnel(connect, sni, _tunnelled(host))
    assert [u.mark() for u in upstreams] == marks, name
    assert status != 200, name


@pytest.mark.parametrize(("name", "connect", "sni", "host"), FRONTED, ids=[t[0] for t in FRONTED])
def test_by_default_an_unlisted_tunnel_is_passed_through_unread(
    proxy: RunningProxy, upstreams: tuple[Upstream, Upstream], name: str, connect: str, sni: str, host: str
) -> None:
    # What the README says a passed-through tunnel can carry: the upstream's own certificate
    # answered (the client trusts it), and the proxy never read the request inside.
    secure = upstreams[1]
    mark = secure.mark()
    assert Wire(proxy, trust=secure.ca_file).tunnel(connect, sni, _tunnelled(host)) == 200, name
    assert secure.hosts_since(mark) == {"clean.test" if host == "ABSOLUTE" else host}


def test_an_h2_authority_naming_a_listed_host_on_an_unlisted_connection(
    full_proxy: RunningProxy, upstreams: tuple[Upstream, Upstream]
) -> None:
    marks = [u.mark() for u in upstreams]
    status = Wire(full_proxy).h2("clean.test", "/x", extra=[("host", "mirror.test")], sni="clean.test")
    assert [u.mark() for u in upstreams] == marks
    assert status != 200
    assert Wire(full_proxy).h2("clean.test", "/fine", sni="clean.test") == 200


# -- properties -------------------------------------------------------------------------------

hosts = st.from_regex(r"[a-z0-9]{1,8}(\.[a-z0-9]{1,8}){0,3}\.(test|example)", fullmatch=True)
names = st.sampled_from(
    ["mirror.test", "MIRROR.TEST.", "x.mirror.test", "[2001:db8::7]", "10.11.12.13", "0x0a0b0c0d"]
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(clean=hosts, listed=names, where=st.sampled_from(["url", "host", "both-hosts", "comma"]))
async def test_a_request_naming_a_listed_host_anywhere_is_never_forwarded(
    tmp_path_factory: pytest.TempPathFactory, clean: str, listed: str, where: str
) -> None:
    async with proxy_with(tmp_path_factory.mktemp("prop"), ENTRIES[:1] + ENTRIES[6:8]) as proxy:
        url = f"http://{listed if where == 'url' else clean}/p"
        flow = proxy.flow(url, headers=NAVIGATE)
        if where == "host":
            flow.request.headers["host"] = listed
        elif where == "both-hosts":
            flow.request.headers.add("host", listed)
        elif where == "comma":
            flow.request.headers["host"] = f"{clean}, {listed}"
        await proxy.send(flow)
        assert flow.response is not None, (url, where, listed)


@pytest.mark.parametrize("host", ["mirror.test", "clean.test"])
def test_a_streamed_upload_is_decided_before_any_byte_goes_up(
    proxy: RunningProxy, upstreams: tuple[Upstream, Upstream], host: str
) -> None:
    marks = [u.mark() for u in upstreams]
    body = b"x" * 200_000  # over stream_large_bodies: mitmproxy would stream it as it arrives
    with httpx.Client(proxy=proxy.url, timeout=20) as client:
        if host == "mirror.test":
            # Too large for mitmproxy to hold and answer: cut off before a byte goes up.
            with pytest.raises(httpx.TransportError):
                client.post(f"http://{host}/upload", content=body)
            assert [u.mark() for u in upstreams] == marks
            small = client.post(f"http://{host}/upload", content=b"x" * 100)
            assert small.status_code == 403  # under the limit: held and answered
            assert [u.mark() for u in upstreams] == marks
            return
        response = client.post(f"http://{host}/upload", content=body)
    assert response.status_code == 200
    assert response.text == "received 200000 bytes"
