"""The local API: in-process over the real addon and store, then over loopback against ``linkwarn run``."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import socket
import stat
import struct
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mitmproxy import exceptions
from mitmproxy.test import taddons

from blocklists import Action, Entry, Store, key_of
from blocklists.entry import host_marker
from proxy_addon.api import MAX_BODY, LocalApi, create_app
from proxy_addon.interceptor import Linkwarn
from proxy_addon.runtime import Runtime
from tests.support.hooks import proxy_with
from tests.support.servers import RunningProxy, free_port

ENTRIES = [
    Entry.listing("leak.test/", Action.WARN, reason="Leaked mail", source="corp"),
    Entry.listing("mirror.test/", Action.BLOCK, reason="Unreleased films", source="corp"),
    Entry.listing("press.leak.test/", Action.ALLOW, source="corp"),
    Entry.listing("watch.test/", Action.AUDIT, source="corp"),
]
TOKEN = "t" * 64
EXTENSION = {"origin": "chrome-extension://abcdefghijklmnopabcdefghijklmnop"}
DOCUMENT = json.loads(resources.files("proxy_addon").joinpath("openapi.json").read_text("utf-8"))


def conforms(body: Any, schema: str) -> None:
    """Validate *body* against a schema of the OpenAPI document, so the document cannot drift."""
    root = {"$ref": f"#/components/schemas/{schema}", "components": DOCUMENT["components"]}
    jsonschema.Draft202012Validator(root).validate(body)


class Api:
    def __init__(self, runtime: Runtime, client: httpx.AsyncClient) -> None:
        self.runtime, self.client = runtime, client

    async def events(self) -> list[tuple[str, str, str | None, str | None]]:
        assert self.runtime.events is not None
        assert self.runtime.store is not None
        await self.runtime.events.flush()
        return [(e.kind, e.client, e.expression, e.detail) for e in await self.runtime.store.events()]


async def _api(data_dir: Path, entries: list[Entry]) -> AsyncIterator[Api]:
    async with proxy_with(data_dir, entries, linkwarn_proceed_ttl="10m") as proxy:
        transport = httpx.ASGITransport(app=create_app(proxy.runtime, TOKEN))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8089") as client:
            yield Api(proxy.runtime, client)


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async for opened in _api(tmp_path, ENTRIES):
        yield opened


async def check(api: Api, *urls: object) -> list[dict[str, Any]]:
    response = await api.client.post("/v1/check", json={"urls": list(urls)})
    assert response.status_code == 200, response.text
    conforms(response.json(), "CheckResponse")
    results: list[dict[str, Any]] = response.json()["results"]
    return results


def error_of(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    conforms(response.json(), "Error")
    code: str = response.json()["error"]["code"]
    return code


# -- check ---------------------------------------------------------------------


async def test_check_answers_each_url_in_order(api: Api) -> None:
    warn, block, allow, audit, clean = await check(
        api,
        "https://WWW.Leak.test/inbox?id=1#top",
        "http://mirror.test/films/",
        "https://press.leak.test/",
        "http://watch.test/",
        "http://clean.test/",
    )
    assert warn["url"] == "https://WWW.Leak.test/inbox?id=1#top"
    assert warn["canonical"] == "https://www.leak.test/inbox?id=1"
    assert (warn["listed"], warn["action"], warn["entry"], warn["list"]) == (
        True,
        "warn",
        "leak.test/",
        "corp",
    )
    assert warn["reason"] == "Leaked mail"
    assert (warn["may_proceed"], warn["proceed_ttl_seconds"]) == (True, 600)
    assert (block["action"], block["may_proceed"], block["proceed_ttl_seconds"]) == ("block", False, None)
    assert (allow["listed"], allow["action"], allow["entry"]) == (False, "allow", "press.leak.test/")
    assert (audit["listed"], audit["action"]) == (True, "audit")
    assert (clean["listed"], clean["action"], clean["entry"], clean["canonical"]) == (
        False,
        None,
        None,
        "http://clean.test/",
    )


async def test_an_invalid_url_gets_an_error_in_its_own_result(api: Api) -> None:
    bad, good = await check(api, "http://[::1/", "http://mirror.test/")
    assert bad["error"]["code"] == "invalid_url"
    assert bad["canonical"] is None
    assert bad["listed"] is False
    assert good["action"] == "block"


async def test_check_takes_500_urls_and_refuses_501(api: Api) -> None:
    urls = [f"http://host{i}.test/" for i in range(499)] + ["http://mirror.test/x"]
    results = await check(api, *urls)
    assert len(results) == 500
    assert [r["action"] for r in results].count("block") == 1
    response = await api.client.post("/v1/check", json={"urls": [*urls, "http://one.more.test/"]})
    assert error_of(response, 413) == "too_many_items"
    assert "at most 500" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "status", "code", "names"),
    [
        (b'{"urls": ["http://a.test/",', 400, "malformed_json", "not valid JSON"),
        (b'["http://a.test/"]', 400, "invalid_request", "JSON object"),
        (b'{"urls": []}', 400, "invalid_request", "'urls'"),
        (b'{"urls": ["' + b"a" * (MAX_BODY + 10) + b'"]}', 413, "body_too_large", "at most"),
        (b"\xff\xfe{}", 400, "malformed_json", "not valid JSON"),
    ],
)
async def test_check_refuses_a_bad_body_and_names_the_problem(
    api: Api, body: bytes, status: int, code: str, names: str
) -> None:
    response = await api.client.post("/v1/check", content=body, headers={"content-type": "application/json"})
    assert error_of(response, status) == code
    assert names in response.json()["error"]["message"]


async def test_one_bad_url_costs_only_its_own_result(api: Api) -> None:
    long_listed = "http://mirror.test/" + "a/" * 40_000
    results = await check(api, "http://mirror.test/x", 7, "http://%2F/", long_listed, "http://clean.test/")
    assert [r["action"] for r in results] == ["block", None, None, "block", None]
    assert results[1]["error"]["code"] == "invalid_request"
    assert "urls[1]" in results[1]["error"]["message"]
    assert results[2]["error"]["code"] == "invalid_url"
    assert results[3]["partial"] is True  # decided on its host: doubt is not a pass
    assert results[3]["error"] is None
    assert results[0]["partial"] is results[4]["partial"] is False


async def test_a_body_that_is_not_json_is_refused(api: Api) -> None:
    response = await api.client.post("/v1/check", content=b"urls=x", headers={"content-type": "text/plain"})
    assert error_of(response, 415) == "unsupported_media_type"


async def test_a_chunked_body_is_held_to_the_same_limit(api: Api) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"urls": ["'
        for _ in range(20):
            yield b"a" * 65536

    response = await api.client.post(
        "/v1/check", content=chunks(), headers={"content-type": "application/json"}
    )
    assert error_of(response, 413) == "body_too_large"


async def test_unknown_paths_and_methods_get_json_errors(api: Api) -> None:
    assert error_of(await api.client.get("/v1/nothing"), 404) == "not_found"
    assert error_of(await api.client.get("/v1/check"), 405) == "method_not_allowed"


async def test_check_says_when_the_lists_cannot_be_used(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the data directory should be")
    async for api in _api(blocker, []):
        assert api.runtime.unavailable is not None
        response = await api.client.post("/v1/check", json={"urls": ["http://mirror.test/"]})
        assert error_of(response, 503) == "lists_unavailable"
        status = (await api.client.get("/v1/status")).json()
        assert status["ok"] is False
        assert status["unavailable"]


# -- who may call it ---------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1:8089", "localhost:8089", "[::1]:8089", "LOCALHOST"])
async def test_loopback_host_names_are_served(api: Api, host: str) -> None:
    response = await api.client.get("/v1/status", headers={"host": host})
    assert response.status_code == 200


@pytest.mark.parametrize("host", ["attacker.example:8089", "127.0.0.1.attacker.example", "[::2]:8089", ""])
async def test_other_host_headers_are_refused(api: Api, host: str) -> None:
    """A DNS-rebinding page reaches 127.0.0.1 under its own name: its Host header gives it away."""
    response = await api.client.post(
        "/v1/check", json={"urls": ["http://mirror.test/"]}, headers={"host": host}
    )
    assert error_of(response, 403 if host else 400) == ("host_not_allowed" if host else "host_missing")


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": "http://127.0.0.1:9000"},
        {"origin": "https://evil.example"},
        {"origin": "null"},
        {"sec-fetch-site": "cross-site", "sec-fetch-mode": "no-cors"},
        {"sec-fetch-site": "same-site", "sec-fetch-mode": "cors"},
    ],
)
async def test_requests_from_web_pages_are_refused(api: Api, headers: dict[str, str]) -> None:
    for response in (
        await api.client.get("/v1/status", headers=headers),
        await api.client.post("/v1/check", json={"urls": ["http://mirror.test/"]}, headers=headers),
        await api.client.post(
            "/v1/reports",
            json={"url": "http://mirror.test/"},
            headers={**headers, "authorization": f"Bearer {TOKEN}"},
        ),
    ):
        assert error_of(response, 403) == "origin_not_allowed"
        assert "access-control-allow-origin" not in response.headers
    assert await api.events() == []


async def test_an_extension_origin_and_a_typed_address_are_served(api: Api) -> None:
    assert (await api.client.get("/v1/status", headers=EXTENSION)).status_code == 200
    typed = {"sec-fetch-site": "none", "sec-fetch-mode": "navigate"}
    assert (await api.client.get("/v1/openapi.json", headers=typed)).status_code == 200


# -- writes --------------------------------------------------------------------------


async def test_writes_need_the_token(api: Api) -> None:
    body = {"events": [{"kind": "warning", "url": "http://mirror.test/"}]}
    assert error_of(await api.client.post("/v1/events", json=body), 401) == "token_missing"
    wrong = {"authorization": "Bearer " + "x" * 64}
    assert error_of(await api.client.post("/v1/events", json=body, headers=wrong), 401) == "token_invalid"
    basic = {"authorization": f"Basic {TOKEN}"}
    assert (
        error_of(await api.client.post("/v1/reports", json={"url": "x"}, headers=basic), 401)
        == "token_invalid"
    )
    assert await api.events() == []


async def test_events_are_stored_with_the_proxys_and_unlisted_ones_refused(api: Api) -> None:
    auth = {**EXTENSION, "authorization": f"Bearer {TOKEN}"}
    body = {
        "events": [
            {"kind": "warning", "url": "https://leak.test/inbox"},
            {"kind": "proceed", "url": "https://leak.test/inbox"},
            {"kind": "warning", "url": "http://clean.test/"},
            {"kind": "proceed", "url": "http://mirror.test/"},
            {"kind": "block", "url": "http://mirror.test/"},
        ]
    }
    response = await api.client.post("/v1/events", json=body, headers=auth)
    assert response.status_code == 200, response.text
    conforms(response.json(), "EventsResponse")
    assert response.json()["accepted"] == 3
    assert [(r["index"], r["error"]["code"]) for r in response.json()["rejected"]] == [
        (2, "not_listed"),
        (3, "no_way_through"),
    ]
    client = f"extension:{EXTENSION['origin']}"
    assert await api.events() == [
        ("warning", client, "leak.test/", "extension"),
        ("proceed", client, "leak.test/", "extension"),
        ("block", client, "mirror.test/", "extension"),
    ]


@pytest.mark.parametrize(
    ("events", "names"),
    [
        ([{"kind": "clicked", "url": "http://mirror.test/"}], "events[0].kind"),
        ([{"kind": "warning"}], "events[0].url"),
        (["http://mirror.test/"], "events[0]"),
        ([{"kind": "warning", "url": "http://mirror.test/"}] * 101, "at most 100"),
    ],
)
async def test_a_malformed_event_is_refused_whole(api: Api, events: list[Any], names: str) -> None:
    response = await api.client.post(
        "/v1/events", json={"events": events}, headers={"authorization": f"Bearer {TOKEN}"}
    )
    assert response.status_code in (400, 413)
    assert names in response.json()["error"]["message"]
    assert await api.events() == []


async def test_a_report_is_stored_with_its_comment(api: Api) -> None:
    auth = {**EXTENSION, "authorization": f"Bearer {TOKEN}"}
    response = await api.client.post(
        "/v1/reports",
        json={"url": "https://leak.test/press-kit", "comment": "our own press kit"},
        headers=auth,
    )
    assert response.status_code == 202
    conforms(response.json(), "ReportResponse")
    assert await api.events() == [
        ("report", f"extension:{EXTENSION['origin']}", "leak.test/", "our own press kit")
    ]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"url": "http://clean.test/"}, 422, "not_listed"),
        ({"url": "http://mirror.test/", "comment": "x" * 2001}, 400, "comment_too_long"),
        ({"url": "http://mirror.test/", "comment": 5}, 400, "invalid_request"),
        ({"comment": "no url"}, 400, "invalid_request"),
        ({"url": "http://"}, 400, "invalid_url"),
    ],
)
async def test_a_bad_report_is_refused(api: Api, body: dict[str, Any], status: int, code: str) -> None:
    response = await api.client.post("/v1/reports", json=body, headers={"authorization": f"Bearer {TOKEN}"})
    assert error_of(response, status) == code
    assert await api.events() == []


# -- status, rules, document -----------------------------------------------------------


async def test_status_reports_entries_feeds_and_uptime(api: Api) -> None:
    response = await api.client.get("/v1/status")
    assert response.status_code == 200
    status = response.json()
    conforms(status, "Status")
    assert status["ok"] is True
    assert status["index_entries"] == 4
    assert status["sources"] == {"corp": 4}
    assert status["feeds"] == []
    assert status["stale"] is False
    assert status["uptime_seconds"] >= 0
    assert (status["proceed_allowed"], status["proceed_ttl_seconds"]) == (True, 600)


async def test_rules_list_what_a_browser_can_enforce_local_entries_first(tmp_path: Path) -> None:
    async with Store.in_dir(tmp_path) as store:
        await store.import_entries(
            "feed:corp", [Entry.listing("feed.test/", Action.BLOCK, source="feed:corp")], kind="feed"
        )
        await store.import_entries(
            "feed:hashed",
            [Entry(key=key_of("hashed.test/"), action=Action.BLOCK, source="feed:hashed")],
            kind="feed",
        )
    async for api in _api(tmp_path, ENTRIES):
        response = await api.client.get("/v1/rules")
        assert response.status_code == 200
        body = response.json()
        conforms(body, "Rules")
        expressions = [e["expression"] for e in body["entries"]]
        # audit entries only log and hashed ones have no address: neither becomes a rule
        assert sorted(expressions[:3]) == ["leak.test/", "mirror.test/", "press.leak.test/"]
        assert expressions[3:] == ["feed.test/"]
        assert [e["local"] for e in body["entries"]] == [True, True, True, False]
        assert body["truncated"] is False
        again = await api.client.get("/v1/rules", headers={"if-none-match": response.headers["etag"]})
        assert again.status_code == 304
        one = (await api.client.get("/v1/rules?limit=1")).json()
        assert (len(one["entries"]), one["truncated"]) == (1, True)
        for bad in ("0", "x", "30001", "-1"):
            assert error_of(await api.client.get(f"/v1/rules?limit={bad}"), 400) == "invalid_parameter"


async def test_the_openapi_document_covers_every_route(api: Api) -> None:
    response = await api.client.get("/v1/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.1")
    documented = {(path, method.upper()) for path, item in document["paths"].items() for method in item}
    served = set()
    for path, method in documented:
        answer = await api.client.request(method, path, json={} if method == "POST" else None)
        assert answer.status_code not in (404, 405), (method, path)
        served.add((path, method))
    assert served == {
        ("/v1/status", "GET"),
        ("/v1/check", "POST"),
        ("/v1/rules", "GET"),
        ("/v1/psl", "GET"),
        ("/v1/prefixes", "GET"),
        ("/v1/events", "POST"),
        ("/v1/reports", "POST"),
        ("/v1/openapi.json", "GET"),
    }
    jsonschema.Draft202012Validator.check_schema(document["components"]["schemas"]["CheckResponse"])


# -- the addon serving it -----------------------------------------------------------------


async def test_the_addon_serves_the_api_on_loopback_and_keeps_a_private_token(tmp_path: Path) -> None:
    async with Store.in_dir(tmp_path) as store:
        await store.import_entries("corp", ENTRIES)
    runtime = Runtime()
    linkwarn, api = Linkwarn(runtime), LocalApi(runtime)
    port = free_port()
    with taddons.context(linkwarn, api) as tctx:
        tctx.configure(linkwarn, linkwarn_data_dir=str(tmp_path), linkwarn_api_port=port)
        linkwarn.running()
        api.running()
        await runtime.ready.wait()
        assert api.address == f"http://127.0.0.1:{port}"
        token_file = tmp_path / "api.token"
        assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
        token = token_file.read_text().strip()
        async with httpx.AsyncClient(base_url=api.address) as client:
            result = (await client.post("/v1/check", json={"urls": ["http://mirror.test/"]})).json()
            assert result["results"][0]["action"] == "block"
            report = await client.post(
                "/v1/reports",
                json={"url": "http://mirror.test/"},
                headers={"authorization": f"Bearer {token}"},
            )
            assert report.status_code == 202
        await api.done()
        await linkwarn.done()
        async with httpx.AsyncClient() as client:
            with pytest.raises(httpx.ConnectError):
                await client.get(f"http://127.0.0.1:{port}/v1/status")


async def test_a_busy_port_is_reported_and_the_proxy_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    taken = socket.create_server(("127.0.0.1", 0))
    port = taken.getsockname()[1]
    runtime = Runtime()
    linkwarn, api = Linkwarn(runtime), LocalApi(runtime)
    with taddons.context(linkwarn, api) as tctx:
        tctx.configure(linkwarn, linkwarn_data_dir=str(tmp_path), linkwarn_api_port=port)
        with caplog.at_level(logging.ERROR):
            api.running()
        assert api.address is None
        assert f"cannot listen on 127.0.0.1:{port}" in caplog.text
        linkwarn.running()
        await runtime.ready.wait()
        assert runtime.checker is not None
        await linkwarn.done()
    taken.close()


@pytest.mark.parametrize("port", [-1, 65536])
def test_a_bad_api_port_is_refused(port: int) -> None:
    linkwarn = Linkwarn()
    with taddons.context(linkwarn) as tctx, pytest.raises(exceptions.OptionsError, match="linkwarn_api_port"):
        tctx.configure(linkwarn, linkwarn_api_port=port)


# -- against a running ``linkwarn run`` ------------------------------------------------------


def test_linkwarn_run_serves_the_api_and_says_where_the_token_is(running_proxy: RunningProxy) -> None:
    banner = "".join(running_proxy.output)
    assert f"local API for the extension: {running_proxy.api_url}" in banner
    assert str(running_proxy.data_dir / "api.token") in banner
    assert running_proxy.api_token not in banner  # the path is printed, never the token
    run_file = json.loads((running_proxy.data_dir / "run.json").read_text())
    assert run_file["api"] == running_proxy.api_url
    with httpx.Client(base_url=running_proxy.api_url, timeout=10) as client:
        status = client.get("/v1/status").json()
        conforms(status, "Status")
        assert status["sources"] == {"sample": 6}
        assert status["proxy"]["api"] == running_proxy.api_url
        results = client.post(
            "/v1/check",
            json={"urls": ["http://mirror.test/any", "http://press.leak.example/", "http://ok.test/"]},
        ).json()["results"]
        assert [r["action"] for r in results] == ["block", "allow", None]
        rebound = client.get("/v1/status", headers={"host": "rebind.example:" + str(running_proxy.api_port)})
        assert rebound.status_code == 403
        assert rebound.json()["error"]["code"] == "host_not_allowed"
        page = client.post(
            "/v1/reports", json={"url": "http://mirror.test/"}, headers={"origin": "http://page.example"}
        )
        assert page.json()["error"]["code"] == "origin_not_allowed"
        report = client.post(
            "/v1/reports",
            json={"url": "http://mirror.test/", "comment": "from the API test"},
            headers={"authorization": f"Bearer {running_proxy.api_token}"},
        )
        assert report.status_code == 202


# -- bad input: every answer a JSON error naming the problem, never a traceback -----------------

AUTH = {**EXTENSION, "authorization": f"Bearer {TOKEN}"}
JSON = {**AUTH, "content-type": "application/json"}


@pytest.mark.parametrize(
    ("body", "code", "words"),
    [
        (b'{"urls": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "malformed_json", "nested too deeply"),
        (b'{"urls": [' + b"9" * 100_000 + b"]}", "malformed_json", "digits"),
        (b'{"urls": ["http://leak.test/\\ud800"]}', "invalid_text", "lone surrogate"),
        (b'{"urls": [NaN]}', "malformed_json", "NaN is not a JSON number"),
        (b'{"urls": ["http://leak.test/\xff\xfe"]}', "malformed_json", "not valid JSON"),
        (b'{"urls": [1e999999]}', "invalid_request", ""),  # a float, not a string: that URL's own error
        (b"\x00" * 1000, "malformed_json", "not valid JSON"),
    ],
)
async def test_hostile_bodies_get_a_json_error(api: Api, body: bytes, code: str, words: str) -> None:
    for path in ("/v1/check", "/v1/events", "/v1/reports"):
        response = await api.client.post(path, content=body, headers=JSON)
        if code == "invalid_request" and path == "/v1/check":
            assert response.json()["results"][0]["error"]["code"] == code
            continue
        assert error_of(response, 400) == code, path
        assert words in response.json()["error"]["message"]
    assert await api.events() == []  # nothing stored


@pytest.mark.parametrize("limit", ["²", "٣", "-1", "1e3", "0x10", " 5", "9" * 5000, "", "5\x00"])
async def test_odd_query_values_get_a_json_error(api: Api, limit: str) -> None:
    response = await api.client.get("/v1/rules", params={"limit": limit}, headers=EXTENSION)
    assert error_of(response, 400) == "invalid_parameter"


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("PUT", "/v1/check", 405, "method_not_allowed"),
        ("GET", "/v1/events", 405, "method_not_allowed"),
        ("DELETE", "/v1/status", 405, "method_not_allowed"),
        ("GET", "/v1/nothing-here", 404, "not_found"),
        ("GET", "/v1/status/%ff%00", 404, "not_found"),
    ],
)
async def test_wrong_methods_and_paths_get_a_json_error(
    api: Api, method: str, path: str, status: int, code: str
) -> None:
    assert error_of(await api.client.request(method, path, headers=AUTH), status) == code


async def test_a_client_flooding_events_has_most_refused_and_counted(api: Api) -> None:
    batch = {"events": [{"kind": "warning", "url": "http://leak.test/"}] * 100}
    accepted = refused = 0
    for _ in range(30):  # 3000 events within a minute
        body = (await api.client.post("/v1/events", json=batch, headers=AUTH)).json()
        accepted += body["accepted"]
        refused += sum(1 for r in body["rejected"] if r["error"]["code"] == "rate_limited")
    assert (accepted, refused) == (120, 2880)
    report = await api.client.post("/v1/reports", json={"url": "http://leak.test/"}, headers=AUTH)
    assert error_of(report, 429) == "rate_limited"
    assert len(await api.events()) == 120  # the refusals are counted, not stored
    assert api.runtime.api_limits.refused == 2881
    other = {**AUTH, "origin": "chrome-extension://ponmlkjihgfedcbaponmlkjihgfedcba"}
    assert (await api.client.post("/v1/events", json=batch, headers=other)).json()["accepted"] == 100


_ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
    | st.sampled_from(["http://leak.test/", "http://mirror.test/a", "\udc80", "http://[", "x" * 9000]),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(
        st.sampled_from(["urls", "events", "kind", "url", "comment", "x"]), inner, max_size=4),
    max_leaves=40,
)  # fmt: skip


async def test_any_json_gets_an_answer_or_a_json_error_and_bad_input_stores_nothing(api: Api) -> None:
    """Hypothesis over the API's JSON, run in a thread that posts to this loop."""
    loop = asyncio.get_running_loop()
    stored = len(await api.events())

    async def post(path: str, body: bytes) -> tuple[int, Any, int]:
        response = await api.client.post(path, content=body, headers=JSON)
        assert api.runtime.events is not None
        await api.runtime.events.flush()
        return response.status_code, response.json(), len(await api.events())

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(document=_ANY_JSON, path=st.sampled_from(["/v1/check", "/v1/events", "/v1/reports"]))
    def fuzz(document: object, path: str) -> None:
        nonlocal stored
        try:
            body = json.dumps(document).encode("utf-8", "surrogatepass")
        except (ValueError, RecursionError):
            return
        status, answer, now_stored = asyncio.run_coroutine_threadsafe(post(path, body), loop).result(30)
        assert status < 500, answer
        if status >= 400:
            conforms(answer, "Error")
            assert now_stored == stored  # refused: the store unchanged
        stored = now_stored

    api.runtime.api_limits.limit = 10**9  # the fuzzer is one client sending thousands
    await asyncio.to_thread(fuzz)


