"""Headless Chromium (Debian's) through ``linkwarn run``: the warning page as a person meets it."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from blocklists import key_of
from proxy_addon.tokens import ProceedToken, mint

from .support.servers import RunningProxy, Upstream

PROCEED_TOKEN = 'form[action="/__linkwarn/proceed"] input[name="token"]'


@pytest.fixture(scope="module")
def browser(running_proxy: RunningProxy) -> Iterator[Browser]:
    executable = shutil.which("chromium")
    assert executable, "Debian's chromium is needed (.ci/run installs it)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable,
            headless=True,
            proxy={"server": running_proxy.url},
            # Nothing leaves this machine: any name the proxy does not handle fails to resolve.
            args=["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"],
        )
        yield launched
        launched.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    opened = browser.new_context(ignore_https_errors=True)
    yield opened
    opened.close()


def _secret(proxy: RunningProxy) -> bytes:
    return bytes.fromhex((proxy.data_dir / "proceed.key").read_text().strip())


def _warn(page: Page, url: str) -> None:
    response = page.goto(url)
    assert response is not None
    assert response.status == 403
    assert page.title() == "Warning: this link leads to leaked material"


def test_warning_page_then_proceed_reaches_the_site(
    context: BrowserContext, upstreams: tuple[Upstream, Upstream], tmp_path: Path
) -> None:
    page = context.new_page()
    _warn(page, "https://leak.example/browser/inbox")
    assert page.get_by_text("Sample entry: a mirror of stolen company e-mail").is_visible()
    assert page.locator("#proceed").is_visible()
    page.screenshot(
        path=str(os.environ.get("LINKWARN_SCREENSHOT_DIR", tmp_path)) + "/warning-page.png", full_page=True
    )
    with page.expect_navigation():
        page.click("#proceed")
    assert page.locator("h1").inner_text() == "upstream page"
    assert ("leak.example", "/browser/inbox") in {(h, p) for h, p, _ in upstreams[1].server.seen}
    # The pass covers the rest of the entry for this browser...
    assert page.goto("https://leak.example/other").status == 200  # type: ignore[union-attr]


def test_go_back_returns_to_the_previous_page(context: BrowserContext) -> None:
    page = context.new_page()
    page.goto("https://clean.example/start")
    _warn(page, "https://leak.example/back-test")
    with page.expect_navigation():
        page.click("#back")
    assert page.url == "https://clean.example/start"


def test_block_page_offers_no_way_through(context: BrowserContext) -> None:
    page = context.new_page()
    response = page.goto("https://mirror.test/film")
    assert response is not None
    assert response.status == 403
    assert page.title() == "This page is blocked"
    assert page.locator("#proceed").count() == 0


@pytest.mark.parametrize(
    ("case", "message"),
    [("forged", "bad signature"), ("expired", "expired")],
)
def test_forged_or_expired_token_is_refused(
    context: BrowserContext, running_proxy: RunningProxy, case: str, message: str
) -> None:
    page = context.new_page()
    _warn(page, "https://leak.example/refused")
    secret = _secret(running_proxy) if case == "expired" else b"an attacker's guess at the secret"
    expires = int(time.time()) - 5 if case == "expired" else int(time.time()) + 3600
    token = mint(secret, ProceedToken("addr:127.0.0.1", key_of("leak.example/"), expires))
    page.eval_on_selector(PROCEED_TOKEN, "(input, value) => { input.value = value; }", token)
    with page.expect_navigation():
        page.click("#proceed")
    assert page.title() == "Not accepted"
    assert message in page.inner_text("main")
    assert page.goto("https://leak.example/refused").status == 403  # type: ignore[union-attr]


def test_a_cross_site_form_cannot_proceed(context: BrowserContext, running_proxy: RunningProxy) -> None:
    page = context.new_page()
    page.goto("https://attacker.example/")
    token = mint(
        _secret(running_proxy),
        ProceedToken("addr:127.0.0.1", key_of("leak.example/"), int(time.time()) + 600),
    )
    with page.expect_navigation():
        page.evaluate(
            """token => {
                const form = document.createElement('form');
                form.method = 'POST';
                form.action = 'https://leak.example/__linkwarn/proceed';
                for (const [name, value] of [['token', token], ['url', 'https://leak.example/x']]) {
                    const input = document.createElement('input');
                    input.type = 'hidden'; input.name = name; input.value = value;
                    form.appendChild(input);
                }
                document.body.appendChild(form);
                form.submit();
            }""",
            token,
        )
    assert page.title() == "Not accepted"
    assert "sent from another site" in page.inner_text("main")


def test_report_a_mistake(context: BrowserContext, running_proxy: RunningProxy) -> None:
    page = context.new_page()
    _warn(page, "https://leak.example/press-release")
    page.click("#report summary")
    page.fill("#comment", "This is our own press release <script>x</script>")
    with page.expect_navigation():
        page.click("#send-report")
    assert page.title() == "Thank you, your report was sent"
