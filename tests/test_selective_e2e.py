"""Decrypt only what must be read, through ``linkwarn run`` to a local TLS upstream with its own CA.

The upstream issues a certificate per server name from a CA of its own, so a
client can tell a tunnel the proxy passed through (the upstream's
certificate) from one it decrypted (the proxy's).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from playwright.sync_api import Browser, Playwright, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from blocklists import Action, Entry, Store, key_of
from blocklists.entry import host_marker
from blocklists.feed import public_key_text, publish

from .support.feeds import FeedHost
from .support.h2server import H2Upstream
from .support.servers import ROOT, RunningProxy, Upstream, read_response, spki_hash

UPSTREAM_ISSUER = "linkwarn test upstream CA"
NAVIGATE = "Accept: text/html\r\nSec-Fetch-Dest: document\r\nSec-Fetch-Mode: navigate\r\n"


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    """An HTTPS upstream that keeps connections alive, as real sites do (a tunnel stays open)."""
    started = Upstream.start(tls_dir=tmp_path_factory.mktemp("keep-alive-tls"), keep_alive=True)
    yield started
    started.server.shutdown()


@pytest.fixture(scope="module")
def proxy(
    tmp_path_factory: pytest.TempPathFactory, upstreams: tuple[Upstream, Upstream], secure: Upstream
) -> Iterator[RunningProxy]:
    root = tmp_path_factory.mktemp("selective")
    feed = FeedHost.start(root / "feed")
    key = Ed25519PrivateKey.generate()
    hashed = Entry(key=key_of("hashed.test/files/"), action=Action.BLOCK, marker=host_marker("hashed.test"))
    publish([hashed], feed.directory, key, now=int(time.time()), hashed=True, min_interval=30)

    async def local() -> None:
        async with Store.in_dir(root / "data") as store:
            await store.import_entries(
                "corp",
                [
                    Entry.listing("mirror.test/", Action.BLOCK),
                    Entry.listing("docs.test/leaked/", Action.WARN),
                ],
            )

    asyncio.run(local())
    started = RunningProxy.start(
        root / "data", upstreams[0].port, secure.port,
        "--no-sample", "--share-site", "social.example",
        "--feed", feed.url, "--feed-key", public_key_text(key.public_key()),
        upstream_ca=secure.ca_file,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and [f["version"] for f in status(started)["feeds"]] != [1]:
            time.sleep(0.1)
        yield started
    finally:
        started.stop()
        feed.stop()


def status(proxy: RunningProxy) -> dict:  # type: ignore[type-arg]
    headers = {"authorization": f"Bearer {proxy.api_token}"}
    return httpx.get(f"{proxy.api_url}/v1/status", headers=headers, timeout=10).json()  # type: ignore[no-any-return]


def tunnel(proxy: RunningProxy, host: str, trust: Path) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
    raw.sendall(f"CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n\r\n".encode())
    assert raw.recv(4096).startswith(b"HTTP/1.1 200")
    return ssl.create_default_context(cafile=str(trust)).wrap_socket(raw, server_hostname=host)


def issuer(tls: ssl.SSLSocket) -> str:
    der = tls.getpeercert(binary_form=True)
    assert der is not None
    cert = x509.load_der_x509_certificate(der)
    return str(cert.issuer.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value)


def get(tls: ssl.SSLSocket, host: str, path: str) -> tuple[int, str]:
    tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{NAVIGATE}\r\n".encode())
    status, _, body = read_response(tls)
    return status, body.decode("utf-8", "replace")


def visit(proxy: RunningProxy, host: str, path: str = "/") -> tuple[str, int, str]:
    with tunnel(proxy, host, proxy.trust_file) as tls:
        return (issuer(tls), *get(tls, host, path))


def test_an_unlisted_host_shows_its_own_certificate(proxy: RunningProxy, secure: Upstream) -> None:
    mark = secure.mark()
    who, code, body = visit(proxy, "clean.test", "/page")
    assert (who, code) == (UPSTREAM_ISSUER, 200)
    assert "upstream page" in body
    assert secure.hosts_since(mark) == {"clean.test"}


def test_a_listed_host_is_decrypted_and_warned(proxy: RunningProxy, secure: Upstream) -> None:
    mark = secure.mark()
    for host in ("mirror.test", "www.mirror.test"):
        who, code, _ = visit(proxy, host, "/film")
        assert (who != UPSTREAM_ISSUER, code) == (True, 303), host
    assert secure.hosts_since(mark) == set()


def test_a_host_listed_by_a_path_is_decrypted_and_the_path_decided(
    proxy: RunningProxy, upstreams: tuple[Upstream, Upstream]
) -> None:
    who, code, _ = visit(proxy, "docs.test", "/leaked/q3.pdf")
    assert (who != UPSTREAM_ISSUER, code) == (True, 303)
    who, code, body = visit(proxy, "docs.test", "/public/handbook")
    assert (who != UPSTREAM_ISSUER, code) == (True, 200)
    assert "upstream page" in body


def test_a_hashed_feed_host_is_decrypted_and_an_unrelated_one_is_not(proxy: RunningProxy) -> None:
    who, code, _ = visit(proxy, "hashed.test", "/files/x")
    assert (who != UPSTREAM_ISSUER, code) == (True, 303)
    assert visit(proxy, "hashed.test", "/other")[:2] != (UPSTREAM_ISSUER, 200)  # read, and let through
    assert visit(proxy, "unrelated.test", "/files/x")[0] == UPSTREAM_ISSUER


def test_a_share_site_is_decrypted(proxy: RunningProxy) -> None:
    assert visit(proxy, "m.social.example")[0] != UPSTREAM_ISSUER


def test_without_the_ca_unlisted_sites_work_and_a_listed_one_is_a_certificate_error(
    proxy: RunningProxy, secure: Upstream
) -> None:
    only_the_sites = secure.ca_file
    with tunnel(proxy, "clean.test", only_the_sites) as tls:
        assert get(tls, "clean.test", "/")[0] == 200
    with pytest.raises(ssl.SSLCertVerificationError):
        tunnel(proxy, "mirror.test", only_the_sites)


def test_a_host_listed_after_its_tunnel_opened(proxy: RunningProxy, tmp_path: Path) -> None:
    tls = tunnel(proxy, "later.test", proxy.trust_file)
    assert issuer(tls) == UPSTREAM_ISSUER
    assert get(tls, "later.test", "/a")[0] == 200
    listed = tmp_path / "later.txt"
    listed.write_text("later.test\n")
    subprocess.run(
        [sys.executable, "-m", "proxy_addon.cli", "import", str(listed), "--data-dir", str(proxy.data_dir)],
        cwd=ROOT, check=True, capture_output=True,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and status(proxy)["index_entries"] < 4:
        time.sleep(0.1)
    # The passed-through tunnel (kept alive by the upstream) is closed once the proxy sees the new list ...
    tls.settimeout(10)
    try:
        closed = tls.recv(1) == b""
    except (ConnectionError, ssl.SSLError):
        closed = True
    tls.close()
    assert closed
    # ... and the next connection is decrypted and warned.
    who, code, _ = visit(proxy, "later.test", "/a")
    assert (who != UPSTREAM_ISSUER, code) == (True, 303)
    assert status(proxy)["connections"]["closed_on_list_change"] >= 1


def test_status_counts_connections_never_names_them(proxy: RunningProxy) -> None:
    before = status(proxy)["connections"]
    visit(proxy, "counted.test")
    visit(proxy, "mirror.test")
    after = status(proxy)["connections"]
    assert after["passed_through"] - before["passed_through"] == 1
    assert after["decrypted"] - before["decrypted"] == 1
    time.sleep(2.5)  # run.json's figures are rewritten every 2 s
    shown = subprocess.run(
        [sys.executable, "-m", "proxy_addon.cli", "status", "--data-dir", str(proxy.data_dir)],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    assert f"{after['decrypted']} decrypted, {after['passed_through']} passed through untouched" in shown
    run = json.loads((proxy.data_dir / "run.json").read_text())
    assert "counted.test" not in json.dumps(run)
    assert "counted.test" not in shown
    events = subprocess.run(
        [sys.executable, "-m", "proxy_addon.cli", "events", "--data-dir", str(proxy.data_dir), "--json"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    assert "counted.test" not in events
    assert "clean.test" not in events


# -- Chromium through the proxy ------------------------------------------------------------------


def _chromium(playwright: Playwright, proxy: RunningProxy, trusted: list[Path]) -> Browser:
    """Headless Chromium through *proxy*, trusting only the CAs in *trusted* (by their keys)."""
    executable = shutil.which("chromium")
    assert executable, "Debian's chromium is needed (.ci/run installs it)"
    spkis = ",".join(spki_hash(x509.load_pem_x509_certificate(pem.read_bytes())) for pem in trusted)
    return playwright.chromium.launch(
        executable_path=executable,
        headless=True,
        proxy={"server": proxy.url},
        args=[
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            f"--ignore-certificate-errors-spki-list={spkis}",
        ],
    )


@pytest.mark.browser
def test_chromium_without_the_ca_reaches_unlisted_sites_and_gets_a_certificate_error_on_listed(
    proxy: RunningProxy, secure: Upstream
) -> None:
    with sync_playwright() as playwright:
        for trusted, listed_works in (
            ([secure.ca_file], False),
            ([secure.ca_file, proxy.ca_file], True),
        ):
            browser = _chromium(playwright, proxy, trusted)
            try:
                page = browser.new_page()
                page.goto("https://clean.test/article")
                assert "upstream page" in page.content()
                if listed_works:
                    page.goto("https://mirror.test/film")
                    assert page.url.startswith("https://linkwarn.internal/warning")
                    assert "blocked" in page.content()
                else:
                    with pytest.raises(PlaywrightError, match="ERR_CERT_AUTHORITY_INVALID"):
                        page.goto("https://mirror.test/film")
            finally:
                browser.close()


@pytest.mark.browser
def test_chromium_opens_a_tunnel_per_host_even_when_an_open_h2_connection_covers_the_listed_one(
    tmp_path: Path, upstreams: tuple[Upstream, Upstream]
) -> None:
    """HTTP/2 connection reuse: the upstream's one certificate names both hosts, and speaks h2.

    Had Chromium sent the listed host's request on the open connection to the unlisted one (a
    tunnel linkwarn passed through), the upstream would see it. Through a proxy it opens a new
    CONNECT for the listed host instead, which linkwarn decrypts and answers.
    """
    secure = upstreams[1]
    assert secure.server.ca is not None
    h2 = H2Upstream.start(secure.server.ca, ("clean.test", "mirror.test", "www.clean.test"))

    async def listed() -> None:
        async with Store.in_dir(tmp_path / "data") as store:
            await store.import_entries("corp", [Entry.listing("mirror.test/", Action.BLOCK)])

    asyncio.run(listed())
    proxy = RunningProxy.start(
        tmp_path / "data", upstreams[0].port, h2.port, "--no-sample", upstream_ca=secure.ca_file
    )
    try:
        with sync_playwright() as playwright:
            browser = _chromium(playwright, proxy, [secure.ca_file, proxy.ca_file])
            try:
                page = browser.new_page()
                page.goto("https://clean.test/article")
                assert "h2 upstream" in page.content()
                page.evaluate("fetch('https://www.clean.test/also', {mode: 'no-cors'}).catch(() => null)")
                page.evaluate("fetch('https://mirror.test/x', {mode: 'no-cors'}).catch(() => null)")
                page.goto("https://mirror.test/film")
                assert page.url.startswith("https://linkwarn.internal/warning")
            finally:
                browser.close()
        assert "mirror.test" not in {authority for _, authority, _ in h2.seen}, h2.seen
        assert ("clean.test", "/article") in {(authority, path) for _, authority, path in h2.seen}
        # Even the unlisted sibling the certificate covers came through a tunnel of its own.
        on = {authority: {n for n, a, _ in h2.seen if a == authority} for _, authority, _ in h2.seen}
        assert on["www.clean.test"].isdisjoint(on["clean.test"]), h2.seen
        connections = status(proxy)["connections"]
        assert connections["passed_through"] >= 1
    finally:
        proxy.stop()
        h2.stop()
