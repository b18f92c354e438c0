"""The unpacked extension in headless Chromium (Debian's), against a running ``linkwarn run``.

Pages come from a server on 127.0.0.1; the sample list's hosts (``*.example``,
``*.test``) resolve to it too, so a Proceed lands on a real page, and any other
name fails to resolve: nothing leaves this machine. The browser does not use
the proxy here: every warning seen is the extension's own.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import BrowserContext, Frame, Page, Worker, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from blocklists import Action

from .support.servers import ROOT, RunningProxy, free_port, resolver_rules

EXTENSION = ROOT / "extension"
LISTED = {
    "http://leak.example/inbox": "warn",
    "https://mirror.test/films/": "block",
    "http://files.example/dump/salaries.xlsx": "block",
    "http://paste.example/raw/salaries?v=2": "warn",
}
NOT_MARKED = [
    "http://press.leak.example/story",  # allow
    "http://archive.example/copy",  # audit: logged by the proxy, not marked
    "http://clean.example/",
    "http://leak.example.clean.test/",
    "mailto:someone@leak.example",
]


def _links_page(urls: list[str], script: str = "") -> str:
    links = "".join(f'<li><a href="{url}">{url}</a></li>' for url in urls)
    head = "<!doctype html><meta charset=utf-8><title>links</title>"
    return f"{head}<ul id=list>{links}</ul><script>{script}</script>"


DYNAMIC_SCRIPT = """
window.addLink = (url) => {
  const li = document.createElement('li');
  const a = document.createElement('a');
  a.href = url; a.textContent = url; li.append(a);
  document.getElementById('list').append(li);
};
setTimeout(() => window.addLink('http://leak.example/later'), 300);
"""

MANY_SCRIPT = """
// How long the page's own work waits while the links are marked: the longest gap between ticks.
window.longestGap = 0;
let last = performance.now();
setInterval(() => {
  const now = performance.now();
  window.longestGap = Math.max(window.longestGap, now - last);
  last = now;
}, 10);
"""


EVERYWHERE = """<!doctype html><meta charset=utf-8><title>everywhere</title>
<div id=open-host></div><div id=closed-host></div>
<svg width=200 height=30><a href="http://leak.example/svg"><text x=0 y=20>svg link</text></a></svg>
<p><img usemap="#m" width=40 height=20 alt=map src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">
<map name=m><area href="http://leak.example/area" shape=rect coords="0,0,40,20" alt=area></map></p>
<p id=plain>read http://leak.example/plain or mirror.test/films/plain now</p>
<div id=editor contenteditable=true>draft: <a href="http://leak.example/edit">edit link</a></div>
<p><a id=relative href="/dump/salaries.xlsx">relative</a></p>
<div style="display:none"><a href="http://leak.example/hidden">hidden</a></div>
<a style="position:absolute; left:-9999px" href="http://leak.example/offscreen">off screen</a>
<iframe id=same srcdoc='<a href="http://leak.example/same-frame">same-origin frame</a>'></iframe>
<iframe id=other src="http://frames.example/frame-links"></iframe>
<script>
document.getElementById('open-host').attachShadow({mode: 'open'}).innerHTML =
  '<a href="http://leak.example/open-shadow">open shadow</a>';
document.getElementById('closed-host').attachShadow({mode: 'closed'}).innerHTML =
  '<a href="http://leak.example/closed-shadow">closed shadow</a>';
setTimeout(() => {  // a <base> that makes the relative link a listed one
  const base = document.createElement('base');
  base.href = 'http://files.example/';
  document.head.append(base);
}, 400);
</script>"""

REOPENED = """<!doctype html><title>reopened</title><p>before</p><script>
setTimeout(() => { document.open(); document.write('<a href="http://leak.example/written">written</a>');
                   document.close(); }, 300);
</script>"""

HOSTILE = """<!doctype html><title>hostile</title><ul id=list>
<li><a id=listed href="http://leak.example/inbox">listed</a></li></ul><script>
// Removes every element of a name it does not know, as soon as it appears.
new MutationObserver((changes) => { for (const change of changes) for (const node of change.addedNodes)
  if (node.localName && node.localName.startsWith('linkwarn-')) {
    window.seenName = node.localName;
    node.remove();
  }
}).observe(document.documentElement, {childList: true, subtree: true});
</script>"""


class _PageHandler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        """What linkwarn's proxy answers a fetch whose body carries a listed link."""
        self.rfile.read(int(self.headers.get("content-length", "0") or "0"))
        data = b"linkwarn: this post was not sent\n"
        self.send_response(403)
        self.send_header("x-linkwarn", "share-warn; entry=leak.example/; links=1")
        self.send_header("content-type", "text/plain")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        host = self.headers.get("host", "").split(":")[0]
        if parts.path == "/redirect":  # a link shortener: a 302 to its ?to=
            self.send_response(302)
            self.send_header("location", query["to"][0])
            self.send_header("content-length", "0")
            self.end_headers()
            return
        if host == "127.0.0.1" and parts.path == "/links":
            body = _links_page([*LISTED, *NOT_MARKED])
        elif host == "127.0.0.1" and parts.path == "/dynamic":
            body = _links_page(["http://clean.example/first"], DYNAMIC_SCRIPT)
        elif host == "127.0.0.1" and parts.path == "/many":
            count = int(query["n"][0])
            urls = [
                f"http://paste.example/raw/salaries?id={i}" if i % 20 == 0 else f"http://site{i}.example/p{i}"
                for i in range(count)
            ]
            body = _links_page(urls, MANY_SCRIPT)
        elif host == "127.0.0.1" and parts.path == "/everywhere":
            body = EVERYWHERE
        elif host == "127.0.0.1" and parts.path == "/reopened":
            body = REOPENED
        elif host == "127.0.0.1" and parts.path == "/hostile":
            body = HOSTILE
        elif parts.path == "/frame-links":
            body = '<!doctype html><a href="http://leak.example/other-frame">other origin</a>'
        elif host == "127.0.0.1" and parts.path == "/site/frame":
            body = "<!doctype html><title>frame</title><textarea id=post></textarea>"
        elif host == "127.0.0.1" and parts.path == "/start":
            body = "<!doctype html><title>start</title><h1>start page</h1>"
        else:
            body = f"<!doctype html><title>site</title><h1>site page</h1><p id=where>{host}{self.path}</p>"
        data = body.encode()
        self.send_response(200)
        self.send_header("content-type", "text/html; charset=utf-8")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="module")
