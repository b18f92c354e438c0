"""Headless Chromium through ``linkwarn run``: the warning flow as a person and a hostile site meet it."""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from .support.servers import RunningProxy, Upstream

OWN = "linkwarn.internal"
NAVIGATE = {"sec-fetch-dest": "document", "sec-fetch-mode": "navigate", "sec-fetch-site": "none"}


def _launch(playwright: Playwright, proxy: RunningProxy) -> Browser:
    executable = shutil.which("chromium")
    assert executable, "Debian's chromium is needed (.ci/run installs it)"
    return playwright.chromium.launch(
        executable_path=executable,
        headless=True,
        proxy={"server": proxy.url},
        # Nothing leaves this machine: any name the proxy does not handle fails to resolve.
        args=["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"],
    )


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as started:
        yield started


@pytest.fixture(scope="module")
def browser(playwright: Playwright, running_proxy: RunningProxy) -> Iterator[Browser]:
    launched = _launch(playwright, running_proxy)
    yield launched
    launched.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    opened = browser.new_context(ignore_https_errors=True)
    yield opened
    opened.close()


def shots(tmp_path: Path) -> Path:
    return Path(os.environ.get("LINKWARN_SCREENSHOT_DIR", tmp_path))


def events(proxy: RunningProxy, kind: str) -> list[tuple[str, str | None]]:
    """The proxy's stored events of *kind* (client, detail), once its writer has flushed."""
    time.sleep(1.3)  # the event log writes once a second
    with sqlite3.connect(f"file:{proxy.data_dir / 'linkwarn.sqlite3'}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT client, detail FROM events WHERE kind = ?", (kind,)).fetchall()
    return [(client, detail) for client, detail in rows]


def _warn(page: Page, url: str) -> None:
    response = page.goto(url)
    assert response is not None
    assert response.url.startswith(f"https://{OWN}/warning?t=")
    assert response.status == 200
    assert page.title() == "Warning: this link leads to leaked material"


def _proceed(page: Page) -> None:
    page.wait_for_timeout(1100)  # a person reads before choosing; sooner is refused
    with page.expect_navigation():
        page.click("#proceed")


# -- a person ------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["https", "http"])
def test_a_persons_click_on_proceed_reaches_the_site_once_for_the_entry(
    context: BrowserContext, upstreams: tuple[Upstream, Upstream], running_proxy: RunningProxy, scheme: str
) -> None:
    page = context.new_page()
    codes: list[str] = []
    page.on(
        "request",
        lambda request: codes.append(request.url) if "linkwarn-proceed-code=" in request.url else None,
    )
    url = f"{scheme}://leak.example/browser/{scheme}"
    _warn(page, url)
    assert page.get_by_text("Sample entry: a mirror of stolen company e-mail").is_visible()
    assert page.locator("#proceed").is_visible()
    before = len(events(running_proxy, "proceed"))
    _proceed(page)
    assert page.url == url  # the code is gone from the address bar
    assert page.locator("h1").inner_text() == "upstream page"
    upstream = upstreams[1] if scheme == "https" else upstreams[0]
    assert ("leak.example", f"/browser/{scheme}") in {(h, p) for h, p, _ in upstream.server.seen}
    assert all("linkwarn" not in (cookie or "") for _, _, cookie in upstream.server.seen)
    # The pass covers the rest of the entry for this browser...
    assert page.goto(f"{scheme}://www.leak.example/other").status == 200  # type: ignore[union-attr]
    # ... and nothing else.
    assert page.goto(f"{scheme}://paste.example/raw/salaries").url.startswith(f"https://{OWN}/")  # type: ignore[union-attr]
    assert len(events(running_proxy, "proceed")) == before + 1
    # The code worked once: replayed without the pass, it gets the warning again.
    (code_url,) = codes
    context.clear_cookies()
    _warn(page, code_url)


def test_go_back_returns_to_the_previous_page(context: BrowserContext) -> None:
    page = context.new_page()
    page.goto("https://clean.example/start")
    _warn(page, "https://leak.example/back-test")
    with page.expect_navigation():
        page.click("#back")
    assert page.url == "https://clean.example/start"


def test_block_page_offers_no_way_through(context: BrowserContext) -> None:
    page = context.new_page()
    response = page.goto("http://mirror.test/film")
    assert response is not None
    assert response.url.startswith(f"https://{OWN}/warning")
    assert page.title() == "This page is blocked"
    assert page.locator("#proceed").count() == 0


def test_report_a_mistake(context: BrowserContext, running_proxy: RunningProxy) -> None:
    page = context.new_page()
    _warn(page, "https://leak.example/press-release")
    page.click("#report summary")
    page.fill("#comment", "This is our own press release <script>x</script>")
    with page.expect_navigation():
        page.click("#send-report")
    assert page.title() == "Thank you, your report was sent"
    assert ("addr:127.0.0.1", "This is our own press release <script>x</script>") in events(
        running_proxy, "report"
    )


