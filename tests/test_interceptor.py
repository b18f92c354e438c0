"""The interceptor's hooks, called as mitmproxy calls them inside its test context, over real stores."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from mitmproxy import exceptions, http
from mitmproxy.test import taddons

from blocklists import Action, Checker, Entry, Store, key_of
from proxy_addon.answers import METADATA_KEY, Decision
from proxy_addon.interceptor import Linkwarn
from proxy_addon.origin import CODE_PARAM, add_code
from proxy_addon.passes import PASS_COOKIE
from proxy_addon.policy import Answer
from proxy_addon.runtime import Runtime
from proxy_addon.tokens import Purpose, Token, mint

from .support.hooks import NAVIGATE, OWN, Proxy, proxy_with, query_value, run_hook, soon

ENTRIES = [
    Entry.listing("leak.test/", Action.WARN, reason="Leaked mail <archive>", source="corp"),
    Entry.listing("mirror.test/", Action.BLOCK, reason="Unreleased films", source="corp"),
    Entry.listing("press.leak.test/", Action.ALLOW, source="corp"),
    Entry.listing("watch.test/", Action.AUDIT, source="corp"),
    Entry.listing("leak.test/worse/", Action.BLOCK, source="corp"),
    Entry.listing("other-leak.test/", Action.WARN, source="corp"),
]


@pytest.fixture
async def proxy(tmp_path: Path) -> AsyncIterator[Proxy]:
    async with proxy_with(tmp_path, ENTRIES) as opened:
        yield opened


def decision(flow: http.HTTPFlow) -> Decision:
    found = flow.metadata[METADATA_KEY]
    assert isinstance(found, Decision)
    return found


# -- what each verdict gets -----------------------------------------------------------


async def test_navigation_to_a_listed_url_is_sent_to_the_own_origin(proxy: Proxy) -> None:
    flow = await proxy.request("https://www.leak.test/inbox?id=1", headers=NAVIGATE)
    assert flow.response is not None
    assert flow.response.status_code == 303
    location = flow.response.headers["location"]
    assert location.startswith(f"https://{OWN}/warning?t=")
    assert flow.response.headers["x-linkwarn"] == "warn; entry=leak.test/"
    assert flow.response.content == b""  # nothing of the page, and no token, on the listed origin
    assert decision(flow).answer is Answer.PAGE
    plain = await proxy.request("http://mirror.test/film", headers={"accept": "text/html,*/*"})
    assert plain.response is not None
    # The warning is on https even for a plain-HTTP site: there the browser tells a frame from a page.
    assert plain.response.headers["location"].startswith(f"https://{OWN}/warning?t=")
    # Shown is what gets logged, not redirected: nothing yet.
    assert await proxy.kinds() == []


@pytest.mark.parametrize(
    "headers",
    [
        {"sec-fetch-dest": "image", "sec-fetch-mode": "no-cors"},
        {"sec-fetch-dest": "script"},
        {"sec-fetch-dest": "empty", "sec-fetch-mode": "cors", "accept": "text/html"},
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
    assert decision(await proxy.request("https://press.leak.test/")).action == "allow"
    assert METADATA_KEY not in (await proxy.request("https://clean.test/")).metadata
    # Only the audit hit is logged: unlisted and allowed traffic never is.
    assert await proxy.kinds() == [("audit", "watch.test/")]


async def test_more_specific_block_under_a_warn_domain(proxy: Proxy) -> None:
    flow = await proxy.request("https://leak.test/worse/file", headers=NAVIGATE)
    assert decision(flow).action == "block"


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
    await proxy.send(flow)
    assert flow.response is not None
    assert decision(flow).action == "block"


async def test_an_allowed_name_never_excuses_a_listed_one(proxy: Proxy) -> None:
    # The URL names an allowed host, the Host header a blocked one: the strictest wins.
    flow = proxy.flow("http://press.leak.test/", headers=NAVIGATE)
    flow.request.headers["host"] = "mirror.test"
    await proxy.send(flow)
    assert flow.response is not None
    assert decision(flow).action == "block"


async def test_redirect_to_a_listed_url_is_replaced(proxy: Proxy) -> None:
    flow = await proxy.request("https://short.test/abc", headers=NAVIGATE)
    assert flow.response is None
    flow.response = http.Response.make(302, b"", {"location": "http://mirror.test/film"})
    await run_hook(proxy.addon.response(flow))
    assert flow.response.status_code == 303
    assert flow.response.headers["location"].startswith(f"https://{OWN}/warning?t=")
    relative = proxy.flow("https://mirror-free.test/a", headers=NAVIGATE)
    relative.response = http.Response.make(301, b"", {"location": "/b"})
    await run_hook(proxy.addon.response(relative))
    assert relative.response.status_code == 301


async def test_a_sites_own_linkwarn_path_reaches_the_site_untouched(proxy: Proxy) -> None:
    for url in ("https://clean.test/__linkwarn/proceed", "http://example.test/__linkwarn/report?x=1"):
        flow = await proxy.request(url, method="POST", headers={"content-type": "text/plain"}, body=b"hi")
        assert flow.response is None, url
        assert flow.request.url == url
        assert flow.request.content == b"hi"


# -- Proceed: the code, the pass ------------------------------------------------------


async def test_proceed_gives_a_pass_that_lets_the_client_through(proxy: Proxy) -> None:
    cookie, clean_url = await proxy.pass_cookie("https://leak.test/inbox?id=7")
    assert clean_url == "https://leak.test/inbox?id=7"  # the code is gone from the address
    assert cookie.startswith(f"{PASS_COOKIE}=")
    through = await proxy.request(clean_url, headers={**NAVIGATE, "cookie": f"session=abc; {cookie}"})
    assert through.response is None
    assert through.request.headers["cookie"] == "session=abc"  # the pass never goes upstream
    assert decision(through).proceeded is True
    # The pass covers the entry's other pages, not a more specific block under it.
    assert (
        await proxy.request("https://leak.test/other", headers={**NAVIGATE, "cookie": cookie})
    ).response is None
    worse = await proxy.request("https://leak.test/worse/x", headers={**NAVIGATE, "cookie": cookie})
    assert worse.response is not None
    assert decision(worse).action == "block"
    # ... nor another entry.
    other = await proxy.request("https://other-leak.test/", headers={**NAVIGATE, "cookie": cookie})
    assert other.response is not None
    assert ("proceed", "leak.test/") in await proxy.kinds()


async def test_the_pass_cookie_is_http_only_and_scoped_to_the_entry(proxy: Proxy) -> None:
    post = await proxy.proceed("https://www.leak.test/a")
    assert post.response is not None
    consumed = await proxy.request(post.response.headers["location"], headers=NAVIGATE)
    assert consumed.response is not None
    attributes = [part.strip() for part in consumed.response.headers["set-cookie"].split(";")]
    assert {"HttpOnly", "Secure", "SameSite=Lax", "Path=/", "Domain=leak.test"} <= set(attributes)
    assert "Max-Age=900" in attributes


async def test_a_code_works_once(proxy: Proxy) -> None:
    post = await proxy.proceed("https://leak.test/once")
    assert post.response is not None
    with_code = post.response.headers["location"]
    first = await proxy.request(with_code, headers=NAVIGATE)
    assert first.response is not None
    assert "set-cookie" in first.response.headers
    again = await proxy.request(with_code, headers=NAVIGATE)
    assert again.response is not None
    assert "set-cookie" not in again.response.headers
    assert again.response.headers["location"].startswith(f"https://{OWN}/warning")
    assert CODE_PARAM not in again.request.path  # consumed either way
    refused = [e.detail for e in await proxy.events() if e.kind == "refused"]
    assert refused == ["proceed code refused: already used"]


def _token(purpose: Purpose, entry: str = "leak.test/", client: str = "addr:127.0.0.1", **extra: Any) -> str:
    fields: dict[str, Any] = {"expires_at": soon(86400)} | extra
    return mint(b"s" * 32, Token(purpose, client, key_of(entry), nonce="n1", **fields))


@pytest.mark.parametrize(
    ("case", "code", "message"),
    [
        ("forged", mint(b"x" * 32, Token(Purpose.CODE, "addr:127.0.0.1", key_of("leak.test/"), soon(86400),
                                         nonce="a")), "bad signature"),
        ("expired", _token(Purpose.CODE, expires_at=soon(-5)), "expired"),
        ("other client", _token(Purpose.CODE, client="addr:10.9.9.9"), "another client"),
        ("other entry", _token(Purpose.CODE, entry="other-leak.test/"), "another entry"),
        ("report token", _token(Purpose.REPORT), "not a code token"),
        ("pass token", _token(Purpose.PASS), "not a code token"),
        ("ticket", _token(Purpose.TICKET), "not a code token"),
        ("junk", "%0d%0aSet-Cookie:%20x=1", "malformed"),
    ],
)  # fmt: skip
async def test_bad_codes_are_refused_and_logged(proxy: Proxy, case: str, code: str, message: str) -> None:
    flow = await proxy.request(add_code("https://leak.test/inbox", code), headers=NAVIGATE)
    assert flow.response is not None
    assert "set-cookie" not in flow.response.headers
    assert flow.response.headers["location"].startswith(f"https://{OWN}/warning")
    assert query_value(flow.response.headers["location"], "t")
    (refusal,) = [e for e in await proxy.events() if e.kind == "refused"]
    assert refusal.detail is not None
    assert message in refusal.detail


@pytest.mark.parametrize(
    "cookie",
    [
        _token(Purpose.PASS, client="addr:10.9.9.9"),
        _token(Purpose.PASS, entry="other-leak.test/"),
        _token(Purpose.PASS, expires_at=soon(-1)),
        _token(Purpose.REPORT),
        _token(Purpose.CODE),
        _token(Purpose.PROCEED),
        _token(Purpose.TICKET),
        mint(b"y" * 32, Token(Purpose.PASS, "addr:127.0.0.1", key_of("leak.test/"), soon(86400))),
        "junk",
        "",
    ],
    ids=[
        "other-client",
        "other-entry",
        "expired",
        "report",
        "code",
        "proceed",
        "ticket",
        "forged",
        "junk",
        "empty",
    ],
)
async def test_bad_passes_get_the_warning_and_are_never_forwarded(proxy: Proxy, cookie: str) -> None:
    flow = await proxy.request(
        "https://leak.test/", headers={**NAVIGATE, "cookie": f"{PASS_COOKIE}={cookie}; a=b"}
    )
    assert flow.response is not None
    assert flow.response.status_code == 303  # the warning again: no loop, and no pass
    assert PASS_COOKIE not in flow.request.headers.get("cookie", "")


async def test_pass_cookies_are_stripped_from_unlisted_requests_too(proxy: Proxy) -> None:
    flow = await proxy.request("https://clean.test/", headers={"cookie": f"{PASS_COOKIE}=x; {PASS_COOKIE}=y"})
    assert flow.response is None
    assert "cookie" not in flow.request.headers


async def test_a_pass_ends_at_its_expiry(tmp_path: Path) -> None:
    async with proxy_with(tmp_path, ENTRIES, linkwarn_proceed_ttl="2s") as proxy:
        cookie, url = await proxy.pass_cookie("https://leak.test/brief")
        assert (await proxy.request(url, headers={**NAVIGATE, "cookie": cookie})).response is None
        await asyncio.sleep(2.1)
        late = await proxy.request(url, headers={**NAVIGATE, "cookie": cookie})
        assert late.response is not None
        assert late.response.status_code == 303


async def test_a_code_for_an_unlisted_url_is_left_to_that_site(proxy: Proxy) -> None:
    url = f"https://clean.test/page?{CODE_PARAM}=theirs&x=1"
    flow = await proxy.request(url, headers=NAVIGATE)
    assert flow.response is None
    assert flow.request.url == url


async def test_a_fleet_sharing_the_secret_accepts_each_others_passes(tmp_path: Path) -> None:
    async with proxy_with(tmp_path / "a", ENTRIES) as first:
        cookie, url = await first.pass_cookie("https://leak.test/inbox")
    secret_file = tmp_path / "fleet.secret"
    secret_file.write_text("s" * 32 + "\n")
    for options, passes in (
        ({"linkwarn_secret": "s" * 32}, True),
        ({"linkwarn_secret": "", "linkwarn_secret_file": str(secret_file)}, True),
        ({"linkwarn_secret": "another fleet's secret"}, False),
        ({"linkwarn_secret": ""}, False),  # the data directory's own
    ):
        async with proxy_with(tmp_path / str(len(str(options)) + passes), ENTRIES, **options) as other:
            flow = await other.request(url, headers={**NAVIGATE, "cookie": cookie})
            assert (flow.response is None) is passes, options


async def test_the_fleet_secret_can_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LINKWARN_SECRET", "e" * 40)
    async with proxy_with(tmp_path, ENTRIES, linkwarn_secret="") as proxy:
        assert proxy.runtime.secret == b"e" * 40
        assert not (tmp_path / "proceed.key").exists()
    monkeypatch.setenv("LINKWARN_SECRET", "short")
    addon = Linkwarn()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, linkwarn_data_dir=str(tmp_path))
        addon.running()
        await addon.runtime.opened()
        assert addon.runtime.unavailable is not None
        assert "LINKWARN_SECRET must be at least 16 characters" in addon.runtime.unavailable
        await addon.done()


# -- what else the addon does -----------------------------------------------------------


async def test_no_header_carries_cr_or_lf(proxy: Proxy) -> None:
    for url in (
        "https://leak.test/a%0d%0aSet-Cookie:%20x=1",
        "https://leak.test/\u00e4\r\nx",
        "https://leak.test/ a",
    ):
        flow = proxy.flow("https://leak.test/", headers=NAVIGATE)
        flow.request.path = url.split("leak.test", 1)[1]
        await proxy.send(flow)
        assert flow.response is not None
        for name, value in flow.response.headers.items():
            assert "\r" not in value
            assert "\n" not in value, (name, value)


async def test_proceed_off_everywhere(tmp_path: Path) -> None:
    async with proxy_with(tmp_path, ENTRIES, linkwarn_proceed=False) as proxy:
        page = await proxy.warning_page("https://leak.test/")
        assert 'action="/proceed"' not in (page.response.get_text() or "")  # type: ignore[union-attr]
        # A pass minted while proceeding was allowed is worthless now.
        cookie = _token(Purpose.PASS)
        flow = await proxy.request(
            "https://leak.test/", headers={**NAVIGATE, "cookie": f"{PASS_COOKIE}={cookie}"}
        )
        assert flow.response is not None


async def test_events_survive_shutdown_and_go_to_jsonl(tmp_path: Path) -> None:
    jsonl = tmp_path / "events.jsonl"
    async with proxy_with(tmp_path, ENTRIES, linkwarn_events_jsonl=str(jsonl)) as proxy:
        await proxy.warning_page("https://leak.test/")
        await proxy.request("https://watch.test/")
    async with Store.in_dir(tmp_path) as store:
        assert [e.kind for e in await store.events()] == ["warning", "audit"]
    assert [line.count('"kind"') for line in jsonl.read_text().splitlines()] == [1, 1]


async def test_sample_list_loads_into_an_empty_store(tmp_path: Path) -> None:
    async with proxy_with(tmp_path, []) as proxy:
        page = await proxy.warning_page("https://leak.example/")
        assert "Sample entry" in (page.response.get_text() or "")  # type: ignore[union-attr]


async def test_unavailable_store_fails_open_or_closed(tmp_path: Path) -> None:
    bad = tmp_path / "not-a-dir"
    bad.write_text("a file where the data directory should be")
    for mode, expect in (("open", None), ("closed", 503)):
        async with proxy_with(bad, [], linkwarn_fail_mode=mode) as proxy:
            assert proxy.runtime.unavailable
            flow = await proxy.request("https://mirror.test/", headers=NAVIGATE)
            assert (flow.response.status_code if flow.response else None) == expect


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
    assert decision(flow).action == "block"


async def test_requests_are_decided_while_a_large_index_is_still_building(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = asyncio.Event()
    original = Checker.reload

    async def slow_reload(self: Checker) -> Any:
        await release.wait()
        return await original(self)

    monkeypatch.setattr(Checker, "reload", slow_reload)
    async with Store.in_dir(tmp_path) as store:
        await store.import_entries("corp", ENTRIES)
    runtime = Runtime()
    addon = Linkwarn(runtime)
    with taddons.context(addon) as tctx:
        tctx.configure(addon, linkwarn_data_dir=str(tmp_path), linkwarn_secret="s" * 32, linkwarn_api_port=0)
        addon.running()
        await runtime.ready.wait()
        assert runtime.checker is not None
        assert runtime.checker.index is None
        listed = Proxy.flow("https://mirror.test/film", headers=NAVIGATE)
        clean = Proxy.flow("https://clean.test/", headers=NAVIGATE)
        await run_hook(addon.requestheaders(listed))
        await run_hook(addon.requestheaders(clean))
        assert listed.response is not None
        assert listed.response.status_code == 303
        assert clean.response is None
        release.set()
        await runtime.opened()
        assert runtime.checker.index is not None
        assert len(runtime.checker.index) == len(ENTRIES)
        await addon.done()


async def test_an_import_by_another_process_is_enforced_within_a_second(proxy: Proxy) -> None:
    assert (await proxy.request("https://late.test/", headers=NAVIGATE)).response is None
    async with Store.in_dir(proxy.data_dir) as other:  # another process's connection
        await other.import_entries("later", [Entry.listing("late.test/", Action.BLOCK)])
    deadline = time.monotonic() + 1.0
    while (await proxy.request("https://late.test/", headers=NAVIGATE)).response is None:
        assert time.monotonic() < deadline, "not enforced within a second"
        await asyncio.sleep(0.05)
    async with Store.in_dir(proxy.data_dir) as other:
        await other.remove_source("later")
    deadline = time.monotonic() + 1.0
    while (await proxy.request("https://late.test/", headers=NAVIGATE)).response is not None:
        assert time.monotonic() < deadline, "still enforced a second after removal"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("linkwarn_proceed_ttl", "soon", "linkwarn_proceed_ttl: invalid duration"),
        ("linkwarn_proceed_ttl", "0s", "longer than zero"),
        ("linkwarn_secret", "short", "at least 16 characters"),
        ("linkwarn_fail_mode", "sideways", "sideways"),
        ("linkwarn_own_host", "not a host", "linkwarn_own_host must be a host name"),
        ("linkwarn_contact", "call Bob", "linkwarn_contact must be an e-mail address"),
        ("linkwarn_api_port", 65536, "linkwarn_api_port"),
    ],
)
async def test_bad_options_are_refused(option: str, value: object, message: str) -> None:
    addon = Linkwarn()
    with taddons.context(addon) as tctx, pytest.raises(exceptions.OptionsError, match=message):
        tctx.configure(addon, **{option: value})


async def test_a_bad_secret_file_rolls_the_change_back(proxy: Proxy, tmp_path: Path) -> None:
    missing = tmp_path / "missing.secret"
    with pytest.raises(exceptions.OptionsError, match=r"missing\.secret"):
        proxy.tctx.configure(proxy.addon, linkwarn_secret="", linkwarn_secret_file=str(missing))
    assert proxy.runtime.secret == b"s" * 32


@pytest.mark.parametrize(
    ("status", "headers"),
    [
        (302, {"location": "/\\mirror.test/film"}),  # browsers read \ as /: protocol-relative
        (301, {"location": "//mirror.test/film"}),
        (307, {"location": "  http://mirror.test/film \t"}),
        (308, {"location": "http:\\\\mirror.test\\film"}),
        (303, {"location": "HTTP://MIRROR.TEST./film"}),
        (300, {"location": "http://mirror.test/"}),
        (201, {"location": "http://mirror.test/new"}),
        (200, {"refresh": "0; url=http://mirror.test/film"}),
        (200, {"refresh": "5;URL='http://mirror.test/film'"}),
        (302, {"location": "/ok", "refresh": "1, http://mirror.test/"}),
    ],
)
async def test_redirects_are_read_as_browsers_read_them(
    proxy: Proxy, status: int, headers: dict[str, str]
) -> None:
    flow = await proxy.request("https://short.test/abc", headers=NAVIGATE)
    assert flow.response is None
    flow.response = http.Response.make(status, b"", headers)
    await run_hook(proxy.addon.response(flow))
    assert flow.response.status_code == 303
    assert flow.response.headers["location"].startswith(f"https://{OWN}/warning?t=")


@pytest.mark.parametrize(
    "headers", [{"location": "/\\clean.test/x"}, {"location": "mailto:a@mirror.test"}, {"refresh": "0"}]
)
async def test_redirects_elsewhere_are_left_alone(proxy: Proxy, headers: dict[str, str]) -> None:
    flow = await proxy.request("https://short.test/abc", headers=NAVIGATE)
    flow.response = http.Response.make(302, b"", headers)
    await run_hook(proxy.addon.response(flow))
    assert flow.response.status_code == 302


async def test_a_streamed_upload_to_a_listed_host_is_answered_before_any_byte_goes_up(proxy: Proxy) -> None:
    flow = proxy.flow("https://mirror.test/upload", method="POST", headers={"content-length": "10000000"})
    flow.request.stream = True  # as mitmproxy's stream_large_bodies sets it, before linkwarn's hook
    await run_hook(proxy.addon.requestheaders(flow))
    # mitmproxy cannot answer a streamed request: it is cut off, and nothing was sent on.
    assert flow.response is None
    assert flow.error is not None
    assert not flow.live
    small = proxy.flow(
        "https://mirror.test/upload", method="POST", headers={"content-length": "10"}, body=b"x" * 10
    )
    await run_hook(proxy.addon.requestheaders(small))
    assert small.response is not None
    assert small.response.status_code == 403


@pytest.mark.parametrize(
    "url",
    [
        "http://mirror.test:abc/x",  # a junk port: decided on the host
        "http://mirror.test/" + "a/" * 40_000,  # too long: decided on the host and a path prefix
        "http://[2001:db8::1]/x",
    ],
)
async def test_doubt_is_decided_on_what_can_be_read(tmp_path: Path, url: str) -> None:
    entries = [*ENTRIES, Entry.listing("[2001:db8::1]/", Action.BLOCK)]
    async with proxy_with(tmp_path, entries) as proxy:
        flow = proxy.flow("http://placeholder.test/", headers=NAVIGATE)
        flow.request.url = url if "abc" not in url else "http://placeholder.test/x"
        if "abc" in url:
            flow.request.headers["host"] = "mirror.test:abc"
        await proxy.send(flow)
        assert flow.response is not None, url


async def test_what_cannot_be_decided_is_refused_when_failing_closed(tmp_path: Path) -> None:
    long_unlisted = "http://clean.test/" + "a/" * 40_000
    for mode, refused in (("open", False), ("closed", True)):
        async with proxy_with(tmp_path / mode, ENTRIES, linkwarn_fail_mode=mode) as proxy:
            flow = proxy.flow("http://clean.test/", headers=NAVIGATE)
            flow.request.url = long_unlisted
            await proxy.send(flow)
            assert (flow.response is not None) is refused, mode
            bad_host = proxy.flow("http://clean.test/", headers=NAVIGATE)
            bad_host.request.headers["host"] = "%2F.test"
            await proxy.send(bad_host)
            assert (bad_host.response is not None) is refused, mode
            plain = await proxy.request("http://clean.test/short", headers=NAVIGATE)
            assert plain.response is None
