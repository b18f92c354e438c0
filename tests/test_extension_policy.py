"""The extension as IT deploys it: a signed package force-installed by policy, in headless Chromium.

``extension/scripts/build-chromium.mjs`` signs the CRX and writes its update
manifest; a server on 127.0.0.1 serves both; the managed policy names it in
``ExtensionInstallForcelist`` and sets the extension's settings (``3rdparty``).
Chromium on Linux reads policies from ``/etc/chromium/policies`` only, so this
browser runs in a mount namespace of its own (``unshare``) in which that folder
is the test's: the machine's own policies are never touched.

Installed so, the extension holds top-level requests in a blocking
``webRequest`` listener (lib/gate.js). The site server records every request
it gets: for a listed address it must get none, whether the browser's rules
cover the entry or only the proxy's index names it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import BrowserContext, Page, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from blocklists import Action

from .support.servers import ROOT, RunningProxy, resolver_rules
from .test_extension import _open, extension_events, wait_until

EXTENSION = ROOT / "extension"
HASHED = {"hidden.example/dump/": Action.BLOCK, "hidden.example/drafts/": Action.WARN}


PAGES = {
    # Passes every request of the pages it controls on to the network: what a mirror's own
    # landing page could install, so that later visits to the listed paths come through it.
    "/sw.js": (
        b"self.addEventListener('install', () => self.skipWaiting());"
        b"self.addEventListener('activate', (e) => e.waitUntil(self.clients.claim()));"
        b"self.addEventListener('fetch', (e) => e.respondWith(fetch(e.request)));",
        "text/javascript",
    ),
    "/sw-page": (
        b"<!doctype html><title>landing</title><link rel=icon href='data:,'><p id=where>landing</p>"
        b"<script>navigator.serviceWorker.register('/sw.js')</script>",
        "text/html",
    ),
    "/framing": (
        b"<!doctype html><title>framing</title><link rel=icon href='data:,'>"
        b"<iframe src='http://files.example/dump/salaries.xlsx?via=frame'></iframe>"
        b"<iframe src='http://files.example/other?via=frame'></iframe>",
        "text/html",
    ),
}


@dataclass
class Site:
    """Pages for every name the browser resolves here, and the packages under /packages/."""

    url: str
    packages: Path
    seen: list[str] = field(default_factory=list)

    def requests_for(self, host: str) -> list[str]:
        return [r for r in self.seen if r.split("/", 1)[0] == host]


def _handler(site: Site) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def reply(self, status: int, kind: str, body: bytes, *headers: tuple[str, str]) -> None:
            self.send_response(status)
            for name, value in (("content-type", kind), ("content-length", str(len(body))), *headers):
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            host = self.headers.get("host", "").split(":")[0]
            path = urlsplit(self.path).path
            if host == "127.0.0.1" and path.startswith("/packages/"):
                file = site.packages / path.removeprefix("/packages/")
                if file.is_file():
                    self.reply(200, "application/octet-stream", file.read_bytes())
                else:
                    self.reply(404, "text/plain", b"")
                return
            if path in PAGES:  # a site's own service worker, and pages that install it or frame others
                self.reply(200, PAGES[path][1], PAGES[path][0])
                return
            site.seen.append(f"{host}{self.path}")
            if path == "/redirect":  # a link shortener: a 302 to its ?to=
                self.reply(302, "text/plain", b"", ("location", parse_qs(urlsplit(self.path).query)["to"][0]))
            else:
                head = '<!doctype html><title>site</title><link rel=icon href="data:,">'
                self.reply(
                    200, "text/html; charset=utf-8", f"{head}<p id=where>{host}{self.path}</p>".encode()
                )

    return Handler


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    made = Site("", tmp_path_factory.mktemp("packages"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(made))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    made.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield made
    server.shutdown()
    server.server_close()


def _package(site: Site, chromium: str, key: Path) -> str:
    """Sign the extension as IT would; the ExtensionInstallForcelist entry for it."""
    node = shutil.which("node")
    assert node, "Node.js is needed to build the package (.ci/run installs it)"
    built = subprocess.run(
        [node, "scripts/build-chromium.mjs", "--key", str(key), "--base-url", f"{site.url}/packages/",
         "--out", str(site.packages), "--chromium", chromium],
        cwd=EXTENSION, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout + built.stderr
    return next(
        line.split(": ", 1)[1]
        for line in built.stdout.splitlines()
        if line.startswith("ExtensionInstallForcelist")
    )


def _policy_root(parent: Path, policy: dict[str, Any]) -> Path:
    """A stand-in for /etc/chromium: the machine's own files, and the test's managed policy."""
    root = parent / "etc-chromium"
    if Path("/etc/chromium").is_dir():
        shutil.copytree("/etc/chromium", root)
    managed = root / "policies" / "managed"
    managed.mkdir(parents=True, exist_ok=True)
    (managed / "linkwarn.json").write_text(json.dumps(policy))
    return root


def _launcher(parent: Path, chromium: str, policy_root: Path) -> Path:
    """Chromium in a mount namespace where /etc/chromium is *policy_root* (root or not)."""
    unshare = shutil.which("unshare")
    assert unshare, "unshare (util-linux) is needed to give the browser its own policy folder"
    user = [] if os.geteuid() == 0 else ["--user", "--map-root-user"]
    script = parent / "chromium-with-policy"
    script.write_text(
        "#!/bin/sh\n"
        f"exec {unshare} {' '.join(user)} --mount --propagation private "
        f"sh -c 'mount --bind \"$0\" /etc/chromium && exec \"$@\"' '{policy_root}' '{chromium}' \"$@\"\n"
    )
    script.chmod(0o755)
    return script


@dataclass
class Browser:
    context: BrowserContext
    extension_id: str
    proxy: RunningProxy

    @property
    def origin(self) -> str:
        return f"chrome-extension://{self.extension_id}"

    def ask(self, expression: str, argument: Any = None) -> Any:
        """Evaluate *expression* (a function) in an extension page: the worker may be stopped."""
        page = self.context.new_page()
        try:
            page.goto(f"{self.origin}/popup.html")
            return page.evaluate(expression, argument)
        finally:
            page.close()

    def status(self, refresh: bool = False) -> dict[str, Any]:
        state: dict[str, Any] = self.ask(
            "(r) => chrome.runtime.sendMessage({type: 'status', refresh: r})", refresh
        )
        return state

    def tabs(self) -> list[str]:
        urls: list[str] = self.ask("async () => (await chrome.tabs.query({})).map((t) => t.url)")
        return urls


@pytest.fixture(scope="module")
def browser(
    running_proxy: RunningProxy, site: Site, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Browser]:
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is needed (.ci/run installs it)"
    work = tmp_path_factory.mktemp("policy")
    forcelist = _package(site, chromium, work / "linkwarn.pem")
    extension_id = forcelist.split(";", 1)[0]
    policy = {
        "ExtensionInstallForcelist": [forcelist],
        # By default Chromium keeps DevTools (and so the test's driver) off force-installed extensions.
        "DeveloperToolsAvailability": 1,
        "3rdparty": {"extensions": {extension_id: {
            "apiUrl": running_proxy.api_url, "apiToken": running_proxy.api_token, "mode": "warn"}}},
    }  # fmt: skip
    launcher = _launcher(work, chromium, _policy_root(work, policy))
    port = site.url.rsplit(":", 1)[1]
    rules = resolver_rules(port)
    with sync_playwright() as playwright:

        def launch() -> BrowserContext:
            return playwright.chromium.launch_persistent_context(
                str(work / "profile"),
                executable_path=str(launcher),
                headless=True,
                # Playwright's defaults turn off extensions, the fetching of force-installed ones,
                # and (with the last) the delivery of an extension's policy to its managed storage.
                ignore_default_args=[
                    "--disable-extensions",
                    "--disable-background-networking",
                    "--disable-component-extensions-with-background-pages",
                ],
                # A service worker needs a secure origin: these test names, served over HTTP, count as one.
                args=[
                    f"--host-resolver-rules={rules}",
                    "--unsafely-treat-insecure-origin-as-secure=http://files.example",
                ],
            )

        opened = Browser(launch(), extension_id, running_proxy)
        wait_until(lambda: _installed(opened), "the force-install", seconds=30)
        # The policy carries the settings too, but Chromium answers a worker's first read of its
        # managed storage after anything from a few seconds to over a minute (seen here): the
        # settings are also given as the options page would, which the policy's then agree with.
        opened.ask(
            "(s) => chrome.storage.local.set(s)",
            {"apiUrl": running_proxy.api_url, "apiToken": running_proxy.api_token},
        )
        last: dict[str, Any] = {}

        def synced() -> bool:
            last.update(opened.status(refresh=True))
            return bool(last["matcher"]["ready"])

        try:
            wait_until(synced, "the proxy's prefixes", seconds=30)
        except AssertionError:
            raise AssertionError(f"the lists never arrived: {last}") from None
        yield opened
        opened.context.close()


def _installed(browser: Browser) -> bool:
    try:
        state = browser.status()
    except PlaywrightError:
        return False  # not installed yet: its pages do not exist
    return bool(state)


def _warning_shown(browser: Browser, page: Page, url: str) -> None:
    wait_until(lambda: page.url == f"{browser.origin}/warning.html#{url}", f"the warning page for {url}")
    page.wait_for_selector("main[data-state='warn'], main[data-state='block']")


def test_installed_by_policy_it_holds_navigations(browser: Browser) -> None:
    state = browser.status()
    assert state["blocking"] is True
    assert state["settings"]["apiUrl"] == browser.proxy.api_url
    page = browser.context.new_page()
    page.goto(f"{browser.origin}/popup.html")
    page.wait_for_selector("body[data-ready='true']")
    assert page.locator("#navigations").inner_text() == (
        "Navigations are decided before anything is sent (installed by policy)."
    )
    page.close()


def test_a_listed_address_never_reaches_the_site_whatever_names_it(browser: Browser, site: Site) -> None:
    """A hashed entry (only the proxy's index names it), a spelling only canonicalization reads, and an
    entry the browser's own rules hold: each ends on the warning page, and the site gets no request."""
    before = browser.status()["matcher"]["prefixes"]
    browser.proxy.import_hashed("hashed-feed", HASHED)
    wait_until(lambda: browser.status(refresh=True)["matcher"]["prefixes"] == before + 2, "the new prefixes")
    listed = [
        "http://hidden.example/dump/film.mkv",  # hashed block entry
        "http://HIDDEN.example./dump/%66ilm2.mkv",  # the same, spelled otherwise
        "http://files.example/dump/%73alaries.xlsx",  # files.example/dump/salaries.xlsx: the rules miss %73
        "http://leak.example/inbox",  # the browser's own rule holds it
    ]
    page = browser.context.new_page()
    for url in listed:
        _open(page, url)
        shown = f"{browser.origin}/warning.html#{url.replace('HIDDEN.example.', 'hidden.example.')}".lower()
        wait_until(lambda shown=shown: page.url.lower() == shown, f"the warning page for {url}")
        page.wait_for_selector("main[data-state='warn'], main[data-state='block']")
    time.sleep(0.3)
    assert site.requests_for("hidden.example") == []
    assert site.requests_for("hidden.example.") == []
    assert site.requests_for("files.example") == []
    assert site.requests_for("leak.example") == []
    # Each display is one the extension made, and is recorded (the rule's and the gate's redirects).
    wait_until(lambda: len(extension_events(browser.proxy, "block")) >= 3, "the blocks recorded")
    wait_until(lambda: extension_events(browser.proxy, "warning"), "the warning recorded")
    # An address of the same host that no entry names opens at once, fetched once.
    page.goto("http://hidden.example/other/page")
    assert page.locator("#where").inner_text() == "hidden.example/other/page"
    assert site.requests_for("hidden.example") == ["hidden.example/other/page"]
    page.close()


def test_proceed_on_a_hashed_warn_entry_sends_the_first_request_after_the_click(
    browser: Browser, site: Site
) -> None:
    if browser.status()["matcher"]["prefixes"] < 2:
        browser.proxy.import_hashed("hashed-feed", HASHED)
    page = browser.context.new_page()
    url = "http://hidden.example/drafts/script.pdf"
    wait_until(lambda: _lands_on_warning(browser, page, url), "the hashed warn entry to be known")
    assert page.title() == "linkwarn: warning"
    assert site.requests_for("hidden.example") == [r for r in site.seen if r == "hidden.example/other/page"]
    page.wait_for_timeout(1100)  # Proceed counts only after the page's first second
    with page.expect_navigation():
        page.click("#proceed")
    page.wait_for_selector("#where")
    assert page.locator("#where").inner_text() == "hidden.example/drafts/script.pdf"
    assert site.requests_for("hidden.example")[-1] == "hidden.example/drafts/script.pdf"
    # The pass lets the entry through from then on; the block entry beside it stays held.
    page.goto("http://hidden.example/drafts/other.pdf")
    assert page.locator("#where").inner_text() == "hidden.example/drafts/other.pdf"
    _open(page, "http://hidden.example/dump/again.mkv")
    _warning_shown(browser, page, "http://hidden.example/dump/again.mkv")
    assert "hidden.example/dump/again.mkv" not in site.seen
    page.close()


def test_a_redirect_to_a_listed_address_is_held_at_that_hop(browser: Browser, site: Site) -> None:
    """A link shortener's 302 to a hashed entry, and to one the browser's rules hold: the shortener is
    fetched, the listed address never, and the warning is recorded."""
    if browser.status()["matcher"]["prefixes"] < 2:
        browser.proxy.import_hashed("hashed-feed", HASHED)
    blocks = len(extension_events(browser.proxy, "block"))
    page = browser.context.new_page()
    for target in ("http://hidden.example/dump/via-short.mkv", "https://mirror.test/films/via-short"):
        _open(page, f"http://short.example/redirect?to={target}")
        _warning_shown(browser, page, target)
    assert [r for r in site.seen if "via-short" in r and not r.startswith("short.example")] == []
    wait_until(lambda: len(extension_events(browser.proxy, "block")) >= blocks + 2, "both recorded")
    page.close()


def test_a_sites_own_service_worker_cannot_fetch_a_listed_page_for_it(browser: Browser, site: Site) -> None:
    """A worker the site installed on an unlisted page answers later navigations itself: its request for
    a listed address is cancelled, and the tab ends on the warning page; it still fetches the rest."""
    page = browser.context.new_page()
    page.goto("http://files.example/sw-page")
    wait_until(lambda: page.evaluate("navigator.serviceWorker.controller !== null"), "the site's worker")
    page.goto("http://files.example/other?via=worker")
    assert page.locator("#where").inner_text() == "files.example/other?via=worker"
    url = "http://files.example/dump/salaries.xlsx?via=worker"
    with pytest.raises(PlaywrightError, match=r"ERR_FAILED|ERR_ABORTED"):
        page.goto(url, wait_until="commit")  # the worker's request was cancelled
    wait_until(lambda: f"{browser.origin}/warning.html#{url}" in browser.tabs(), "the warning page")
    assert [r for r in site.seen if "salaries.xlsx" in r] == []
    page.close()


def test_a_frame_of_a_listed_page_is_never_fetched(browser: Browser, site: Site) -> None:
    page = browser.context.new_page()
    page.goto("http://files.example/framing")
    wait_until(lambda: "files.example/other?via=frame" in site.seen, "the unlisted frame")
    time.sleep(0.3)
    assert [r for r in site.seen if "salaries.xlsx" in r] == []
    page.close()


def _lands_on_warning(browser: Browser, page: Page, url: str) -> bool:
    _open(page, url)
    try:
        page.wait_for_url(f"{browser.origin}/warning.html#{url}", timeout=3000)
        page.wait_for_selector("main[data-state='warn']", timeout=3000)
    except PlaywrightError:
        return False
    return True


def test_a_worker_woken_by_the_navigation_holds_it_until_it_has_read_its_lists(
    browser: Browser, site: Site
) -> None:
    """A stopped service worker cannot decide at once: the address goes through the warning page,
    which asks and goes on when it is clear; a listed one is still never fetched."""
    if browser.status()["matcher"]["prefixes"] < 2:
        browser.proxy.import_hashed("hashed-feed", HASHED)
    page = browser.context.new_page()
    page.goto(f"{browser.origin}/popup.html")
    cdp = browser.context.new_cdp_session(page)
    for url, listed in [
        ("http://hidden.example/after-restart", False),
        ("http://hidden.example/dump/x.mkv", True),
    ]:
        cdp.send("ServiceWorker.enable")
        cdp.send("ServiceWorker.stopAllWorkers")  # asked: it may stop only a moment later
        _open(page, url)
        if listed:
            _warning_shown(browser, page, url)
        else:
            # (Playwright keeps the warning page's address for the page it replaced itself with.)
            page.wait_for_selector("#where")
            assert page.locator("#where").inner_text() == "hidden.example/after-restart"
            assert url in browser.tabs()
    cdp.detach()
    assert site.seen.count("hidden.example/after-restart") == 1
    assert "hidden.example/dump/x.mkv" not in site.seen
    page.close()
