"""The share warning: posts that would pass a listed link on are held back, through the addon's hooks."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from mitmproxy import http

from blocklists import Action, Entry
from proxy_addon.share import SCANNED_METHODS, _post_headers, _scanned_method
from proxy_addon.streamed import StreamedPost

from .conftest import proxy_between
from .support.hooks import NAVIGATE, OWN, Proxy, form_value, proxy_with, run_hook
from .support.servers import RunningProxy, Upstream

ENTRIES = [
    Entry.listing("leak.test/", Action.WARN, reason="Leaked mail", source="corp"),
    Entry.listing("mirror.test/", Action.BLOCK, reason="Unreleased films", source="corp"),
    Entry.listing("press.leak.test/", Action.ALLOW, source="corp"),
    Entry.listing("watch.test/", Action.AUDIT, source="corp"),
]
FORM = {"content-type": "application/x-www-form-urlencoded", **NAVIGATE}
XHR = {"content-type": "application/json", "sec-fetch-dest": "empty", "sec-fetch-mode": "cors"}
SITES = ["social.example", "chat.example", "canteen.example"]  # where these tests post


@pytest.fixture
async def proxy(tmp_path: Path) -> AsyncIterator[Proxy]:
    async with proxy_with(tmp_path, ENTRIES, linkwarn_share_sites=SITES) as opened:
        yield opened


def post_body(text: str) -> bytes:
    return urlencode({"status": text, "csrf": "t0k3n"}).encode()


async def test_an_unlisted_post_passes_untouched(proxy: Proxy) -> None:
    body = post_body("lunch at https://canteen.example/menu?day=mon")
    flow = await proxy.request("https://social.example/post", method="POST", headers=FORM, body=body)
    assert flow.response is None
    assert flow.request.raw_content == body
    assert await proxy.kinds() == []


async def test_a_form_post_with_a_warn_link_is_held_and_sent_anyway_byte_for_byte(proxy: Proxy) -> None:
    body = post_body("have you seen https://www.leak.test/inbox?id=4")
    headers = {**FORM, "cookie": "session=abc", "x-csrf": "1"}
    flow = await proxy.request(
        "https://social.example/post?draft=0", method="POST", headers=headers, body=body
    )
    assert flow.response is not None
    assert flow.response.status_code == 303
    location = flow.response.headers["location"]
    assert location.startswith(f"https://{OWN}/share?t=")
    assert flow.response.headers["x-linkwarn"].startswith("share-warn; entry=leak.test/")
    page = await proxy.request(location, headers=NAVIGATE)
    text = page.response.get_text() if page.response else ""
    assert "This post carries a link to leaked material" in (text or "")
    assert "https://www.leak.test/inbox?id=4" in (text or "")
    assert "social.example/post" in (text or "")
    token = form_value(page, "/share/send")
    too_soon = await proxy.post_form("/share/send", {"token": token})
    assert too_soon.response is not None
    assert too_soon.response.status_code == 403
    await asyncio.sleep(1.05)
    send = await proxy.post_form("/share/send", {"token": token})
    assert send.response is not None
    assert send.response.status_code == 303
    back = send.response.headers["location"]
    assert back.startswith("https://social.example/post?draft=0&linkwarn-share-code=")
    # The browser follows with a GET; the proxy puts the held POST in its place.
    again = proxy.flow(back, headers={**NAVIGATE, "sec-fetch-site": "cross-site"})
    await proxy.send(again)
    assert again.response is None
    assert again.request.path == "/post?draft=0"
    assert again.request.method == "POST"
    assert again.request.raw_content == body
    assert again.request.headers["cookie"] == "session=abc"
    assert again.request.headers["x-csrf"] == "1"
    assert "origin" not in again.request.headers
    kinds = [k for k, _ in await proxy.kinds()]
    assert kinds.count("share-warned") == 1
    assert kinds.count("share-sent-anyway") == 1
    # Once: the code and the held post are spent.
    replay = proxy.flow(back, method="POST", headers={"content-type": "text/plain"}, body=b"x")
    await proxy.send(replay)
    assert replay.response is not None
    assert replay.response.status_code == 403


async def test_events_name_the_link_and_where_it_went_never_the_rest(proxy: Proxy) -> None:
    body = post_body("secret salary list and http://mirror.test/film")
    await proxy.request("https://social.example/post", method="POST", headers=FORM, body=body)
    (event,) = [e for e in await proxy.events() if e.kind == "share-blocked"]
    assert event.url == "http://mirror.test/film"
    assert event.detail == "posted to https://social.example/post"
    assert "salary" not in json.dumps(event.to_json())


async def test_a_block_link_has_no_send_anyway(proxy: Proxy) -> None:
    flow = await proxy.request(
        "https://social.example/post", method="POST", headers=FORM, body=post_body("http://mirror.test/film")
    )
    assert flow.response is not None
    page = await proxy.request(flow.response.headers["location"], headers=NAVIGATE)
    assert "This post was not sent" in (page.response.get_text() or "")  # type: ignore[union-attr]
    assert "/share/send" not in (page.response.get_text() or "")  # type: ignore[union-attr]


async def test_an_xhr_post_gets_a_403_naming_the_share_verdict(proxy: Proxy) -> None:
    body = json.dumps({"message": "look https://leak.test/inbox"}).encode()
    flow = await proxy.request("https://chat.example/api/send", method="POST", headers=XHR, body=body)
    assert flow.response is not None
    assert flow.response.status_code == 403
    assert flow.response.headers["x-linkwarn"] == "share-warn; entry=leak.test/; links=1"


@pytest.mark.parametrize(
    ("text", "held"),
    [
        ("see https://press.leak.test/story", False),  # allow wins, as for requests
        ("see https://watch.test/x", False),  # audit: logged, passes
        ("see https://press.leak.test/story and https://leak.test/x", True),
    ],
)
async def test_allow_and_audit_links(proxy: Proxy, text: str, held: bool) -> None:
    flow = await proxy.request("https://social.example/post", method="POST", headers=XHR,
                               body=json.dumps({"t": text}).encode())  # fmt: skip
    assert (flow.response is not None) is held
    if "watch.test" in text:
        assert ("share-audit", "watch.test/") in await proxy.kinds()


async def test_binary_oversized_and_off_pass_untouched(tmp_path: Path) -> None:
    listed = post_body("http://mirror.test/film")
    async with proxy_with(
        tmp_path / "a", ENTRIES, linkwarn_share_max_body="32", linkwarn_share_sites=SITES
    ) as proxy:
        flow = await proxy.request("https://social.example/p", method="POST", headers=FORM, body=listed)
        assert flow.response is None  # over the limit
        png = {"content-type": "image/png"}
        binary = await proxy.request("https://social.example/p", method="POST", headers=png, body=listed)
        assert binary.response is None
    async with proxy_with(tmp_path / "b", ENTRIES, linkwarn_share=False, linkwarn_share_sites=["*"]) as proxy:
        flow = await proxy.request("https://social.example/p", method="POST", headers=FORM, body=listed)
        assert flow.response is None
    async with proxy_with(tmp_path / "c", ENTRIES, linkwarn_share_sites=["social.example"]) as proxy:
        scanned = await proxy.request("https://m.social.example/p", method="POST", headers=FORM, body=listed)
        assert scanned.response is not None
        other = await proxy.request("https://other.example/p", method="POST", headers=FORM, body=listed)
        assert other.response is None


async def test_share_sites_are_read_per_host_header_and_again_when_they_change(proxy: Proxy) -> None:
    listed = post_body("http://mirror.test/film")

    async def answered(host: str) -> bool:
        headers = {**FORM, "host": host}
        flow = await proxy.request(f"https://{host}/p", method="POST", headers=headers, body=listed)
        return flow.response is not None

    assert await answered("chat.example")
    assert await answered("m.chat.example:443")
    assert not await answered("other.example")
    proxy.tctx.configure(proxy.addon, linkwarn_share_sites=["other.example"])
    assert await answered("other.example")
    assert not await answered("chat.example")


def test_a_posts_headers_are_read_as_mitmproxy_reads_them() -> None:
    fields = [(b"Content-Type", b"text/plain"), (b"HOST", b"Social.Example"), (b"content-type", b"utf-8"),
              (b"Content-Encoding", b"gzip"), (b"X-Other", b"1")]  # fmt: skip
    for headers in (fields, [], [(b"content-encoding", b"")]):
        request = http.Request.make("POST", "https://social.example/p", b"x", headers)
        read = request.headers.get
        assert _post_headers(request) == (read("content-type"), read("content-encoding"), read("host"))


@pytest.mark.parametrize(
    "method", [b"POST", b"post", b"Patch", b"PUT", b"GET", b"POSTS", b"PO\xc5\xbfT", b"p\xffst"]
)
def test_a_posts_method_is_read_as_mitmproxy_reads_it(method: bytes) -> None:
    request = http.Request.make("POST", "https://social.example/p", b"x")
    request.data.method = method  # as sent: mitmproxy upper-cases it when read ("POſT" too)
    assert _scanned_method(request) is (request.method in SCANNED_METHODS)


async def test_a_held_post_belongs_to_its_client(proxy: Proxy) -> None:
    flow = await proxy.request(
        "https://social.example/post", method="POST", headers=FORM, body=post_body("https://leak.test/a")
    )
    assert flow.response is not None
    page = await proxy.request(flow.response.headers["location"], headers=NAVIGATE, client="10.0.0.9")
    assert page.response is not None
    assert page.response.status_code == 400


async def test_a_share_code_sends_its_post_to_its_own_address_only(proxy: Proxy) -> None:
    flow = await proxy.request(
        "https://social.example/post", method="POST", headers=FORM, body=post_body("https://leak.test/a")
    )
    assert flow.response is not None
    page = await proxy.request(flow.response.headers["location"], headers=NAVIGATE)
    await asyncio.sleep(1.05)
    send = await proxy.post_form("/share/send", {"token": form_value(page, "/share/send")})
    assert send.response is not None
    elsewhere = send.response.headers["location"].replace("social.example/post", "other.example/inbox")
    moved = await proxy.request(elsewhere, headers=NAVIGATE)
    assert moved.response is not None
    assert moved.response.status_code == 403
    assert moved.request.method == "GET"  # the held post was not put in its place
    # ... and the code is spent: the real address does not get it either.
    real = await proxy.request(send.response.headers["location"], headers=NAVIGATE)
    assert real.response is not None
    assert real.response.status_code == 403


async def test_a_junk_share_code_is_refused_and_nothing_is_sent(proxy: Proxy) -> None:
    flow = proxy.flow("https://social.example/post?linkwarn-share-code=junk", method="POST",
                      headers={"content-type": "text/plain"}, body=b"x")  # fmt: skip
    await proxy.send(flow)
    assert flow.response is not None
    assert flow.response.status_code == 403
    assert ("refused", None) in await proxy.kinds()


async def test_a_held_post_never_reaches_the_response_hook_as_a_redirect_to_check(proxy: Proxy) -> None:
    flow = await proxy.request(
        "https://social.example/post", method="POST", headers=FORM, body=post_body("https://leak.test/a")
    )
    await run_hook(proxy.addon.response(flow))
    assert flow.response is not None
    assert flow.response.headers["location"].startswith(f"https://{OWN}/share?t=")
    assert isinstance(flow.response, http.Response)


# -- through a running linkwarn run ---------------------------------------------------------


def test_through_linkwarn_run_a_held_post_never_arrives_and_send_anyway_delivers_it(
    running_proxy: RunningProxy, upstreams: tuple[Upstream, Upstream]
) -> None:
    plain = upstreams[0]
    body = urlencode({"status": "leaked mail: http://leak.example/inbox?id=9", "token": "abc"}).encode()
    before = len(plain.server.bodies)
    with httpx.Client(proxy=running_proxy.url, verify=str(running_proxy.trust_file), timeout=20) as client:
        held = client.post("http://social.example/post", content=body, headers=FORM)
        assert held.status_code == 303
        assert len(plain.server.bodies) == before  # not a byte went up
        xhr = client.post(
            "http://chat.example/api", content=body, headers={**XHR, "content-type": FORM["content-type"]}
        )
        assert xhr.status_code == 403
        assert xhr.headers["x-linkwarn"].startswith("share-warn; entry=leak.example/")
        page = client.get(held.headers["location"], headers=NAVIGATE)
        token = re.search(r'name="token" value="([^"]+)"', page.text)
        assert token is not None
        time.sleep(1.05)
        send = client.post(f"https://{OWN}/share/send", data={"token": token.group(1)},
                           headers={"origin": f"https://{OWN}", "sec-fetch-site": "same-origin"})  # fmt: skip
        assert send.status_code == 303
        delivered = client.get(send.headers["location"], headers=NAVIGATE)
        assert delivered.status_code == 200
        assert delivered.text == f"received {len(body)} bytes"
        unlisted = client.post("http://social.example/post", content=b"status=hello", headers=FORM)
        assert unlisted.status_code == 200
        binary = client.post("http://social.example/post", content=b"\x89PNG http://leak.example/x",
                             headers={"content-type": "image/png"})  # fmt: skip
        assert binary.status_code == 200
    assert plain.server.bodies[before:] == [("/post", body), ("/post", b"status=hello"),
                                            ("/post", b"\x89PNG http://leak.example/x")]  # fmt: skip


async def test_a_held_post_is_counted_in_the_metrics_and_the_report(proxy: Proxy) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from proxy_addon.report import summarize

    await proxy.request("https://social.example/post", method="POST", headers=XHR,
                        body=json.dumps({"t": "https://leak.test/x"}).encode())  # fmt: skip
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(proxy.runtime.metrics.exposition().decode())
        for sample in family.samples
    }
    assert samples[("linkwarn_decisions_total", (("action", "warn"), ("kind", "share")))] == 1
    assert samples[("linkwarn_events_total", (("kind", "share-warned"),))] == 1
    events = await proxy.events()
    assert summarize(events, [], time.time() - 3600, time.time() + 60).share_attempts == 1


# -- a body mitmproxy streams: decided on what was seen -----------------------------------


async def _streamed(proxy: Proxy, length: int = 10_000_000) -> tuple[http.HTTPFlow, StreamedPost]:
    flow = proxy.flow(
        "https://social.example/upload",
        method="POST",
        headers={"content-type": "text/plain", "content-length": str(length)},
    )
    flow.request.stream = True  # as mitmproxy's stream_large_bodies sets it, before linkwarn's hook
    await run_hook(proxy.addon.requestheaders(flow))
    assert flow.response is None
    assert isinstance(flow.request.stream, StreamedPost)
    return flow, flow.request.stream


async def _settled(scanner: StreamedPost) -> None:
    if scanner.confirming is not None:
        await asyncio.wait_for(asyncio.shield(scanner.confirming), 5)


async def test_an_unlisted_streamed_post_passes_byte_for_byte(proxy: Proxy) -> None:
    flow, scanner = await _streamed(proxy)
    chunks = [b"a" * 5000, b" see https://canteen.example/menu ", b"b" * 70_000, b"end"]
    sent = [piece for chunk in [*chunks, b""] for piece in scanner(chunk)]
    assert b"".join(sent) == b"".join(chunks)
    assert flow.live
    assert await proxy.kinds() == []


@pytest.mark.parametrize(
    ("chunks", "kind", "before"),
    [
        ([b"x" * 3000, b"leaked: http://leak.test/inbox?id=9 ", b"y" * 3000], "share-warned", 1),
        # Across two chunks: the first half went on (mirror.te is no listed host), never the whole.
        ([b"x" * 3000, b" http://mirror.te", b"st/film.mkv " + b"y" * 3000], "share-blocked", 2),
        ([b"x" * 3000, b'{"text": "https:\\/\\/leak.test\\/inbox"}'], "share-warned", 1),  # JSON, as text
    ],
)
async def test_a_streamed_post_is_cut_at_the_chunk_with_a_listed_link(
    proxy: Proxy, chunks: list[bytes], kind: str, before: int
) -> None:
    flow, scanner = await _streamed(proxy)
    sent: list[bytes] = []
    for chunk in chunks:
        sent += scanner(chunk)
    await _settled(scanner)
    sent += scanner(b"more after the link") + scanner(b"")
    # The server got what came before the link's chunk, never the link, nor the end of the body.
    assert sent == chunks[:before]
    assert scanner.cut
    assert flow.error is not None
    assert not flow.live  # killed
    assert [k for k, _ in await proxy.kinds()] == [kind]


async def test_a_streamed_post_with_an_allow_or_audit_link_is_held_then_let_go(proxy: Proxy) -> None:
    flow, scanner = await _streamed(proxy)
    chunks = [b"read http://press.leak.test/statement and http://watch.test/x ", b"rest", b"more"]
    sent = scanner(chunks[0])
    assert sent == []  # held while the store confirms
    await _settled(scanner)
    sent += scanner(chunks[1]) + scanner(chunks[2]) + scanner(b"")
    assert b"".join(sent) == b"".join(chunks)
    assert flow.live
    assert [k for k, _ in await proxy.kinds()] == ["share-audit"]


async def test_a_streamed_body_that_ends_before_its_links_are_confirmed_is_cut(proxy: Proxy) -> None:
    flow, scanner = await _streamed(proxy)
    assert scanner(b"see http://press.leak.test/statement") == []
    assert scanner(b"") == []  # the end came first: doubt is not a pass
    assert scanner.cut
    assert not flow.live
    await _settled(scanner)


async def test_a_streamed_body_is_read_up_to_the_size_limit(tmp_path: Path) -> None:
    limited = {"linkwarn_share_sites": SITES, "linkwarn_share_max_body": "4k"}
    async with proxy_with(tmp_path, ENTRIES, **limited) as proxy:
        flow, scanner = await _streamed(proxy)
        chunks = [b"x" * 5000, b" http://leak.test/inbox "]  # the link comes after the limit
        sent = [piece for chunk in [*chunks, b""] for piece in scanner(chunk)]
        assert b"".join(sent) == b"".join(chunks)
        assert flow.live


async def test_only_scanned_posts_are_streamed_through_the_filter(proxy: Proxy) -> None:
    for url, headers in [
        ("https://elsewhere.example/upload", {"content-type": "text/plain"}),  # not a share site
        ("https://social.example/upload", {"content-type": "image/png"}),  # binary
        ("https://social.example/upload", {"content-type": "text/plain", "content-encoding": "gzip"}),
        ("https://social.example/upload", {"content-type": "text/plain", "content-encoding": "GZIP"}),
    ]:
        flow = proxy.flow(url, method="POST", headers={**headers, "content-length": "10000000"})
        flow.request.stream = True
        await run_hook(proxy.addon.requestheaders(flow))
        assert flow.request.stream is True, (url, headers)
    flow = proxy.flow("https://social.example/upload", method="GET", headers={"content-type": "text/plain"})
    flow.request.stream = True  # not a method whose body is scanned
    await run_hook(proxy.addon.requestheaders(flow))
    assert flow.request.stream is True
    flow, _ = await _streamed(proxy)  # and the one that is: a text POST to a share site, unencoded
    flow.request.headers["content-encoding"] = "IDENTITY"  # as a sender may spell it
    flow.request.stream = True
    await run_hook(proxy.addon.requestheaders(flow))
    assert isinstance(flow.request.stream, StreamedPost)


async def test_the_scan_counts_the_posts_it_searched_and_its_time(proxy: Proxy) -> None:
    """``linkwarn_share_scan_seconds`` and ``linkwarn_share_scanned_posts``: every request asks the
    scan, and only a post searched for links counts as one (a large one searched in a thread,
    a streamed one once, however many chunks)."""
    figures = proxy.runtime.metrics.scan
    await proxy.request("https://social.example/feed")
    await proxy.request(
        "https://social.example/p", method="POST", headers={"content-type": "image/png"}, body=b"x"
    )
    assert figures.posts == 0
    asked = figures.seconds
    assert asked > 0  # each was asked whether it is scanned
    await proxy.request(
        "https://social.example/p", method="POST", headers=FORM, body=post_body("see a.example")
    )
    large = post_body("see https://canteen.example/ " + "x" * 70_000)  # over THREAD_THRESHOLD
    await proxy.request("https://social.example/p", method="POST", headers=FORM, body=large)
    assert figures.posts == 2
    assert figures.seconds > asked
    _, scanner = await _streamed(proxy)
    for chunk in (b"a" * 5000, b" see https://canteen.example/menu ", b"", b"end", b""):
        scanner(chunk)
    assert figures.posts == 3
    exposition = proxy.runtime.metrics.exposition().decode()
    assert "linkwarn_share_scanned_posts_total 3.0" in exposition
    assert f"linkwarn_share_scan_seconds_total {figures.seconds!r}" in exposition


@pytest.fixture(scope="module")
def streaming_proxy(
    tmp_path_factory: pytest.TempPathFactory, upstreams: tuple[Upstream, Upstream]
) -> Iterator[RunningProxy]:
    """``linkwarn run`` with mitmproxy streaming every body over 10 KiB."""
    yield from proxy_between(
        tmp_path_factory, upstreams, "--share-site", "social.example", "--set", "stream_large_bodies=10k"
    )


def _bodies_since(upstream: Upstream, before: int, count: int) -> list[tuple[str, bytes]]:
    deadline = time.monotonic() + 10
    while len(upstream.server.bodies) < before + count and time.monotonic() < deadline:
        time.sleep(0.05)
    return upstream.server.bodies[before:]


@pytest.mark.parametrize("chunked", [False, True])
def test_through_linkwarn_run_a_streamed_post_is_cut_before_its_listed_link(
    streaming_proxy: RunningProxy, upstreams: tuple[Upstream, Upstream], chunked: bool
) -> None:
    plain = upstreams[0]
    head, link, rest = b"a" * 100_000, b" http://leak.example/inbox?id=9 ", b"b" * 100_000
    listed, unlisted = head + link + rest, head + b" https://canteen.example/menu " + rest

    def content(body: bytes) -> bytes | Iterator[bytes]:
        # Without a length, mitmproxy streams the body once stream_large_bodies is set.
        return iter([body[i : i + 16384] for i in range(0, len(body), 16384)]) if chunked else body

    headers = {"content-type": "text/plain; charset=utf-8"}
    before = len(plain.server.bodies)
    with httpx.Client(proxy=streaming_proxy.url, timeout=20) as client:
        passed = client.post("http://social.example/upload", content=content(unlisted), headers=headers)
        assert passed.status_code == 200
        with pytest.raises(httpx.TransportError):
            client.post("http://social.example/upload", content=content(listed), headers=headers)
    received = _bodies_since(plain, before, 2)
    assert received[0] == ("/upload", unlisted)  # byte for byte
    if len(received) > 1:  # the server may have read what came before the link's chunk, never the link
        assert b"leak.example/inbox" not in received[1][1]
        assert len(received[1][1]) < len(head) + len(link)