def pages() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _PageHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@dataclass
class Browser:
    context: BrowserContext
    worker: Worker
    extension_id: str
    proxy: RunningProxy
    pages: str

    @property
    def origin(self) -> str:
        return f"chrome-extension://{self.extension_id}"

    @property
    def leaked_warning(self) -> str:
        """The warning page's dynamic address in this session, as if a web page had learnt it."""
        url: str = self.worker.evaluate("chrome.runtime.getURL('warning.html')")
        return url

    def storage(self, key: str) -> Any:
        return self.worker.evaluate(f"async () => (await chrome.storage.local.get({key!r}))[{key!r}]")

    def configure(self, **settings: str) -> None:
        """Set options as the options page would, then wait until the rules follow them."""
        before = (self.storage("rules") or {}).get("syncedAt", 0)
        self.worker.evaluate("async (s) => { await chrome.storage.local.set(s); }", settings)
        if settings.get("apiUrl", self.proxy.api_url) == self.proxy.api_url:
            wait_until(lambda: (self.storage("rules") or {}).get("syncedAt", 0) > before, "the rules to sync")

    def page(self) -> Page:
        return self.context.new_page()


def wait_until(condition: Callable[[], Any], what: str, seconds: float = 15) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")  # *what* may name the state reached


@pytest.fixture(scope="module")
def browser(
    running_proxy: RunningProxy, pages: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Browser]:
    executable = shutil.which("chromium")
    assert executable, "Debian's chromium is needed (.ci/run installs it)"
    page_port = pages.rsplit(":", 1)[1]
    rules = resolver_rules(page_port)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=executable,
            headless=True,
            args=[
                f"--disable-extensions-except={EXTENSION}",
                f"--load-extension={EXTENSION}",
                f"--host-resolver-rules={rules}",
            ],
        )
        worker = (
            context.service_workers[0] if context.service_workers else context.wait_for_event("serviceworker")
        )
        extension_id = urlsplit(worker.url).hostname
        assert extension_id
        opened = Browser(context, worker, extension_id, running_proxy, pages)
        opened.configure(apiUrl=running_proxy.api_url, apiToken=running_proxy.api_token)
        yield opened
        context.close()


def in_extension_world(page: Page, expression: str, frame: Frame | None = None) -> Any:
    """Evaluate *expression* in the extension's content-script world of *frame* (the main one by
    default), through the DevTools protocol: the world the page's own scripts cannot reach."""
    cdp = None
    if frame is not None and frame.parent_frame is not None:
        try:
            cdp = page.context.new_cdp_session(frame)  # a frame in a process of its own
        except PlaywrightError:
            cdp = None  # part of the page's process, and of its session
    cdp = cdp or page.context.new_cdp_session(page)
    try:
        contexts: list[dict[str, Any]] = []
        cdp.on("Runtime.executionContextCreated", lambda event: contexts.append(event["context"]))
        cdp.send("Runtime.enable")
        frame_id = _frame_id(cdp, (frame or page.main_frame).url)
        world = [c for c in contexts if c["origin"].startswith("chrome-extension://")
                 and c.get("auxData", {}).get("frameId") == frame_id]  # fmt: skip
        if not world:
            return None  # the content script has not started in that frame yet
        result = cdp.send("Runtime.evaluate", {"expression": expression, "contextId": world[-1]["id"],
                                              "returnByValue": True, "awaitPromise": True})  # fmt: skip
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")
    finally:
        cdp.detach()


def _frame_id(cdp: Any, url: str) -> str | None:
    def walk(tree: dict[str, Any]) -> str | None:
        if tree["frame"]["url"] == url:
            return str(tree["frame"]["id"])
        for child in tree.get("childFrames", []):
            found = walk(child)
            if found:
                return found
        return None

    found = walk(cdp.send("Page.getFrameTree")["frameTree"])
    return found


def marks(page: Page, frame: Frame | None = None) -> dict[str, Any]:
    """What the content script of *frame* has marked, once it is done: see ``linkwarnMarks`` in content.js."""

    def settled() -> Any:
        state = in_extension_world(page, "globalThis.linkwarnMarks && linkwarnMarks()", frame)
        return state if state and not state["busy"] and not state["waiting"] else None

    found: dict[str, Any] = wait_until(settled, "the content script to finish marking")
    return found


def marked(page: Page, frame: Frame | None = None) -> dict[str, str]:
    """The listed links shown as marked: address -> action."""
    return {link["url"]: link["action"] for link in marks(page, frame)["links"] if link["shown"]}


def proxy_events(proxy: RunningProxy) -> list[tuple[str, str, str | None]]:
    """The events the proxy stored (kind, client, detail), read from its SQLite file."""
    with sqlite3.connect(f"file:{proxy.data_dir / 'linkwarn.sqlite3'}?mode=ro", uri=True) as db:
        return list(db.execute("SELECT kind, client, detail FROM events ORDER BY id"))


def extension_events(proxy: RunningProxy, kind: str) -> list[tuple[str, str, str | None]]:
    return [e for e in proxy_events(proxy) if e[0] == kind and e[1].startswith("extension")]


def screenshot(page: Page, selector: str, name: str) -> None:
    """Kept for the README when LINKWARN_SCREENSHOT_DIR is set."""
    directory = os.environ.get("LINKWARN_SCREENSHOT_DIR")
    if directory:
        page.locator(selector).screenshot(path=str(Path(directory) / name))


# -- marking links ---------------------------------------------------------------------