# -- what the extension mirrors: the suffix list and the prefixes -------------------------


def _etag_of(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


async def test_psl_serves_the_suffix_rules_the_proxy_follows(api: Api) -> None:
    response = await api.client.get("/v1/psl")
    assert response.status_code == 200
    body = response.json()
    conforms(body, "SuffixList")
    rules = set(body["rules"])
    assert {"com", "co.uk", "*.ck", "!www.ck", "blogspot.com", "github.io", "xn--55qx5d.cn"} <= rules
    assert "公司.cn" not in rules  # labels as a canonical host has them
    assert len(rules) == len(body["rules"]) > 9000
    assert response.headers["etag"] == _etag_of(response.content)
    again = await api.client.get("/v1/psl", headers={"if-none-match": response.headers["etag"]})
    assert again.status_code == 304
    assert again.headers["etag"] == response.headers["etag"]


HASHED = Entry(key=key_of("secret.test/dump/"), action=Action.BLOCK, marker=host_marker("secret.test"))
UNMARKED = Entry(key=key_of("nobody-knows.test/"), action=Action.WARN)
PATHS = [Entry.listing("files.test/dump/", Action.BLOCK, source="corp"), HASHED]


def _decode_full(body: bytes) -> tuple[list[bytes], list[bytes], int]:
    """The test's own reading of a full set (blocklists/prefixes.py's wire form)."""
    assert body[:4] == b"LWP1"
    keys, markers, unmarked = struct.unpack(">III", body[4:16])
    assert len(body) == 16 + 8 * keys + 4 * markers
    key_part, marker_part = body[16 : 16 + 8 * keys], body[16 + 8 * keys :]
    return (
        [key_part[i : i + 8] for i in range(0, len(key_part), 8)],
        [marker_part[i : i + 4] for i in range(0, len(marker_part), 4)],
        unmarked,
    )


def _apply_diff(full: tuple[list[bytes], list[bytes], int], body: bytes) -> bytes:
    assert body[:4] == b"LWD1"
    counts = struct.unpack(">IIIII", body[4:24])
    at, parts = 24, []
    for count, size in zip(counts[:4], (8, 8, 4, 4), strict=True):
        parts.append({body[at + i * size : at + (i + 1) * size] for i in range(count)})
        at += count * size
    assert at == len(body)
    keys_added, keys_removed, markers_added, markers_removed = parts
    keys, markers, _ = full
    assert keys_removed <= set(keys)
    assert not keys_added & set(keys)
    assert markers_removed <= set(markers)
    assert not markers_added & set(markers)
    new_keys = sorted((set(keys) - keys_removed) | keys_added)
    new_markers = sorted((set(markers) - markers_removed) | markers_added)
    header = b"LWP1" + struct.pack(">III", len(new_keys), len(new_markers), counts[4])
    return header + b"".join(new_keys) + b"".join(new_markers)


async def test_prefixes_are_the_index_the_proxy_decides_with(tmp_path: Path) -> None:
    async for api in _api(tmp_path, [*ENTRIES, *PATHS, UNMARKED]):
        response = await api.client.get("/v1/prefixes")
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/octet-stream"
        assert response.headers["x-linkwarn-prefixes"] == "full"
        keys, markers, unmarked = _decode_full(response.content)
        every = [*ENTRIES, *PATHS, UNMARKED]
        assert keys == sorted({e.key[:8] for e in every})
        # Every entry's marker, a host entry's too (the proxy's HostIndex screens a name by it alone).
        assert markers == sorted({e.marker[:4] for e in every if e.marker is not None})
        for host in ("mirror.test", "files.test", "secret.test"):  # a host entry, a path, a hashed one
            assert host_marker(host)[:4] in markers
        assert unmarked == 1
        etag = response.headers["etag"]
        assert etag == _etag_of(response.content)
        for headers, query in (({"if-none-match": etag}, ""), ({}, f"?since={etag}")):
            unchanged = await api.client.get("/v1/prefixes" + query, headers=headers)
            assert (unchanged.status_code, unchanged.headers["etag"], unchanged.content) == (304, etag, b"")


async def test_prefixes_since_a_version_are_a_diff_that_leads_to_the_new_set(tmp_path: Path) -> None:
    async for api in _api(tmp_path, [*ENTRIES, *PATHS]):
        first = await api.client.get("/v1/prefixes")
        versions = [(first.headers["etag"], _decode_full(first.content))]
        store, checker = api.runtime.store, api.runtime.checker
        assert store is not None
        assert checker is not None
        for step in range(3):
            await store.import_entries(f"more{step}", [Entry.listing(f"new{step}.test/p/", Action.WARN)])
            await store.remove([ENTRIES[step].key])
            await checker.reload()
            latest = await api.client.get("/v1/prefixes")
            versions.append((latest.headers["etag"], _decode_full(latest.content)))
        newest_etag, newest = versions[-1]
        assert len(newest[0]) == len(ENTRIES) + len(PATHS)  # three added, three removed
        for etag, full in versions[:-1]:
            diff = await api.client.get("/v1/prefixes", params={"since": etag})
            assert diff.status_code == 200
            assert diff.headers["x-linkwarn-prefixes"] == "diff"
            assert diff.headers["etag"] == newest_etag
            rebuilt = _apply_diff(full, diff.content)
            assert _decode_full(rebuilt) == newest
            assert _etag_of(rebuilt) == newest_etag  # the ETag names the set the diff leads to


async def test_prefixes_since_an_unknown_version_are_the_full_set(api: Api) -> None:
    response = await api.client.get("/v1/prefixes", params={"since": '"' + "0" * 32 + '"'})
    assert response.status_code == 200
    assert response.headers["x-linkwarn-prefixes"] == "full"
    assert response.headers["etag"] == _etag_of(response.content)


@pytest.mark.parametrize(
    "since", ["", "abc", "0" * 32, '"' + "0" * 31 + '"', '"' + "G" * 32 + '"', 'W/"' + "0" * 32 + '"']
)
async def test_prefixes_refuse_a_since_that_is_not_an_etag(api: Api, since: str) -> None:
    response = await api.client.get("/v1/prefixes", params={"since": since})
    assert error_of(response, 400) == "invalid_parameter"
    assert "since" in response.json()["error"]["message"]


async def test_prefixes_say_when_the_lists_cannot_be_used(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the data directory should be")
    async for api in _api(blocker, []):
        assert error_of(await api.client.get("/v1/prefixes"), 503) == "lists_unavailable"
        assert (await api.client.get("/v1/psl")).status_code == 200  # the suffix list needs no lists


async def test_prefixes_wait_for_the_index(api: Api) -> None:
    checker = api.runtime.checker
    assert checker is not None
    checker.index = None  # as before the first index is built: the store answers every lookup
    response = await api.client.get("/v1/prefixes")
    assert error_of(response, 503) == "lists_unavailable"
    assert "still being built" in response.json()["error"]["message"]