def test_the_pages_as_people_see_them(browser: Browser, tmp_path: Path) -> None:
    """Screenshots for the README: both actions, both languages, a phone, keyboard focus."""
    folder = shots(tmp_path)
    for name, locale, viewport, url in (
        ("warning-page", "en-GB", {"width": 1100, "height": 900}, "https://leak.example/inbox?id=7"),
        ("block-page", "en-GB", {"width": 1100, "height": 900}, "http://files.example/dump/salaries.xlsx"),
        ("warning-page-de", "de-DE", {"width": 1100, "height": 900}, "https://leak.example/inbox?id=7"),
        ("warning-page-phone", "en-GB", {"width": 390, "height": 844}, "https://paste.example/raw/salaries"),
    ):
        context = browser.new_context(ignore_https_errors=True, locale=locale, viewport=viewport)
        page = context.new_page()
        page.goto(url)
        assert page.locator("h1").is_visible()
        if name == "warning-page-de":
            assert page.title() == "Warnung: Dieser Link führt zu geleaktem Material"
        if name == "warning-page-phone":
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, "the page scrolls sideways on a phone"
        page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
        context.close()
    context = browser.new_context(ignore_https_errors=True, viewport={"width": 1100, "height": 700})
    page = context.new_page()
    page.goto("https://leak.example/focus")
    for _ in range(4):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "proceed":
            break
    assert page.evaluate("document.activeElement.id") == "proceed"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid", "keyboard focus is not visible"
    page.screenshot(path=str(folder / "warning-page-focus.png"))
    context.close()


# -- a hostile site --------------------------------------------------------------------
#
# paste.example lists only /raw/salaries: the rest of the site is not listed, so a
# script there runs in the listed origin. Whatever it does, no warning is lifted and
# no proceed is logged.


def test_a_script_on_the_listed_origin_cannot_read_or_submit_the_warning(
    context: BrowserContext, running_proxy: RunningProxy
) -> None:
    page = context.new_page()
    page.goto("https://paste.example/home")
    before = len(events(running_proxy, "proceed"))
    outcomes = page.evaluate(
        """async () => {
            const out = [];
            const tries = [
                ['/raw/salaries', {headers: {Accept: 'text/html'}}],
                ['/raw/salaries', {mode: 'no-cors'}],
                ['/raw/salaries', {redirect: 'manual'}],
                ['/raw/salaries', {credentials: 'include', headers: {Accept: 'text/html'}}],
                ['https://linkwarn.internal/', {}],
            ];
            for (const [url, options] of tries) {
                try {
                    const response = await fetch(url, options);
                    const text = await response.text();
                    out.push([response.status, response.type, text.slice(0, 120)]);
                    const doc = new DOMParser().parseFromString(text, 'text/html');
                    for (const found of doc.querySelectorAll('form')) {
                        const form = document.createElement('form');
                        form.method = 'POST';
                        form.action = new URL(found.getAttribute('action'), response.url || location.href);
                        for (const input of found.querySelectorAll('input')) {
                            form.appendChild(input.cloneNode());
                        }
                        document.body.appendChild(form);
                        form.submit();
                        out.push(['submitted', form.action]);
                    }
                } catch (error) {
                    out.push(['error', String(error)]);
                }
            }
            // Post to the own origin's Proceed directly, with what a guess can be.
            for (const token of ['', 'x.y']) {
                try {
                    const r = await fetch('https://linkwarn.internal/proceed',
                        {method: 'POST', mode: 'no-cors', body: new URLSearchParams({token})});
                    out.push(['posted', r.type]);
                } catch (error) { out.push(['error', String(error)]); }
            }
            return out;
        }"""
    )
    assert not any(item[0] == "submitted" for item in outcomes), outcomes
    assert all("Proceed" not in str(item) for item in outcomes), outcomes
    assert len(events(running_proxy, "proceed")) == before
    _warn(page, "https://paste.example/raw/salaries")


def test_a_popup_from_the_listed_origin_cannot_be_driven(
    context: BrowserContext, running_proxy: RunningProxy
) -> None:
    page = context.new_page()
    page.goto("https://paste.example/home")
    before = len(events(running_proxy, "proceed"))
    with context.expect_page() as opened:
        page.evaluate("window.popup = window.open('/raw/salaries')")
    popup = opened.value
    popup.wait_for_load_state()
    assert popup.url.startswith(f"https://{OWN}/warning")
    result = page.evaluate(
        """async () => {
            await new Promise(resolve => setTimeout(resolve, 1500));
            const out = [];
            for (const attempt of [
                () => window.popup.document.querySelector('#proceed').click(),
                () => window.popup.location.href,
                () => window.popup.document.forms[0].submit(),
            ]) {
                try {
                    out.push(['ok', String(attempt())]);
                } catch (error) {
                    out.push(['error', String(error)]);
                }
            }
            out.push(['closed', String(window.popup.closed)]);
            return out;
        }"""
    )
    assert not any(kind == "ok" for kind, _ in result[:3]), result
    assert len(events(running_proxy, "proceed")) == before
    assert popup.title() == "Warning: this link leads to leaked material"