def test_listed_links_are_marked_and_others_are_not(browser: Browser) -> None:
    page = browser.page()
    page.goto(f"{browser.pages}/links")
    wait_until(lambda: len(marked(page)) == len(LISTED), "the listed links to be marked")
    assert marked(page) == {
        page.evaluate("u => new URL(u).href", url): action for url, action in LISTED.items()
    }
    badges = {link["url"]: link for link in marks(page)["links"]}
    leak = badges["http://leak.example/inbox"]
    assert leak["text"] == '"⚠ listed"'
    assert (
        leak["title"]
        == "linkwarn — warning: Sample entry: a mirror of stolen company e-mail and salary sheets"
    )
    assert (
        leak["label"]
        == "linkwarn: listed link. Sample entry: a mirror of stolen company e-mail and salary sheets"
    )
    assert leak["visible"]
    assert leak["after"] == "a"  # right after its link
    assert badges["https://mirror.test/films/"]["text"] == '"⊘ blocked"'
    # The page sees an element of a name it cannot guess, and nothing inside it.
    seen = page.evaluate(
        """() => [...document.querySelectorAll('*')].filter(e => e.localName.startsWith('linkwarn-'))
                 .map(e => [e.shadowRoot, e.textContent, e.previousElementSibling.dataset.linkwarn])"""
    )
    assert seen == [[None, "", None]] * len(LISTED)
    page.hover('a[href="http://leak.example/inbox"]')
    screenshot(page, "#list", "marked-links.png")
    page.close()


def test_links_added_later_are_marked(browser: Browser) -> None:
    page = browser.page()
    page.goto(f"{browser.pages}/dynamic")
    wait_until(lambda: "http://leak.example/later" in marked(page), "the timed link to be marked")
    page.evaluate("window.addLink('https://mirror.test/added-by-click')")
    page.evaluate("window.addLink('http://clean.example/added')")
    wait_until(lambda: "https://mirror.test/added-by-click" in marked(page), "the added link to be marked")
    # A link whose address changes is looked at again.
    page.evaluate(
        "document.querySelector('a[href=\"http://clean.example/first\"]').href = 'http://files.example/dump/'"
    )
    wait_until(lambda: "http://files.example/dump/" in marked(page), "the changed link to be marked")
    assert set(marked(page)) == {
        "http://leak.example/later",
        "https://mirror.test/added-by-click",
        "http://files.example/dump/",
    }
    page.close()


def test_a_page_with_thousands_of_links_stays_responsive(browser: Browser) -> None:
    count = 5000
    page = browser.page()
    page.goto(f"{browser.pages}/many?n={count}")
    started = time.monotonic()
    state = wait_until(
        lambda: len(marks(page)["links"]) == count // 20 and marks(page), "every listed link decided"
    )
    elapsed = time.monotonic() - started
    longest_gap = page.evaluate("window.longestGap")
    print(
        f"decided {count // 20} listed of {count} links in {elapsed:.2f} s; longest gap {longest_gap:.0f} ms"
    )
    # Only what is on screen is shown; the rest as it is scrolled to.
    shown = {link["url"] for link in state["links"] if link["shown"]}
    assert "http://paste.example/raw/salaries?id=0" in shown
    assert len(shown) < 20
    page.evaluate("document.querySelector('li:last-child').scrollIntoView()")
    last = f"http://paste.example/raw/salaries?id={count - 20}"
    wait_until(lambda: last in marked(page), "the last listed link to be shown once scrolled to")
    # The page's own timers kept running while the links were marked (a bound
    # loose enough for a loaded CI machine, far below a frozen page).
    assert longest_gap < 1000
    page.close()


def test_a_page_of_fifty_thousand_links_is_decided_without_freezing_it(browser: Browser) -> None:
    """Issue 15 point 7, loosely (the figures are bench/bench_extension.py's): every link decided,
    and no task the Long Tasks API sees lasts a second."""
    count = 50_000
    page = browser.page()
    page.add_init_script(
        "window.longTasks = []; new PerformanceObserver((l) => { for (const e of l.getEntries())"
        " window.longTasks.push([e.startTime, e.duration]); }).observe({type: 'longtask', buffered: true});"
    )
    page.goto(f"{browser.pages}/many?n={count}", timeout=60_000)
    started = time.monotonic()

    def decided() -> Any:
        state = in_extension_world(page, "globalThis.linkwarnMarks && linkwarnMarks({links: false})")
        return state if state and not state["busy"] and state["known"] >= count else None

    state = wait_until(decided, "every one of 50,000 links decided", seconds=60)
    elapsed = time.monotonic() - started
    assert state["marked"] == count // 20
    ready = page.evaluate("performance.getEntriesByType('navigation')[0].domContentLoadedEventStart")
    late = [duration for start, duration in page.evaluate("window.longTasks") if start >= ready]
    print(f"decided {count} links in {elapsed:.2f} s after load; long tasks after DOMContentLoaded: {late}")
    assert elapsed < 15
    assert max(late, default=0) < 1000
    page.close()


def test_links_are_marked_everywhere_a_page_can_put_them(browser: Browser) -> None:
    page = browser.page()
    page.goto(f"{browser.pages}/everywhere")
    expected = {
        "http://leak.example/open-shadow": "element",
        "http://leak.example/closed-shadow": "element",
        "http://leak.example/svg": "element",  # after the drawing
        "http://leak.example/area": "element",  # after the image of the map
        "http://leak.example/edit": "highlight",  # never an element inside what is being written
        "http://files.example/dump/salaries.xlsx": "element",  # once the <base> made it listed
    }
    wait_until(
        lambda: set(marked(page)) >= set(expected), f"{set(expected)} to be marked, not {marked(page)}"
    )
    state = marks(page)
    by_url = {link["url"]: link for link in state["links"]}
    assert {url: by_url[url]["badge"] for url in expected} == expected
    assert by_url["http://leak.example/area"]["after"] == "img"
    assert by_url["http://leak.example/svg"]["after"] == "svg"
    # Links no one can see are never shown (opening one is still warned about).
    assert not by_url["http://leak.example/hidden"]["shown"]
    assert not by_url["http://leak.example/offscreen"]["shown"]
    # URLs written as text, marked without a node added.
    assert sorted(t["text"] for t in state["text"]) == [
        "http://leak.example/plain",
        "mirror.test/films/plain",
    ]
    assert page.evaluate("document.getElementById('editor').innerHTML") == (
        'draft: <a href="http://leak.example/edit">edit link</a>'
    )
    # Frames, same-origin and not, each mark their own.
    for selector, url in (
        ("#same", "http://leak.example/same-frame"),
        ("#other", "http://leak.example/other-frame"),
    ):
        frame = page.locator(selector).element_handle().content_frame()
        assert frame is not None
        wait_until(
            lambda frame=frame, url=url: url in marked(page, frame), f"{url} to be marked in its frame"
        )
    # A selection of the page, copied, holds the links' text and none of the badges'.
    page.evaluate("getSelection().selectAllChildren(document.body)")
    copied = page.evaluate("getSelection().toString()")
    assert "open shadow" not in copied or "listed" not in copied
    assert "⚠" not in copied
    assert "blocked" not in copied
    page.close()


