from __future__ import annotations

import base64
import hashlib
import json
import re
from importlib import resources

import pytest

from proxy_addon.interstitial import (
    CONTENT_SECURITY_POLICY,
    LANGUAGES,
    CaPage,
    WarningPage,
    render_ca_page,
    render_message,
    render_warning,
    texts_for,
)
from proxy_addon.settings import Organisation

EN = texts_for("en")

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
    html = render_warning(_page(), EN)
    for text in (
        "Leaked e-mail archive",
        "2014-11 breach",
        "corp-feed",
        "leak.test/dump/",
        "dropped the fragment",
    ):
        assert text in html
    assert 'action="/proceed"' in html
    assert 'name="token" value="tok.en"' in html
    assert 'action="/report"' in html
    assert 'name="reason"' not in html
    assert "<details><summary>Details</summary>" in html


def test_block_page_has_no_way_through() -> None:
    html = render_warning(_page(action="block"), EN)
    assert "This page is blocked" in html
    assert 'action="/proceed"' not in html
    assert 'action="/report"' in html


def test_every_value_is_escaped() -> None:
    html = render_warning(
        _page(url="https://leak.test/" + XSS, reason=XSS, source=XSS, incident=XSS, entry_label=XSS,
              steps=(XSS,), expressions=(XSS,), explanation=(XSS,), back_url="https://x.test/" + XSS,
              proceed_token=XSS, report_token=XSS,
              organisation=Organisation(XSS, "https://x.test/" + XSS, XSS)),
        EN,
    )  # fmt: skip
    assert "<script>alert" not in html
    assert "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert html.count("<script>") == 1  # the page's own


def test_go_back_never_links_to_a_script() -> None:
    html = render_warning(_page(back_url="javascript:alert(1)"), EN)
    assert 'href="about:blank"' in html
    assert "javascript:alert" not in html


def test_page_loads_nothing_external() -> None:
    html = render_warning(_page(), EN)
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "@import" not in html
    assert "url(" not in html


def test_csp_allows_exactly_the_inline_style_and_script() -> None:
    html = render_warning(_page(), EN)
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
    html = render_message(EN, "not_accepted", "refused_token", {"why": XSS}, back_url=XSS)
    assert "<script>alert" not in html
    assert "&lt;script&gt;" in html


def test_a_reason_field_when_one_is_required() -> None:
    html = render_warning(_page(reason_required=True), EN)
    assert '<textarea id="reason" name="reason" required maxlength="500">' in html


def test_every_language_has_every_text() -> None:
    folder = resources.files("proxy_addon").joinpath("locales")
    english = set(json.loads(folder.joinpath("en.json").read_text("utf-8")))
    assert {"en", "de"} <= set(LANGUAGES)
    for language in LANGUAGES:
        words = json.loads(folder.joinpath(f"{language}.json").read_text("utf-8"))
        assert set(words) == english, language
        placeholders = {k: sorted(re.findall(r"{(\w+)}", v)) for k, v in words.items()}
        english_words = json.loads(folder.joinpath("en.json").read_text("utf-8"))
        assert placeholders == {k: sorted(re.findall(r"{(\w+)}", v)) for k, v in english_words.items()}


@pytest.mark.parametrize(
    ("header", "language"),
    [
        ("de-DE,de;q=0.9,en;q=0.8", "de"),
        ("en-GB,de;q=0.5", "en"),
        ("fr, de;q=0.1", "de"),
        ("de;q=0, en;q=0.1", "en"),
        ("", "en"),
        (None, "en"),
        ("*", "en"),
        ("x" * 10000, "en"),
        ("de;q=abc", "en"),
    ],
)
def test_the_language_follows_accept_language(header: str | None, language: str) -> None:
    assert texts_for(header).language == language


def test_german_pages_are_german() -> None:
    html = render_warning(_page(), texts_for("de"))
    assert '<html lang="de">' in html
    assert "Trotzdem öffnen (15 Minuten)" in html
    assert "Fehler melden" in html


def test_the_ca_page_offers_both_files_and_the_fingerprint() -> None:
    html = render_ca_page(CaPage(fingerprint="AB:CD", secure=False), EN)
    assert 'href="/cert/pem"' in html
    assert 'href="/cert/cer"' in html
    assert "AB:CD" in html
    assert "already trusts" not in html
    assert "already trusts" in render_ca_page(CaPage(fingerprint=None, secure=True), EN)
    assert "not available" in render_ca_page(CaPage(fingerprint=None, secure=True), EN)