def test_the_warning_cannot_be_framed_under_a_decoy(
    context: BrowserContext, running_proxy: RunningProxy
) -> None:
    # Even a real ticket of this client's (as a leak would give it) does not load in a frame.
    with httpx.Client(proxy=running_proxy.url, verify=False, timeout=10) as client:
        ticket_url = client.get("https://leak.example/decoy", headers=NAVIGATE).headers["location"]
    page = context.new_page()
    page.goto("https://clean.example/game")
    before = len(events(running_proxy, "proceed")), len(events(running_proxy, "warning"))
    for source in (ticket_url, "https://leak.example/decoy", "http://leak.example/decoy"):
        page.evaluate(
            """source => {
                document.body.innerHTML = '<button id="decoy" style="position:absolute;left:40px;top:300px;'
                  + 'width:600px;height:200px">Click to win</button>';
                const frame = document.createElement('iframe');
                frame.src = source;
                frame.style = 'position:absolute;left:0;top:0;width:1000px;height:800px;'
                  + 'opacity:0.01;border:0';
                document.body.appendChild(frame);
            }""",
            source,
        )
        page.wait_for_timeout(1500)
        page.mouse.click(300, 400)
        page.wait_for_timeout(300)
        framed = page.frames[-1]
        assert framed.locator("#proceed").count() == 0, source
    assert (len(events(running_proxy, "proceed")), len(events(running_proxy, "warning"))) == before


def test_a_pass_ends_at_its_expiry_and_a_reason_can_be_required(
    playwright: Playwright,
    tmp_path_factory: pytest.TempPathFactory,
    upstreams: tuple[Upstream, Upstream],
    tmp_path: Path,
) -> None:
    proxy = RunningProxy.start(
        tmp_path_factory.mktemp("brief"), upstreams[0].port, upstreams[1].port, "--proceed-ttl", "3s",
        "--require-reason", "--org-name", "Example Studios", "--contact", "security@example.test",
        "--help-text", "Questions about leaked material: call the security desk on extension 4242.",
    )  # fmt: skip
    browser = _launch(playwright, proxy)
    try:
        page = browser.new_context(ignore_https_errors=True).new_page()
        _warn(page, "https://leak.example/brief")
        assert page.inner_text("#proceed") == "Proceed anyway (3 seconds)"
        assert page.get_by_text("link protection run by Example Studios").is_visible()
        assert page.locator('#contact a[href="mailto:security@example.test"]').is_visible()
        page.wait_for_timeout(1100)
        page.click("#proceed")  # the browser asks for the reason first: nothing is sent
        assert page.url.startswith(f"https://{OWN}/warning")
        page.fill("#reason", "Checking what was published, for the legal team")
        page.screenshot(path=str(shots(tmp_path) / "warning-page-reason.png"), full_page=True)
        _proceed(page)
        assert page.locator("h1").inner_text() == "upstream page"
        page.wait_for_timeout(3200)
        _warn(page, "https://leak.example/brief")
        assert ("addr:127.0.0.1", "Checking what was published, for the legal team") in events(
            proxy, "proceed"
        )
    finally:
        browser.close()
        proxy.stop()


def _posted(upstream: Upstream) -> list[bytes]:
    """The bodies posted to the page's ``/post``: Chromium's own background requests (its
    component updater's, say) go through the proxy to the same upstream."""
    return [body for path, body in upstream.server.bodies if path == "/post"]


def test_a_post_carrying_a_listed_link_is_held_and_send_anyway_delivers_it(
    context: BrowserContext, upstreams: tuple[Upstream, Upstream], tmp_path: Path
) -> None:
    page = context.new_page()
    page.goto("http://social.example/compose")
    page.evaluate(
        """() => { document.body.innerHTML = '<form method="post" action="/post">'
            + '<textarea name="status">Have you seen http://leak.example/inbox?id=3</textarea>'
            + '<input name="csrf" value="k"><button id="go">Post</button></form>'; }"""
    )
    before = len(_posted(upstreams[0]))
    with page.expect_navigation():
        page.click("#go")
    assert page.url.startswith(f"https://{OWN}/share?t=")
    assert page.title() == "This post carries a link to leaked material"
    assert page.get_by_text("http://leak.example/inbox?id=3").is_visible()
    page.screenshot(path=str(shots(tmp_path) / "share-warning.png"), full_page=True)
    assert len(_posted(upstreams[0])) == before  # held back: nothing went up
    page.wait_for_timeout(1100)
    with page.expect_navigation():
        page.click("#send-anyway")
    expected = b"status=Have+you+seen+http%3A%2F%2Fleak.example%2Finbox%3Fid%3D3&csrf=k"
    assert _posted(upstreams[0])[before:] == [expected]  # as the browser first sent it
    assert page.inner_text("body") == f"received {len(expected)} bytes"