def test_a_document_written_anew_is_marked_too(browser: Browser) -> None:
    page = browser.page()
    page.goto(f"{browser.pages}/reopened")
    wait_until(lambda: "http://leak.example/written" in marked(page), "the written link to be marked")
    page.close()


def test_a_page_that_removes_badges_gets_them_back_then_is_named(browser: Browser) -> None:
    page = browser.page()
    page.goto(f"{browser.pages}/hostile")
    wait_until(lambda: marks(page)["hidden"], "the page to be named as hiding linkwarn's marks")
    name = page.evaluate("window.seenName")
    assert name.startswith("linkwarn-")
    assert name != "linkwarn-badge"
    # Forged badges of the same name are removed; the page cannot tell its links apart by them.
    page.evaluate(
        "n => { const f = document.createElement(n); f.id = 'forged'; document.body.append(f); }", name
    )
    wait_until(lambda: page.evaluate("!document.getElementById('forged')"), "the forged badge to be removed")
    page.close()


def test_a_restyled_badge_is_put_back(browser: Browser) -> None:
    page = browser.page()
    page.goto(f"{browser.pages}/links")
    wait_until(lambda: len(marked(page)) == len(LISTED), "the listed links to be marked")
    page.evaluate(
        """() => { for (const e of document.querySelectorAll('*'))
                     if (e.localName.startsWith('linkwarn-')) e.style.display = 'none'; }"""
    )
    wait_until(lambda: all(link["visible"] for link in marks(page)["links"]), "the badges to be shown again")
    page.close()


# -- navigating -------------------------------------------------------------------------


def _warning(page: Page, browser: Browser, url: str) -> None:
    expected = f"{browser.origin}/warning.html#{url}"
    wait_until(lambda: page.url == expected, f"the warning page for {url}, not {page.url}")
    page.wait_for_selector("main[data-state='warn'], main[data-state='block']")


def test_navigating_to_a_warn_entry_shows_the_warning_page_and_proceed_works(browser: Browser) -> None:
    page = browser.page()
    page.goto(f"{browser.pages}/start")
    before = len(extension_events(browser.proxy, "warning"))
    page.goto("http://leak.example/inbox?id=7", wait_until="commit")
    _warning(page, browser, "http://leak.example/inbox?id=7")
    assert page.title() == "linkwarn: warning"
    assert (
        page.locator("#reason").inner_text()
        == "Sample entry: a mirror of stolen company e-mail and salary sheets"
    )
    assert page.locator("#entry").inner_text() == "leak.example/"
    assert page.locator("#list").inner_text() == "sample"
    assert page.locator("#proceed").inner_text() == "Proceed anyway (for 15 minutes)"
    screenshot(page, "main", "warning-page.png")
    wait_until(
        lambda: len(extension_events(browser.proxy, "warning")) > before, "the warning event at the proxy"
    )
    with page.expect_navigation():
        page.click("#proceed")
    page.wait_for_selector("#where")
    assert page.locator("#where").inner_text() == "leak.example/inbox?id=7"
    wait_until(lambda: extension_events(browser.proxy, "proceed"), "the proceed event at the proxy")
    # The pass covers the whole entry for a while, as the proxy's does; not other entries.
    page.goto("http://www.leak.example/other")
    assert page.locator("#where").inner_text() == "www.leak.example/other"
    page.goto("http://paste.example/raw/salaries", wait_until="commit")
    _warning(page, browser, "http://paste.example/raw/salaries")
    page.close()


def test_a_redirect_to_a_listed_address_is_warned_and_recorded(browser: Browser) -> None:
    """A link shortener's 302 to an address the browser's rules hold: the display is the extension's."""
    before = len(extension_events(browser.proxy, "block"))
    page = browser.page()
    _open(page, "http://short.example/redirect?to=https://mirror.test/films/via-short")
    _warning(page, browser, "https://mirror.test/films/via-short")
    wait_until(lambda: len(extension_events(browser.proxy, "block")) > before, "the block recorded")
    page.close()


def test_a_block_entry_has_no_way_through_and_go_back_works(browser: Browser) -> None:
    page = browser.page()
    page.goto(f"{browser.pages}/start")
    page.goto("https://mirror.test/films/new", wait_until="commit")
    _warning(page, browser, "https://mirror.test/films/new")
    assert page.title() == "linkwarn: blocked"
    assert page.locator("#proceed").is_hidden()
    page.click("#back")
    start = f"{browser.pages}/start"
    wait_until(lambda: start in _tab_urls(browser), f"the previous page, not {_tab_urls(browser)}")
    page.close()


def test_an_address_only_the_proxy_recognizes_is_caught_on_navigation(browser: Browser) -> None:
    """%2F is a slash only after canonicalization: no browser rule matches, the proxy's check does."""
    rules = browser.storage("rules")
    assert "files.example/dump/" in rules["covered"]
    url = "http://files.example/dump%2Fsecret.zip"
    page = browser.page()
    page.goto(url, wait_until="commit")
    # The service worker sends the tab to the warning page. (Playwright loses sight of a
    # page that an extension navigates to its own origin, so ask the browser's tabs.)
    warning = f"{browser.origin}/warning.html#{url}"
    tabs = "async () => (await chrome.tabs.query({})).map(t => t.url)"
    wait_until(lambda: warning in browser.worker.evaluate(tabs), "the tab to show the warning page")
    assert url not in browser.worker.evaluate(tabs)
    shown = browser.page()
    shown.goto(warning)
    shown.wait_for_selector("main[data-state='block']")
    assert shown.locator("#entry").inner_text() == "files.example/dump/"
    page.close()
    shown.close()


