from __future__ import annotations

import base64
import hashlib
import re

from proxy_addon.interstitial import CONTENT_SECURITY_POLICY, WarningPage, render_message, render_warning

XSS = '"><script>alert(1)</script><img src=x onerror=alert(2)>'


def _page(**fields: object) -> WarningPage:
    values: dict[str, object] = {
        "url": "https://leak.test/dump/",
        "canonical": "https://leak.test/dump/",
        "action": "warn",
        "entry_label": "leak.test/",
        "reason": "Leaked e-mail archive",
        "source": "corp-feed",
        "incident": "2014-11 breach",
        "steps": ("dropped the fragment",),
        "expressions": ("leak.test/dump/", "leak.test/"),
        "matched_expression": "leak.test/",
        "explanation": ("leak.test/ (warn) matched: all of the host leak.test",),
        "proceed_token": "tok.en",
        "report_token": "rep.ort",
    }
    values.update(fields)
    return WarningPage(**values)  # type: ignore[arg-type]


def test_warn_page_shows_what_matched_and_why() -> None:
    html = render_warning(_page())
    for text in (
        "Leaked e-mail archive",
        "2014-11 breach",
        "corp-feed",
        "leak.test/dump/",
        "dropped the fragment",
    ):
        assert text in html
    assert 'action="/__linkwarn/proceed"' in html
    assert 'name="token" value="tok.en"' in html
    assert 'action="/__linkwarn/report"' in html
    assert "<details><summary>Details</summary>" in html


def test_block_page_has_no_way_through() -> None:
    html = render_warning(_page(action="block"))
    assert "This page is blocked" in html
    assert "/__linkwarn/proceed" not in html
    assert "/__linkwarn/report" in html


def test_every_value_is_escaped() -> None:
    html = render_warning(
        _page(url="https://leak.test/" + XSS, reason=XSS, source=XSS, incident=XSS, entry_label=XSS,
              steps=(XSS,), expressions=(XSS,), explanation=(XSS,), back_url="https://x.test/" + XSS)
    )  # fmt: skip
    assert "<script>alert" not in html
    assert "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert html.count("<script>") == 1  # the page's own


def test_go_back_never_links_to_a_script() -> None:
    html = render_warning(_page(back_url="javascript:alert(1)"))
    assert 'href="about:blank"' in html
    assert "javascript:alert" not in html


def test_page_loads_nothing_external() -> None:
    html = render_warning(_page())
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "@import" not in html
    assert "url(" not in html


def test_csp_allows_exactly_the_inline_style_and_script() -> None:
    html = render_warning(_page())
    style = re.search(r"<style>(.*?)</style>", html, re.S)
    script = re.search(r"<script>(.*?)</script>", html, re.S)
    assert style
    assert script
    for body in (style.group(1), script.group(1)):
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in CONTENT_SECURITY_POLICY
    assert "default-src 'none'" in CONTENT_SECURITY_POLICY
    assert "form-action 'self'" in CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY


def test_message_page_escapes() -> None:
    html = render_message(XSS, XSS, back_url=XSS)
    assert "<script>alert" not in html
