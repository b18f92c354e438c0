"""The addon's hooks, called directly inside mitmproxy's test context with real stores."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from mitmproxy import exceptions, http
from mitmproxy.test import taddons, tflow

from blocklists import Action, Entry, Store
from proxy_addon.interceptor import METADATA_KEY, PASS_COOKIE, Linkwarn
from proxy_addon.tokens import ProceedToken, mint

ENTRIES = [
    Entry.listing("leak.test/", Action.WARN, reason="Leaked mail <archive>", source="corp"),
    Entry.listing("mirror.test/", Action.BLOCK, reason="Unreleased films", source="corp"),
    Entry.listing("press.leak.test/", Action.ALLOW, source="corp"),
    Entry.listing("watch.test/", Action.AUDIT, source="corp"),
    Entry.listing("leak.test/worse/", Action.BLOCK, source="corp"),
]
NAVIGATE = {"sec-fetch-dest": "document", "sec-fetch-mode": "navigate", "sec-fetch-site": "none"}


async def _run(pending: Coroutine[Any, Any, None] | None) -> None:
    """Call a hook as mitmproxy does: it may return a coroutine, which is then awaited."""
    if pending is not None:
        await pending


class Proxy:
    def __init__(self, addon: Linkwarn, tctx: taddons.context, data_dir: Path) -> None:
        self.addon, self.tctx, self.data_dir = addon, tctx, data_dir

    def flow(
        self, url: str, *, method: str = "GET", headers: dict[str, str] | None = None, body: bytes = b""
    ) -> http.HTTPFlow:
        flow = tflow.tflow()
        flow.request = http.Request.make(method, url, body, headers or {})
        return flow

    async def request(self, url: str, **kwargs: object) -> http.HTTPFlow:
        flow = self.flow(url, **kwargs)  # type: ignore[arg-type]
        await _run(self.addon.request(flow))
        return flow

    async def events(self) -> list[tuple[str, str | None]]:
        assert self.addon.events is not None
        assert self.addon.store is not None
        await self.addon.events.flush()
        return [(e.kind, e.expression) for e in await self.addon.store.events()]


async def _proxy_with(tmp_path: Path, entries: list[Entry], **options: object) -> AsyncIterator[Proxy]:
    if entries:
        async with Store.in_dir(tmp_path) as store:
            await store.import_entries("corp", entries)
    addon = Linkwarn()
    options.setdefault("linkwarn_secret", "s" * 32)
    with taddons.context(addon) as tctx:
        tctx.configure(addon, linkwarn_data_dir=str(tmp_path), **options)
        addon.running()
        await addon.ready.wait()
        yield Proxy(addon, tctx, tmp_path)
        await addon.done()


@pytest.fixture
async def proxy(tmp_path: Path) -> AsyncIterator[Proxy]:
    async for opened in _proxy_with(tmp_path, ENTRIES):
        yield opened


async def test_navigation_to_a_warn_entry_gets_the_page(proxy: Proxy) -> None:
    flow = await proxy.request("https://www.leak.test/inbox?id=1", headers=NAVIGATE)
    assert flow.response is not None
    assert flow.response.status_code == 403
    assert flow.response.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in flow.response.headers["content-security-policy"]
    text = flow.response.get_text() or ""
    assert "Leaked mail &lt;archive&gt;" in text
    assert "/__linkwarn/proceed" in text
    assert flow.metadata[METADATA_KEY]["action"] == "warn"
    assert await proxy.events() == [("warning", "leak.test/")]


async def test_block_entry_page_has_no_proceed(proxy: Proxy) -> None:
    flow = await proxy.request("http://mirror.test/film.mkv", headers={"accept": "text/html,*/*"})
    assert flow.response is not None
    assert "This page is blocked" in (flow.response.get_text() or "")
    assert "/__linkwarn/proceed" not in (flow.response.get_text() or "")
    assert await proxy.events() == [("block", "mirror.test/")]


@pytest.mark.parametrize(
    "headers",
    [
        {"sec-fetch-dest": "image", "sec-fetch-mode": "no-cors"},
        {"sec-fetch-dest": "script"},
        {"sec-fetch-dest": "empty", "sec-fetch-mode": "cors"},
        {"sec-fetch-dest": "iframe", "sec-fetch-mode": "navigate"},
        {"accept": "*/*"},
    ],
)
async def test_subresources_get_a_short_403(proxy: Proxy, headers: dict[str, str]) -> None:
    flow = await proxy.request("https://leak.test/pixel.png", headers=headers)
    assert flow.response is not None
    assert flow.response.status_code == 403
    assert flow.response.headers["x-linkwarn"] == "warn; entry=leak.test/"
    assert flow.response.headers["content-type"].startswith("text/plain")
    assert "<html" not in (flow.response.get_text() or "")


async def test_unlisted_allowed_and_audited_pass(proxy: Proxy) -> None:
    for url in ("https://clean.test/", "https://press.leak.test/story", "https://watch.test/x"):
        flow = await proxy.request(url, headers=NAVIGATE)
        assert flow.response is None, url
    assert (await proxy.request("https://press.leak.test/")).metadata[METADATA_KEY]["action"] == "allow"
    assert METADATA_KEY not in (await proxy.request("https://clean.test/")).metadata
    # Only the audit hit is logged: unlisted and allowed traffic never is.
    assert await proxy.events() == [("audit", "watch.test/")]


async def test_more_specific_block_under_a_warn_domain(proxy: Proxy) -> None:
    flow = await proxy.request("https://leak.test/worse/file", headers=NAVIGATE)
    assert flow.response is not None
    assert "This page is blocked" in (flow.response.get_text() or "")


async def test_websocket_upgrade_to_a_listed_url_is_refused(proxy: Proxy) -> None:
    flow = await proxy.request(
        "https://leak.test/socket", headers={"upgrade": "websocket", "connection": "Upgrade", **NAVIGATE}
    )
    assert flow.response is not None
    assert flow.response.status_code == 403
    assert "WebSocket refused" in (flow.response.get_text() or "")


async def test_host_header_naming_a_listed_host_is_caught(proxy: Proxy) -> None:
    flow = proxy.flow("http://203.0.113.9/", headers=NAVIGATE)
    flow.request.headers["host"] = "mirror.test"
    await _run(proxy.addon.request(flow))
    assert flow.response is not None
    assert flow.response.status_code == 403


async def test_redirect_to_a_listed_url_is_replaced(proxy: Proxy) -> None:
    flow = proxy.flow("https://short.test/abc", headers=NAVIGATE)
    await _run(proxy.addon.request(flow))
    assert flow.response is None
    flow.response = http.Response.make(302, b"", {"location": "http://mirror.test/film"})
    await _run(proxy.addon.response(flow))
    assert flow.response.status_code == 403
    assert "mirror.test/film" in (flow.response.get_text() or "")
    relative = proxy.flow("https://mirror-free.test/a", headers=NAVIGATE)
    relative.response = http.Response.make(301, b"", {"location": "/b"})
    await _run(proxy.addon.response(relative))
    assert relative.response.status_code == 301


async def test_connect_to_an_ignored_listed_host_is_refused(proxy: Proxy) -> None:
    proxy.tctx.options.ignore_hosts = [r"^mirror\.test:443$", r"^clean\.test"]
    flow = proxy.flow("https://mirror.test:443/", method="CONNECT")
    flow.request = http.Request.make("CONNECT", "http://mirror.test:443/")
    flow.request.host, flow.request.port = "mirror.test", 443
    await proxy.addon.http_connect(flow)
    assert flow.response is not None
    assert flow.response.status_code == 403
    clean = proxy.flow("https://clean.test/")
    clean.request.host, clean.request.port = "clean.test", 443
    await proxy.addon.http_connect(clean)
    assert clean.response is None
    # An intercepted listed host: the CONNECT passes, the requests inside get the page.
    intercepted = proxy.flow("https://leak.test/")
    intercepted.request.host, intercepted.request.port = "leak.test", 443
    await proxy.addon.http_connect(intercepted)
    assert intercepted.response is None
    assert ("refused", "mirror.test/") in await proxy.events()


def _form(token: str, url: str, **extra: str) -> bytes:
    return urlencode({"token": token, "url": url, **extra}).encode()


def _token(proxy: Proxy, client: str = "addr:127.0.0.1", expires: float | None = None) -> str:
    from blocklists import key_of

    when = int(expires if expires is not None else time.time() + 600)
    return mint(proxy.addon.secret, ProceedToken(client, key_of("leak.test/"), when))


async def test_proceed_sets_a_pass_that_lets_the_client_through(proxy: Proxy) -> None:
    post_headers = {"content-type": "application/x-www-form-urlencoded", "origin": "https://leak.test",
                    "sec-fetch-site": "same-origin"}  # fmt: skip
    post = await proxy.request(
        "https://leak.test/__linkwarn/proceed", method="POST", headers=post_headers,
        body=_form(_token(proxy), "https://leak.test/inbox"),
    )  # fmt: skip
    assert post.response is not None
    assert post.response.status_code == 303
    assert post.response.headers["location"] == "https://leak.test/inbox"
    cookie = post.response.headers["set-cookie"]
    assert cookie.startswith(f"{PASS_COOKIE}=")
    assert "HttpOnly" in cookie
    assert "Secure" in cookie
    pass_token = cookie.split(";")[0].split("=", 1)[1]

    through = await proxy.request(
        "https://leak.test/inbox", headers={**NAVIGATE, "cookie": f"session=abc; {PASS_COOKIE}={pass_token}"}
    )
    assert through.response is None
    assert through.request.headers["cookie"] == "session=abc"  # the pass never goes upstream
    assert through.metadata[METADATA_KEY]["proceeded"] is True
    # The pass covers the entry, not a more specific block under it.
    worse = await proxy.request(
        "https://leak.test/worse/x", headers={**NAVIGATE, "cookie": f"{PASS_COOKIE}={pass_token}"}
    )
    assert worse.response is not None
    assert worse.response.status_code == 403
    assert ("proceed", "leak.test/") in await proxy.events()


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("forged", "bad signature"),
        ("expired", "expired"),
        ("other-client", "another client"),
        ("cross-site", "sent from another site"),
        ("cross-site-origin-only", "sent from another site"),
        ("null-origin-no-fetch-metadata", "sent from another site"),
        ("other-entry", "does not cover that address"),
        ("other-host", "for another site"),
        ("block-entry", "does not cover that address"),
    ],
)
async def test_proceed_refusals(proxy: Proxy, case: str, message: str) -> None:
    token = _token(proxy)
    url = "https://leak.test/inbox"
    host = "https://leak.test"
    headers = {"content-type": "application/x-www-form-urlencoded", "sec-fetch-site": "same-origin"}
    if case == "forged":
        token = mint(b"not the proxy's secret at all!!!", ProceedToken("addr:127.0.0.1", b"k" * 32, 2**40))
    elif case == "expired":
        token = _token(proxy, expires=time.time() - 1)
    elif case == "other-client":
        token = _token(proxy, client="addr:10.9.9.9")
    elif case == "cross-site":
        headers.update({"sec-fetch-site": "cross-site", "origin": "https://attacker.test"})
    elif case == "cross-site-origin-only":
        del headers["sec-fetch-site"]
        headers["origin"] = "https://attacker.test"
    elif case == "null-origin-no-fetch-metadata":
        del headers["sec-fetch-site"]
        headers["origin"] = "null"
    elif case == "other-entry":
        url = "https://clean.test/"
    elif case == "other-host":
        host = "https://sub.leak.test"
    elif case == "block-entry":
        url = "https://mirror.test/"
    flow = await proxy.request(
        f"{host}/__linkwarn/proceed", method="POST", headers=headers, body=_form(token, url)
    )
    assert flow.response is not None
    assert flow.response.status_code == 403
    assert message in (flow.response.get_text() or "")
    assert "set-cookie" not in flow.response.headers


async def test_chromium_same_origin_post_with_a_null_origin_is_accepted(proxy: Proxy) -> None:
    # What Chromium sends for the page's own form under Referrer-Policy: no-referrer.
    headers = {
        "content-type": "application/x-www-form-urlencoded",
        "sec-fetch-site": "same-origin",
        "origin": "null",
    }
    flow = await proxy.request(
        "https://leak.test/__linkwarn/proceed", method="POST", headers=headers,
        body=_form(_token(proxy), "https://leak.test/inbox"),
    )  # fmt: skip
    assert flow.response is not None
    assert flow.response.status_code == 303


async def test_forged_pass_cookie_still_gets_the_page(proxy: Proxy) -> None:
    forged = mint(b"y" * 32, ProceedToken("addr:127.0.0.1", b"\x00" * 32, 2**40))
    flow = await proxy.request(
        "https://leak.test/", headers={**NAVIGATE, "cookie": f"{PASS_COOKIE}={forged}"}
    )
    assert flow.response is not None
    assert flow.response.status_code == 403


async def test_report_is_stored_with_its_comment(proxy: Proxy) -> None:
    flow = await proxy.request(
        "https://leak.test/__linkwarn/report", method="POST",
        headers={"content-type": "application/x-www-form-urlencoded", "origin": "https://leak.test"},
        body=_form(_token(proxy), "https://leak.test/", comment="This is our press page <b>"),
    )  # fmt: skip
    assert flow.response is not None
    assert flow.response.status_code == 200
    assert proxy.addon.events is not None
    assert proxy.addon.store is not None
    await proxy.addon.events.flush()
    (report,) = await proxy.addon.store.events(kind="report")
    assert report.detail == "This is our press page <b>"
    assert report.url == "https://leak.test/"


async def test_own_endpoints_refuse_get_and_unknown_paths(proxy: Proxy) -> None:
    assert (await proxy.request("https://leak.test/__linkwarn/proceed")).response.status_code == 405  # type: ignore[union-attr]
    assert (await proxy.request("https://x.test/__linkwarn/nope")).response.status_code == 404  # type: ignore[union-attr]


async def test_proceed_off_everywhere(tmp_path: Path) -> None:
    async for proxy in _proxy_with(tmp_path, ENTRIES, linkwarn_proceed=False):
        flow = await proxy.request("https://leak.test/", headers=NAVIGATE)
        assert "/__linkwarn/proceed" not in (flow.response.get_text() or "")  # type: ignore[union-attr]


async def test_events_survive_shutdown_and_go_to_jsonl(tmp_path: Path) -> None:
    jsonl = tmp_path / "events.jsonl"
    async for proxy in _proxy_with(tmp_path, ENTRIES, linkwarn_events_jsonl=str(jsonl)):
        await proxy.request("https://leak.test/", headers=NAVIGATE)
        await proxy.request("https://watch.test/")
    async with Store.in_dir(tmp_path) as store:
        assert [e.kind for e in await store.events()] == ["warning", "audit"]
    assert [line.count('"kind"') for line in jsonl.read_text().splitlines()] == [1, 1]


async def test_sample_list_loads_into_an_empty_store(tmp_path: Path) -> None:
    async for proxy in _proxy_with(tmp_path, []):
        flow = await proxy.request("https://leak.example/", headers=NAVIGATE)
        assert flow.response is not None
        assert "Sample entry" in (flow.response.get_text() or "")


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("linkwarn_proceed_ttl", "soon", "linkwarn_proceed_ttl: invalid duration"),
        ("linkwarn_proceed_ttl", "0s", "longer than zero"),
        ("linkwarn_secret", "short", "at least 16 characters"),
        ("linkwarn_fail_mode", "sideways", "sideways"),
    ],
)
async def test_bad_options_are_refused(tmp_path: Path, option: str, value: str, message: str) -> None:
    addon = Linkwarn()
    with taddons.context(addon) as tctx, pytest.raises(exceptions.OptionsError, match=message):
        tctx.configure(addon, **{option: value})


async def test_unavailable_store_fails_open_or_closed(tmp_path: Path) -> None:
    bad = tmp_path / "not-a-dir"
    bad.write_text("a file where the data directory should be")
    for mode, expect in (("open", None), ("closed", 503)):
        addon = Linkwarn()
        with taddons.context(addon) as tctx:
            tctx.configure(
                addon, linkwarn_data_dir=str(bad), linkwarn_fail_mode=mode, linkwarn_secret="s" * 32
            )
            addon.running()
            await addon.ready.wait()
            assert addon.unavailable
            flow = tflow.tflow()
            flow.request = http.Request.make("GET", "https://mirror.test/", b"", NAVIGATE)
            await _run(addon.request(flow))
            assert (flow.response.status_code if flow.response else None) == expect
            await addon.done()


async def test_odd_requests_never_crash(proxy: Proxy) -> None:
    for url in (
        "http://[::1]/",
        "http://0x7f.1/",
        "http://a.b.test/%%%/%2e%2e/%2F",
        "http://mirror.test:65535/" + "x" * 9000,
    ):
        await proxy.request(url, headers=NAVIGATE)
    flow = await proxy.request("http://MIRROR.test./%66ilm", headers=NAVIGATE)
    assert flow.response is not None
    assert flow.response.status_code == 403


async def test_requests_are_decided_while_a_large_index_is_still_building(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from blocklists import Checker

    release = asyncio.Event()
    original = Checker.reload

    async def slow_reload(self: Checker) -> Any:
        await release.wait()
        return await original(self)

    monkeypatch.setattr(Checker, "reload", slow_reload)
    async with Store.in_dir(tmp_path) as store:
        await store.import_entries("corp", ENTRIES)
    addon = Linkwarn()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, linkwarn_data_dir=str(tmp_path), linkwarn_secret="s" * 32)
        addon.running()
        await addon.ready.wait()
        assert addon.checker is not None
        assert addon.checker.index is None
        listed, clean = tflow.tflow(), tflow.tflow()
        listed.request = http.Request.make("GET", "https://mirror.test/film", b"", NAVIGATE)
        clean.request = http.Request.make("GET", "https://clean.test/", b"", NAVIGATE)
        await _run(addon.request(listed))
        await _run(addon.request(clean))
        assert listed.response is not None
        assert listed.response.status_code == 403
        assert clean.response is None
        release.set()
        await addon._loading  # type: ignore[misc]
        assert addon.checker.index is not None
        assert len(addon.checker.index) == len(ENTRIES)
        await addon.done()


async def test_a_fleet_sharing_the_secret_accepts_each_others_passes(tmp_path: Path) -> None:
    headers = {"content-type": "application/x-www-form-urlencoded", "sec-fetch-site": "same-origin"}
    async for first in _proxy_with(tmp_path / "a", ENTRIES):
        post = await first.request(
            "https://leak.test/__linkwarn/proceed", method="POST", headers=headers,
            body=_form(_token(first), "https://leak.test/inbox"),
        )  # fmt: skip
        assert post.response is not None
        cookie = post.response.headers["set-cookie"].split(";")[0]
    for secret, passes in (("s" * 32, True), ("another fleet's secret", False)):
        async for other in _proxy_with(tmp_path / secret[:3], ENTRIES, linkwarn_secret=secret):
            flow = await other.request("https://leak.test/inbox", headers={**NAVIGATE, "cookie": cookie})
            assert (flow.response is None) is passes