FRAME_IT = (
    "src => { const f = document.createElement('iframe'); f.id = 'w'; f.style.opacity = '0';"
    " f.src = src; document.body.append(f); }"
)


def test_a_web_page_cannot_load_the_warning_page_at_its_address(browser: Browser) -> None:
    """Loadable from the web only at the session's dynamic address, which only the extension hands out."""
    page = browser.page()
    page.goto(f"{browser.pages}/start")
    fixed = f"{browser.origin}/warning.html#http://paste.example/raw/salaries"
    page.evaluate(FRAME_IT, fixed)
    with browser.context.expect_page() as opened:
        page.evaluate("u => window.open(u)", fixed)
    # The same page framing the dynamic address (were it to leak) gets the page: the fixed one had time.
    page.evaluate(FRAME_IT, f"{browser.leaked_warning}#http://paste.example/raw/salaries")
    page.frame_locator("iframe >> nth=1").locator("#title").wait_for(timeout=5000)
    assert len([f.url for f in page.frames if f.url.startswith("chrome-extension:")]) == 1
    assert not opened.value.url.startswith("chrome-extension:"), opened.value.url
    assert browser.leaked_warning != f"{browser.origin}/warning.html"
    opened.value.close()
    page.close()


def test_a_web_page_that_frames_the_warning_page_gets_nothing_from_it(browser: Browser) -> None:
    """Were its dynamic address to leak: hidden frames writing fake warnings, a transparent frame under
    a decoy: neither works."""
    page = browser.page()
    page.goto(f"{browser.pages}/start")
    before = len(extension_events(browser.proxy, "warning"))
    url = "http://paste.example/raw/salaries"  # a warn entry no other test proceeds past
    page.evaluate(FRAME_IT, f"{browser.leaked_warning}#{url}")
    framed = page.frame_locator("#w")
    framed.locator("#title").wait_for(timeout=5000)
    wait_until(
        lambda: "cannot be shown inside another page" in framed.locator("#title").inner_text(), "refusal"
    )
    assert framed.locator("#proceed").is_hidden()
    # Whatever the framed page itself might send, the service worker answers it as a web page.
    frame = next(f for f in page.frames if f.url.startswith("chrome-extension:"))
    for message in ({"type": "proceed", "url": url}, {"type": "shown", "url": url}):
        answer = frame.evaluate("m => chrome.runtime.sendMessage(m)", message)
        assert "not accepted from a web page" in answer["error"], answer
    time.sleep(1.5)  # events are batched: give a fake one the time to arrive
    assert len(extension_events(browser.proxy, "warning")) == before
    page.goto(url, wait_until="commit")
    _warning(page, browser, url)  # no pass was granted: the real navigation is still warned
    page.close()


def test_a_report_from_the_warning_page_reaches_the_proxy(browser: Browser) -> None:
    page = browser.page()
    page.goto("http://paste.example/raw/salaries", wait_until="commit")
    _warning(page, browser, "http://paste.example/raw/salaries")
    page.click("#report-box summary")
    page.fill("#comment", "This paste is our own published pay scale")
    page.click("#report button[type=submit]")
    wait_until(lambda: "Thank you" in page.locator("#report-result").inner_text(), "the report to be sent")
    expected = ("report", f"extension:{browser.origin}", "This paste is our own published pay scale")
    wait_until(lambda: expected in extension_events(browser.proxy, "report"), "the report at the proxy")
    page.close()


# -- the popup and the backend-down state --------------------------------------------------


def test_the_popup_shows_the_backend_feeds_entries_and_recent_warnings(browser: Browser) -> None:
    page = browser.page()
    page.goto(f"{browser.origin}/popup.html")
    page.wait_for_selector("body[data-ready]")
    assert page.locator("#backend").get_attribute("data-state") == "up"
    assert page.locator("#backend").inner_text() == f"Connected to the proxy at {browser.proxy.api_url}."
    assert page.locator("#entries").inner_text() == "6 entries"
    assert page.locator("#feeds").inner_text() == "No feeds: local lists only."
    assert "browser rules cover 5 entries" in page.locator("#rules").inner_text()
    assert "http://leak.example/inbox?id=7" in page.locator("#recent").inner_text()
    assert browser.worker.evaluate("chrome.action.getBadgeText({})") == ""
    page.close()


def test_when_the_backend_is_unreachable_it_says_so_and_known_links_still_work(browser: Browser) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    browser.configure(apiUrl=closed)
    try:
        popup = browser.page()
        popup.goto(f"{browser.origin}/popup.html")
        popup.wait_for_selector("body[data-ready]")
        assert popup.locator("#backend").get_attribute("data-state") == "down"
        assert popup.locator("#backend").inner_text().startswith(f"Proxy unreachable at {closed}")
        assert browser.worker.evaluate("chrome.action.getBadgeText({})") == "!"
        assert "cannot reach the proxy" in browser.worker.evaluate("chrome.action.getTitle({})")
        screenshot(popup, "body", "popup-backend-down.png")
        # What the extension already knew keeps working: marking, from the prefixes and entries it
        # last synced. The audit entry is not among the entries a browser is sent (/v1/rules), so
        # offline its prefix hit cannot be told from a hashed entry's: listed, unconfirmed, a warning.
        page = browser.page()
        page.goto(f"{browser.pages}/links")
        unconfirmed = {"http://archive.example/copy": "warn"}
        wait_until(lambda: marked(page) == {**LISTED, **unconfirmed}, "the known links to be marked offline")
        # ...and the warning page, from the browser's own rules.
        page.goto("https://mirror.test/while-offline", wait_until="commit")
        _warning(page, browser, "https://mirror.test/while-offline")
        assert "could not be reached" in page.locator("#note").inner_text()
        page.close()
        popup.close()
    finally:
        browser.configure(apiUrl=browser.proxy.api_url)
    popup = browser.page()
    popup.goto(f"{browser.origin}/popup.html")
    popup.wait_for_selector("body[data-ready]")
    assert popup.locator("#backend").get_attribute("data-state") == "up"
    assert browser.worker.evaluate("chrome.action.getBadgeText({})") == ""
    popup.close()


