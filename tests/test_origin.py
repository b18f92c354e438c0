"""linkwarn's own origin: the warning page, Proceed, Report and the CA page, through the addon's hooks."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography import x509
from mitmproxy import certs, http

from blocklists import Action, Entry, Store, key_of
from proxy_addon.tokens import Purpose, Token, mint

from .support.hooks import NAVIGATE, OWN, Proxy, form_value, proxy_with, soon

ENTRIES = [
    Entry.listing("leak.test/", Action.WARN, reason="Leaked mail <archive>", source="corp"),
    Entry.listing("mirror.test/", Action.BLOCK, reason="Unreleased films", source="corp"),
    Entry.listing("why.test/", Action.WARN, source="corp", require_reason=True),
]


@pytest.fixture
async def proxy(tmp_path: Path) -> AsyncIterator[Proxy]:
    async with proxy_with(tmp_path, ENTRIES) as opened:
        yield opened


def text(flow: http.HTTPFlow) -> str:
    assert flow.response is not None
    return flow.response.get_text() or ""


# -- the warning page ----------------------------------------------------------------


async def test_the_warning_page_is_served_by_the_own_origin_and_never_framed(proxy: Proxy) -> None:
    page = await proxy.warning_page("https://leak.test/inbox")
    assert page.response is not None
    assert page.response.status_code == 200
    headers = page.response.headers
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert "default-src 'none'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "same-origin"
    assert headers["cross-origin-opener-policy"] == "same-origin"
    body = text(page)
    assert "Leaked mail &lt;archive&gt;" in body
    assert 'action="/proceed"' in body
    assert 'action="/report"' in body
    assert await proxy.kinds() == [("warning", "leak.test/")]


async def test_a_block_page_has_no_proceed(proxy: Proxy) -> None:
    page = await proxy.warning_page("http://mirror.test/film")
    assert "This page is blocked" in text(page)
    assert 'action="/proceed"' not in text(page)
    assert await proxy.kinds() == [("block", "mirror.test/")]


@pytest.mark.parametrize(
    "headers",
    [
        {"sec-fetch-dest": "iframe", "sec-fetch-mode": "navigate"},
        {"sec-fetch-dest": "empty", "sec-fetch-mode": "cors"},
        {"origin": "https://leak.test"},  # a script's request, over plain HTTP too
    ],
)
async def test_frames_and_scripts_get_no_page_and_log_nothing(proxy: Proxy, headers: dict[str, str]) -> None:
    first = await proxy.request("https://leak.test/", headers=NAVIGATE)
    assert first.response is not None
    flow = await proxy.request(first.response.headers["location"], headers=headers)
    assert flow.response is not None
    assert flow.response.status_code == 403
    assert 'action="/proceed"' not in text(flow)
    assert await proxy.kinds() == []


async def test_a_ticket_is_the_clients_own_and_expires(proxy: Proxy) -> None:
    first = await proxy.request("https://leak.test/", headers=NAVIGATE)
    assert first.response is not None
    location = first.response.headers["location"]
    other = await proxy.request(location, headers=NAVIGATE, client="10.1.1.1")
    assert other.response is not None
    assert other.response.status_code == 400
    assert "out of date" in text(other)
    expired = mint(b"s" * 32, Token(Purpose.TICKET, "addr:127.0.0.1", key_of("leak.test/"), soon(-1),
                                    url="https://leak.test/"))  # fmt: skip
    late = await proxy.request(f"https://{OWN}/warning?t={expired}", headers=NAVIGATE)
    assert late.response is not None
    assert late.response.status_code == 400
    for bad in ("", "x", "a.b", "%0d%0a"):
        flow = await proxy.request(f"https://{OWN}/warning?t={bad}", headers=NAVIGATE)
        assert flow.response is not None
        assert flow.response.status_code == 400


async def test_a_ticket_for_an_entry_since_removed_is_out_of_date(proxy: Proxy) -> None:
    first = await proxy.request("https://leak.test/", headers=NAVIGATE)
    assert first.response is not None
    assert proxy.runtime.store is not None
    await proxy.runtime.store.remove([key_of("leak.test/")])
    flow = await proxy.request(first.response.headers["location"], headers=NAVIGATE)
    assert flow.response is not None
    assert flow.response.status_code == 409


async def test_the_page_speaks_german_and_names_the_organisation(tmp_path: Path) -> None:
    options = {
        "linkwarn_org_name": "Example <Studios>",
        "linkwarn_contact": "security@example.test",
        "linkwarn_help_text": "Call the desk on 1234 <b>now</b>.",
    }
    async with proxy_with(tmp_path, ENTRIES, **options) as proxy:
        first = await proxy.request("https://leak.test/", headers=NAVIGATE)
        assert first.response is not None
        location = first.response.headers["location"]
        page = await proxy.request(
            location, headers={**NAVIGATE, "accept-language": "fr;q=1, de-DE;q=0.9, en;q=0.5"}
        )
        body = text(page)
        assert '<html lang="de">' in body
        assert "Warnung: Dieser Link führt zu geleaktem Material" in body
        assert "Trotzdem öffnen (15 Minuten)" in body
        assert "Example &lt;Studios&gt;" in body
        assert 'href="mailto:security@example.test"' in body
        assert "Call the desk on 1234 &lt;b&gt;now&lt;/b&gt;." in body
        english = await proxy.request(location, headers={**NAVIGATE, "accept-language": "xx, *"})
        assert '<html lang="en">' in text(english)


# -- Proceed ---------------------------------------------------------------------------------


def _proceed_token(proxy: Proxy, page: http.HTTPFlow) -> str:
    return form_value(page, "/proceed")


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"origin": "https://leak.test"}, 403),  # the listed site posting across
        ({"origin": "https://attacker.test", "sec-fetch-site": "cross-site"}, 403),
        ({"origin": "null"}, 403),  # a sandboxed frame, a data: page
        ({"origin": "", "sec-fetch-site": "same-origin"}, 403),
        ({"sec-fetch-site": "same-site"}, 403),  # a sibling host of the own origin
        ({"content-type": "text/plain"}, 400),
    ],
)
async def test_proceed_only_from_the_own_origins_page(
    proxy: Proxy, headers: dict[str, str], status: int
) -> None:
    page = await proxy.warning_page("https://leak.test/inbox")
    await asyncio.sleep(1.05)
    post = await proxy.post_form("/proceed", {"token": _proceed_token(proxy, page)}, **headers)
    assert post.response is not None
    assert post.response.status_code == status
    assert "location" not in post.response.headers
    assert [k for k, _ in await proxy.kinds()] == ["warning"]


async def test_proceed_without_origin_header_is_refused(proxy: Proxy) -> None:
    page = await proxy.warning_page("https://leak.test/inbox")
    await asyncio.sleep(1.05)
    flow = proxy.flow(f"https://{OWN}/proceed", method="POST",
                      headers={"content-type": "application/x-www-form-urlencoded"},
                      body=f"token={_proceed_token(proxy, page)}".encode())  # fmt: skip
    await proxy.send(flow)
    assert flow.response is not None
    assert flow.response.status_code == 403


async def test_proceed_sooner_than_a_person_could_read_is_refused(proxy: Proxy) -> None:
    post = await proxy.proceed("https://leak.test/inbox", wait=False)
    assert post.response is not None
    assert post.response.status_code == 403
    assert "too soon" in text(post)
    assert ("refused", None) in await proxy.kinds()


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (mint(b"x" * 32, Token(Purpose.PROCEED, "addr:127.0.0.1", key_of("leak.test/"), soon(86400),
                               url="https://leak.test/")), "bad signature"),
        (mint(b"s" * 32, Token(Purpose.PROCEED, "addr:127.0.0.1", key_of("leak.test/"), soon(-1),
                               url="https://leak.test/")), "expired"),
        (mint(b"s" * 32, Token(Purpose.PROCEED, "addr:10.0.0.9", key_of("leak.test/"), soon(86400),
                               url="https://leak.test/")), "another client"),
        (mint(b"s" * 32, Token(Purpose.REPORT, "addr:127.0.0.1", key_of("leak.test/"), soon(86400),
                               url="https://leak.test/")), "not a proceed token"),
        (mint(b"s" * 32, Token(Purpose.TICKET, "addr:127.0.0.1", key_of("leak.test/"), soon(86400),
                               url="https://leak.test/")), "not a proceed token"),
    ],
)  # fmt: skip
async def test_forged_expired_and_foreign_proceed_tokens_are_refused(
    proxy: Proxy, token: str, message: str
) -> None:
    post = await proxy.post_form("/proceed", {"token": token})
    assert post.response is not None
    assert post.response.status_code == 403
    assert message in text(post)
    refused = [e.detail for e in await proxy.events() if e.kind == "refused"]
    assert len(refused) == 1
    assert message in (refused[0] or "")


async def test_a_proceed_token_for_another_entrys_url_is_refused(proxy: Proxy) -> None:
    token = mint(b"s" * 32, Token(Purpose.PROCEED, "addr:127.0.0.1", key_of("leak.test/"), soon(86400),
                                  url="https://mirror.test/"))  # fmt: skip
    post = await proxy.post_form("/proceed", {"token": token})
    assert post.response is not None
    assert "does not cover" in text(post)


async def test_a_block_entry_has_no_way_through_even_with_a_token(proxy: Proxy) -> None:
    token = mint(b"s" * 32, Token(Purpose.PROCEED, "addr:127.0.0.1", key_of("mirror.test/"), soon(86400),
                                  url="https://mirror.test/"))  # fmt: skip
    post = await proxy.post_form("/proceed", {"token": token})
    assert post.response is not None
    assert "no way through" in text(post)


async def test_a_reason_is_asked_for_by_the_entry_and_stored(proxy: Proxy) -> None:
    page = await proxy.warning_page("https://why.test/")
    assert 'name="reason" required' in text(page)
    await asyncio.sleep(1.05)
    token = _proceed_token(proxy, page)
    empty = await proxy.post_form("/proceed", {"token": token, "reason": "   "})
    assert empty.response is not None
    assert empty.response.status_code == 400
    post = await proxy.post_form("/proceed", {"token": token, "reason": "Legal review\r\nof case 7"})
    assert post.response is not None
    assert post.response.status_code == 303
    (proceed,) = [e for e in await proxy.events() if e.kind == "proceed"]
    assert proceed.detail == "Legal review\\x0d\nof case 7"
    # Entries that do not ask get no field...
    assert 'name="reason"' not in text(await proxy.warning_page("https://leak.test/"))


async def test_a_reason_is_asked_for_everywhere_when_it_is_required(tmp_path: Path) -> None:
    async with proxy_with(tmp_path, ENTRIES, linkwarn_require_reason=True) as proxy:
        post = await proxy.proceed("https://leak.test/")
        assert post.response is not None
        assert post.response.status_code == 400
        post = await proxy.proceed("https://leak.test/", reason="Press office check")
        assert post.response is not None
        assert post.response.status_code == 303


# -- Report ----------------------------------------------------------------------------------


async def test_a_report_is_stored_and_its_token_is_never_a_pass(proxy: Proxy) -> None:
    page = await proxy.warning_page("https://leak.test/")
    report = form_value(page, "/report")
    sent = await proxy.post_form("/report", {"token": report, "comment": "Our press page <b>"})
    assert sent.response is not None
    assert sent.response.status_code == 200
    assert "Thank you" in text(sent)
    (event,) = [e for e in await proxy.events() if e.kind == "report"]
    assert event.detail == "Our press page <b>"
    assert event.url == "https://leak.test/"
    as_proceed = await proxy.post_form("/proceed", {"token": report})
    assert as_proceed.response is not None
    assert as_proceed.response.status_code == 403
    as_pass = await proxy.request(
        "https://leak.test/", headers={**NAVIGATE, "cookie": f"linkwarn_pass={report}"}
    )
    assert as_pass.response is not None
    assert as_pass.response.status_code == 303


async def test_reports_are_limited_per_client(tmp_path: Path) -> None:
    async with proxy_with(tmp_path, ENTRIES, linkwarn_reports_per_hour=2) as proxy:
        page = await proxy.warning_page("https://leak.test/")
        report = form_value(page, "/report")
        codes = []
        for _ in range(4):
            sent = await proxy.post_form("/report", {"token": report, "comment": "x"})
            assert sent.response is not None
            codes.append(sent.response.status_code)
        assert codes == [200, 200, 429, 429]
        other = await proxy.warning_page("https://leak.test/", client="10.2.2.2")
        sent = await proxy.post_form("/report", {"token": form_value(other, "/report")}, client="10.2.2.2")
        assert sent.response is not None
        assert sent.response.status_code == 200
        assert [e.kind for e in await proxy.events()].count("report") == 3


# -- the front page: the CA certificate ----------------------------------------------------


async def test_the_front_page_offers_the_ca_certificate(tmp_path: Path) -> None:
    confdir = tmp_path / "conf"
    certs.CertStore.from_store(confdir, "mitmproxy", 2048)  # as mitmproxy's TLS addon does at start
    async with proxy_with(tmp_path, ENTRIES, confdir=str(confdir)) as proxy:
        page = await proxy.request(f"http://{OWN}/", headers=NAVIGATE)
        body = text(page)
        assert "Install linkwarn" in body
        assert 'href="/cert/pem"' in body
        assert "trusts its certificate" not in body
        pem = await proxy.request(f"http://{OWN}/cert/pem")
        der = await proxy.request(f"http://{OWN}/cert/cer")
        assert pem.response is not None
        assert der.response is not None
        certificate = x509.load_pem_x509_certificate(pem.response.content or b"")
        assert x509.load_der_x509_certificate(der.response.content or b"") == certificate
        assert certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        digest = hashlib.sha256(der.response.content or b"").hexdigest().upper()
        assert ":".join(digest[i : i + 2] for i in range(0, 64, 2)) in body
        secure = await proxy.request(f"https://{OWN}/", headers=NAVIGATE)
        assert "already trusts its certificate" in text(secure)


async def test_the_own_origin_is_never_forwarded_under_any_name(proxy: Proxy) -> None:
    for url, host in (
        (f"http://{OWN}/anything", None),
        ("http://203.0.113.7/", OWN),
        (f"https://{OWN.upper()}./", None),
    ):
        flow = proxy.flow(url, headers=NAVIGATE)
        if host:
            flow.request.headers["host"] = host
        await proxy.send(flow)
        assert flow.response is not None, url
    wrong = await proxy.request(f"https://{OWN}/proceed")
    assert wrong.response is not None
    assert wrong.response.status_code == 405
    assert wrong.response.headers["allow"] == "POST"
    missing = await proxy.request(f"https://{OWN}/nothing")
    assert missing.response is not None
    assert missing.response.status_code == 404


async def test_only_the_ca_page_is_served_over_plain_http(proxy: Proxy) -> None:
    first = await proxy.request("http://leak.test/", headers=NAVIGATE)
    assert first.response is not None
    ticket_url = first.response.headers["location"]
    plain = await proxy.request(ticket_url.replace("https://", "http://"), headers=NAVIGATE)
    assert plain.response is not None
    assert plain.response.status_code == 308
    assert plain.response.headers["location"] == ticket_url
    page = await proxy.warning_page("http://leak.test/")
    post = await proxy.post_form("/proceed", {"token": form_value(page, "/proceed")}, scheme="http")
    assert post.response is not None
    assert post.response.status_code == 403
    assert [k for k, _ in await proxy.kinds()] == ["warning"]


async def test_another_own_host_can_be_chosen(tmp_path: Path) -> None:
    async with proxy_with(tmp_path, ENTRIES, linkwarn_own_host="warn.corp.example") as proxy:
        first = await proxy.request("https://leak.test/", headers=NAVIGATE)
        assert first.response is not None
        assert first.response.headers["location"].startswith("https://warn.corp.example/warning?t=")
        # The default name is then an ordinary host again.
        assert (await proxy.request(f"http://{OWN}/")).response is None


async def test_proceed_through_the_store_of_another_process_still_decides(tmp_path: Path) -> None:
    async with proxy_with(tmp_path, ENTRIES) as proxy:
        async with Store.in_dir(tmp_path) as store:
            assert await store.count() == len(ENTRIES)
        cookie, url = await proxy.pass_cookie("https://leak.test/x")
        assert (await proxy.request(url, headers={**NAVIGATE, "cookie": cookie})).response is None


# -- no tracebacks: whatever reaches the own origin gets a page naming the problem ------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

ODD_PATHS = st.sampled_from(["/", "/warning", "/proceed", "/report", "/share", "/share/send", "/cert/pem",
                             "/proxy.pac", "/nothing", "//", "/warning/../proceed", "/%00",
                             "/\u00e9"])  # fmt: skip
ODD_QUERIES = st.sampled_from(
    ["", "?t=", "?t=a.b", "?t=" + "x" * 70_000, "?t=%ff%fe", "?t=\udcff", "?t=1&t=2"]
)
ODD_BODIES = st.sampled_from([b"", b"token=", b"token=%ff", b"a" * 70_000, b"\x00\xff",
                              b"token=a.b&reason=\xff", b"comment=" + b"x" * 5000])  # fmt: skip


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "OPTIONS", "HEAD", "PATCH"]),
    path=ODD_PATHS,
    query=ODD_QUERIES,
    body=ODD_BODIES,
    content_type=st.sampled_from(
        ["application/x-www-form-urlencoded", "text/plain", "multipart/form-data", ""]
    ),
    scheme=st.sampled_from(["http", "https"]),
)
async def test_odd_requests_to_the_own_origin_get_a_page_never_a_traceback(
    proxy: Proxy, method: str, path: str, query: str, body: bytes, content_type: str, scheme: str
) -> None:
    headers = {"origin": f"{scheme}://{OWN}", "sec-fetch-site": "same-origin"}
    if content_type:
        headers["content-type"] = content_type
    flow = proxy.flow(f"{scheme}://{OWN}/", method=method, headers=headers, body=body)
    flow.request.path = path + query
    await proxy.send(flow)
    assert flow.response is not None
    response = flow.response
    assert response.status_code not in (500, 502), (method, path, query[:20], response.status_code)
    if 300 <= response.status_code < 400:
        assert all(0x21 <= ord(c) < 0x7F for c in response.headers["location"])
    else:
        assert response.headers.get("content-type", "").startswith(("text/", "application/"))