HASHED_PAGE = "http://secret.example/dump/plans.pdf"


def _status(browser: Browser, refresh: bool) -> dict[str, Any]:
    page = browser.page()
    page.goto(f"{browser.origin}/popup.html")
    state: dict[str, Any] = page.evaluate(
        "(r) => chrome.runtime.sendMessage({type: 'status', refresh: r})", refresh
    )
    page.close()
    return state


def _open(page: Page, url: str) -> None:
    """Start a navigation the extension may turn to its warning page before it commits."""
    try:
        page.goto(url, wait_until="commit")
    except PlaywrightError as exc:
        if "ERR_ABORTED" not in str(exc):  # else the tab was sent to the warning page first
            raise


def _close_now(page: Page) -> None:
    """Close a tab the extension turned into its warning page after a check with the proxy,
    without waiting for Playwright to see it closed: in whole-suite runs, `page.close()` on
    such a tab (a hashed entry's) now and then never returned, in about half the runs of this
    session; the tab is closed all the same (the test waits for it to be gone)."""
    page.close(run_before_unload=True)


def _tab_shows(browser: Browser, url: str) -> bool:
    tabs = browser.worker.evaluate("async () => (await chrome.tabs.query({})).map(t => t.url)")
    return f"{browser.origin}/warning.html#{url}" in tabs


def test_a_hashed_entry_is_warned_on_with_the_proxy_unreachable_and_unlisted_pages_open(
    browser: Browser,
) -> None:
    """The extension holds the proxy's key prefixes: offline, it still finds an entry only a hash names."""
    before = _status(browser, refresh=True)["matcher"]["prefixes"]
    browser.proxy.import_hashed("hashed-feed", {"secret.example/dump/": Action.BLOCK})
    # The proxy follows its store; the extension syncs the prefixes (a diff) when it refreshes.
    wait_until(lambda: _status(browser, refresh=True)["matcher"]["prefixes"] == before + 1, "the new prefix")
    state = _status(browser, refresh=False)
    assert state["blocking"] is False  # unpacked: blocking webRequest is for a policy install only
    matcher = state["matcher"]
    assert matcher["ready"] is True
    assert matcher["problem"] is None
    assert matcher["suffixRules"] > 9000
    # With the proxy reachable, its check confirms the hit.
    page = browser.page()
    _open(page, HASHED_PAGE)
    wait_until(lambda: _tab_shows(browser, HASHED_PAGE), "the warning page for the hashed entry")
    _close_now(page)
    wait_until(lambda: not _tab_shows(browser, HASHED_PAGE), "the warning tab to close")
    closed = f"http://127.0.0.1:{free_port()}"
    browser.configure(apiUrl=closed)
    try:
        offline = HASHED_PAGE + "?while=offline"
        page = browser.page()
        _open(page, offline)
        wait_until(lambda: _tab_shows(browser, offline), "the warning page with the proxy unreachable")
        shown = browser.page()
        shown.goto(f"{browser.origin}/warning.html#{offline}")
        shown.wait_for_selector("main[data-state='warn']")
        assert shown.locator("#entry").inner_text() == "secret.example/dump/"
        assert "unconfirmed" in shown.locator("#reason").inner_text()
        assert "could not be reached" in shown.locator("#note").inner_text()
        # An address with no prefix hit is decided here, and opens.
        clean = browser.page()
        clean.goto("http://secret.example/other/page")
        assert clean.locator("#where").inner_text() == "secret.example/other/page"
        time.sleep(0.5)
        assert not _tab_shows(browser, "http://secret.example/other/page")
        for opened in (page, shown, clean):
            _close_now(opened)
    finally:
        browser.configure(apiUrl=browser.proxy.api_url)


def test_mark_only_mode_marks_links_but_does_not_redirect(browser: Browser) -> None:
    browser.configure(mode="mark")
    try:
        assert browser.worker.evaluate("chrome.declarativeNetRequest.getDynamicRules()") == []
        page = browser.page()
        page.goto(f"{browser.pages}/links")
        wait_until(lambda: len(marked(page)) == len(LISTED), "the links to be marked")
        page.goto("http://mirror.test/mark-mode")
        time.sleep(0.5)  # long enough for a navigation check to have redirected, were it on
        assert page.locator("#where").inner_text() == "mirror.test/mark-mode"
        tabs = browser.worker.evaluate("async () => (await chrome.tabs.query({})).map(t => t.url)")
        assert "http://mirror.test/mark-mode" in tabs
        assert f"{browser.origin}/warning.html#http://mirror.test/mark-mode" not in tabs
        page.close()
    finally:
        browser.configure(mode="warn")
    assert browser.worker.evaluate("chrome.declarativeNetRequest.getDynamicRules()") != []


# -- the API and web pages -------------------------------------------------------------------


def test_a_web_page_cannot_read_or_write_the_api(browser: Browser) -> None:
    page = browser.page()
    page.goto(f"{browser.pages}/start")
    api, token = browser.proxy.api_url, browser.proxy.api_token
    reports_before = len(proxy_events(browser.proxy))
    outcome = page.evaluate(
        """async ([api, token]) => {
            const json = {'content-type': 'application/json'};
            const check = JSON.stringify({urls: ['http://mirror.test/']});
            const report = JSON.stringify({url: 'http://mirror.test/', comment: 'from a page'});
            const tries = {};
            for (const [name, run] of Object.entries({
              read: () => fetch(api + '/v1/status').then(r => r.text()),
              check: () => fetch(api + '/v1/check', {method: 'POST', headers: json, body: check})
                .then(r => r.text()),
              write: () => fetch(api + '/v1/reports', {
                method: 'POST', headers: {...json, authorization: 'Bearer ' + token}, body: report,
              }),
            })) {
              try { await run(); tries[name] = 'succeeded'; } catch (e) { tries[name] = 'refused'; }
            }
            // A no-cors post cannot be read, but would reach the server: the API refuses it there.
            await fetch(api + '/v1/reports', {method: 'POST', mode: 'no-cors', body: report});
            return tries;
        }""",
        [api, token],
    )
    assert outcome == {"read": "refused", "check": "refused", "write": "refused"}
    time.sleep(1.5)  # the proxy writes events once a second
    assert len(proxy_events(browser.proxy)) == reports_before
    output = "".join(browser.proxy.output)
    refused = f"local API refused a request: requests from web pages are refused (Origin: {browser.pages})"
    assert refused in output
    page.close()


def test_the_service_worker_gets_answers_the_page_does_not(browser: Browser) -> None:
    """The same API calls from the extension succeed: the refusals above are about who asks."""
    answer = browser.worker.evaluate(
        """async (api) => (await fetch(api + '/v1/check', {
            method: 'POST', headers: {'content-type': 'application/json'},
            body: JSON.stringify({urls: ['http://mirror.test/']}),
        })).json()""",
        browser.proxy.api_url,
    )
    assert answer["results"][0]["action"] == "block"
    assert json.loads(json.dumps(browser.storage("backend")))["reachable"] is True


def test_the_options_page_saves_valid_settings_and_names_bad_ones(browser: Browser) -> None:
    page = browser.page()
    page.goto(f"{browser.origin}/options.html")
    page.wait_for_selector("body[data-ready]", timeout=20000)
    assert page.locator("#apiUrl").input_value() == browser.proxy.api_url
    assert page.locator("#policy").is_hidden()  # no policy set on this machine
    page.fill("#apiUrl", "http://leak.example:8089")
    page.click("button[type=submit]")
    assert page.locator("#result").inner_text().startswith("Not saved: apiUrl must name this computer")
    assert browser.storage("apiUrl") == browser.proxy.api_url  # nothing stored was lost
    page.fill("#apiUrl", browser.proxy.api_url)
    page.select_option("#mode", "mark")
    page.click("button[type=submit]")
    wait_until(lambda: page.locator("#result").inner_text() == "Saved.", "the settings to be saved")
    assert browser.storage("mode") == "mark"
    browser.configure(mode="warn")
    page.close()


# -- before a listed link is passed on ---------------------------------------------------


EDITORS = """() => {
    document.body.innerHTML = '<form><textarea id="post"></textarea><input id="title"></form>'
        + '<div id="rich" contenteditable="true"></div><div id="host"></div>'
        + '<iframe id="frame" src="/site/frame"></iframe>';
    const shadow = document.getElementById('host').attachShadow({mode: 'open'});
    shadow.innerHTML = '<div id="shadowed" contenteditable="true"></div>';
}"""


def test_a_listed_link_typed_or_pasted_into_an_editor_is_warned_about(browser: Browser) -> None:
    page = browser.page()
    page.goto(f"{browser.pages}/site/editor")
    page.evaluate(EDITORS)
    page.locator("#post").type("Have you seen http://leak.example/inbox yet? ")
    warning = page.locator("#post + div.linkwarn-share")
    warning.wait_for(timeout=5000)
    assert "carries a link to leaked material" in warning.inner_text()
    assert "http://leak.example/inbox" in warning.inner_text()
    assert warning.get_attribute("role") == "alert"
    screenshot(page, "form", "share-inline-warning.png")
    page.locator("#post").fill("nothing listed here: http://clean.example/x")
    page.locator("#post").type(" ")
    warning.wait_for(state="detached", timeout=5000)
    # A contenteditable editor, pasted text, and one inside an open shadow root.
    page.locator("#rich").click()
    page.evaluate("""() => {
        const target = document.getElementById('rich');
        target.textContent = 'mirror: https://mirror.test/films/new';
        target.dispatchEvent(new ClipboardEvent('paste', {bubbles: true, composed: true}));
    }""")
    page.locator("#rich + div.linkwarn-share[data-linkwarn='block']").wait_for(timeout=5000)
    page.locator("#shadowed").type("www.leak.example/inbox ")
    page.locator("#shadowed + div.linkwarn-share").wait_for(timeout=5000)
    # A same-origin frame's editor.
    frame = page.frame_locator("#frame")
    frame.locator("#post").wait_for(timeout=5000)
    frame.locator("#post").type("http://paste.example/raw/salaries ")
    frame.locator("#post + div.linkwarn-share").wait_for(timeout=5000)
    page.close()


def test_a_post_the_proxy_held_back_is_shown_on_the_page(browser: Browser) -> None:
    page = browser.page()
    page.goto(f"{browser.pages}/site/chat")
    status = page.evaluate(
        "async () => (await fetch('/api/send', {method: 'POST', body: 'see http://leak.example/x'})).status"
    )
    assert status == 403
    banner = page.locator("div.linkwarn-share-banner")
    banner.wait_for(timeout=5000)
    assert "held back what you sent" in banner.inner_text()
    assert "leak.example/" in banner.inner_text()
    page.close()


# -- no page can fool it; the way back ------------------------------------------------------------


def _tab_urls(browser: Browser) -> list[str]:
    urls: list[str] = browser.worker.evaluate("async () => (await chrome.tabs.query({})).map(t => t.url)")
    return urls


def test_go_back_leaves_a_listed_page_that_was_already_shown(browser: Browser) -> None:
    """The page was fetched and shown before the check answered (only the proxy's canonicalization
    knows it), so it is in the history, and in the back/forward cache: Go back steps over it."""
    url = "http://files.example/dump%2Fback.zip"
    page = browser.page()
    page.goto(f"{browser.pages}/start")
    _open(page, url)  # usually shown before the check answers; when not, Go back must work all the same
    warning = f"{browser.origin}/warning.html#{url}"
    wait_until(lambda: warning in _tab_urls(browser), "the tab to show the warning page")
    shown = next(p for p in browser.context.pages if p.url == warning)
    shown.wait_for_selector("main[data-state='block']")
    shown.click("#back")
    start = f"{browser.pages}/start"
    wait_until(lambda: start in _tab_urls(browser), f"the start page, not {_tab_urls(browser)}")
    time.sleep(0.5)
    assert url not in _tab_urls(browser)
    assert warning not in _tab_urls(browser)
    page.close()


def test_a_warning_page_a_web_page_opens_records_nothing(browser: Browser) -> None:
    """Opened top-level by a page (were its dynamic address to leak), it shows a person the warning but
    writes nothing into IT's log; a display the extension made does."""
    before = len(extension_events(browser.proxy, "warning"))
    page = browser.page()
    page.goto(f"{browser.pages}/start")
    with browser.context.expect_page() as opened:
        page.evaluate(
            "u => window.open(u)",
            f"{browser.leaked_warning}#http://paste.example/raw/salaries?opened=by-page",
        )
    forged = opened.value
    forged.wait_for_selector("main[data-state='warn']")
    time.sleep(1)
    assert len(extension_events(browser.proxy, "warning")) == before
    # A click made by script is no person's: no pass, no proceed.
    passes, proceeds = browser.storage("passes"), len(extension_events(browser.proxy, "proceed"))
    time.sleep(1)  # past the first second, in which no click counts anyway
    forged.evaluate("document.getElementById('proceed').click()")
    time.sleep(0.5)
    assert browser.storage("passes") == passes
    assert len(extension_events(browser.proxy, "proceed")) == proceeds
    forged.close()
    page.goto("http://paste.example/raw/salaries?by=person", wait_until="commit")  # no pass for it
    _warning(page, browser, "http://paste.example/raw/salaries?by=person")
    recorded = lambda: len(extension_events(browser.proxy, "warning")) == before + 1  # noqa: E731
    wait_until(recorded, "the real display to be recorded")
    page.close()


def test_events_that_do_not_reach_the_proxy_are_named_in_the_popup_and_options(browser: Browser) -> None:
    browser.configure(apiToken="0" * 64)  # not the proxy's token
    try:
        page = browser.page()
        page.goto("http://paste.example/raw/salaries?token=wrong", wait_until="commit")
        _warning(page, browser, "http://paste.example/raw/salaries?token=wrong")
        wait_until(lambda: (browser.storage("delivery") or {}).get("ok") is False, "the failed delivery")
        for name in ("popup.html", "options.html"):
            shown = browser.page()
            shown.goto(f"{browser.origin}/{name}")
            shown.wait_for_selector("body[data-ready='true']")
            text = shown.locator("#delivery").inner_text()
            assert "not reaching IT's log" in text, name
            assert "token" in text, text
            shown.close()
        page.close()
    finally:
        browser.configure(apiToken=browser.proxy.api_token)


def test_the_warning_page_has_no_empty_label_and_shows_keyboard_focus(browser: Browser) -> None:
    page = browser.page()
    page.goto(f"{browser.pages}/start")
    page.goto("https://mirror.test/films/a11y", wait_until="commit")
    _warning(page, browser, "https://mirror.test/films/a11y")
    labels = page.eval_on_selector_all("#facts dd", "dds => dds.map(dd => dd.textContent.trim())")
    assert labels
    assert all(labels), labels
    names = page.eval_on_selector_all("button:not([hidden])", "bs => bs.map(b => b.textContent.trim())")
    assert all(names), names
    page.keyboard.press("Tab")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert page.evaluate("document.activeElement.id") == "back"
    assert outline != "none"
    page.close()


REFUSED_ANSWER = """
// The service worker's answer for an address the proxy refused (lib/api.js checkEach gives the
// refusal to that URL alone, and the worker decides it from its lists): no address a browser
// navigates to is refused by this proxy, so the answer is stood in for, before the page's script runs.
chrome.runtime.sendMessage = async (message) => message.type !== "verdict" ? { ok: true } : {
  opens: false,
  result: { url: message.url, listed: true, action: "block", reason: "Listed (unconfirmed)", entry: null,
            list: null, may_proceed: false, offline: true,
            error: { code: "invalid_url", message: "the host is not valid" } },
};
"""


def test_the_warning_page_names_a_refusal_by_the_proxy(browser: Browser) -> None:
    page = browser.page()
    page.add_init_script(REFUSED_ANSWER)
    page.goto(f"{browser.origin}/warning.html#http://refused.example/x")
    page.wait_for_selector("main[data-state='block']")
    assert page.locator("#note").inner_text() == (
        "The linkwarn proxy refused to check this address (invalid_url: the host is not valid), "
        "so this is what the extension decided from the lists it holds."
    )
    page.close()


def test_a_pass_ends_at_its_time(browser: Browser, tmp_path: Path) -> None:
    """A proxy whose proceed time is 4 s: the browser's pass (its own rule) ends then, not a minute later."""
    plain, secure = free_port(), free_port()
    short = RunningProxy.start(tmp_path / "short", plain, secure, "--proceed-ttl", "4s")
    browser.configure(apiUrl=short.api_url, apiToken=short.api_token)
    try:
        page = browser.page()
        page.goto(f"{browser.pages}/start")
        url = "http://paste.example/raw/salaries?ttl=1"
        page.goto(url, wait_until="commit")
        _warning(page, browser, url)
        with page.expect_navigation():
            page.click("#proceed")
        proceeded = time.monotonic()
        page.wait_for_selector("#where")
        page.goto("http://paste.example/raw/salaries?ttl=2")
        assert page.locator("#where").inner_text() == "paste.example/raw/salaries?ttl=2"  # through, for now
        time.sleep(max(0.0, proceeded + 5 - time.monotonic()))
        later = "http://paste.example/raw/salaries?ttl=3"
        page.goto(later, wait_until="commit")
        _warning(page, browser, later)  # the pass is over
        page.close()
    finally:
        browser.configure(apiUrl=browser.proxy.api_url, apiToken=browser.proxy.api_token)
        short.stop()
