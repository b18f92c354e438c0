"""The addons inside mitmproxy's test context, over a real store: hooks called as mitmproxy calls them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from mitmproxy import http
from mitmproxy.test import taddons, tflow

from blocklists import Entry, Store
from blocklists.store import Event
from proxy_addon.api import LocalApi
from proxy_addon.interceptor import Linkwarn
from proxy_addon.runtime import Runtime

NAVIGATE = {"sec-fetch-dest": "document", "sec-fetch-mode": "navigate", "sec-fetch-site": "none"}
OWN = "linkwarn.internal"


async def run_hook(pending: Coroutine[Any, Any, None] | None) -> None:
    """Call a hook as mitmproxy does: it may return a coroutine, which is then awaited."""
    if pending is not None:
        await pending


class Proxy:
    """The `Linkwarn` and `LocalApi` addons over one runtime, and helpers to send flows through them."""

    def __init__(
        self, runtime: Runtime, addon: Linkwarn, api: LocalApi, tctx: taddons.context, data_dir: Path
    ):
        self.runtime, self.addon, self.api, self.tctx, self.data_dir = runtime, addon, api, tctx, data_dir

    @staticmethod
    def flow(
        url: str,
        *,
        method: str = "GET",
        headers: dict[str, str] | None = None,
        body: bytes = b"",
        client: str = "127.0.0.1",
    ) -> http.HTTPFlow:
        flow = tflow.tflow()
        flow.request = http.Request.make(method, url, body, headers or {})
        flow.client_conn.peername = (client, 51234)
        return flow

    async def send(self, flow: http.HTTPFlow) -> http.HTTPFlow:
        """The hooks in mitmproxy's order: a response set by an addon still goes through `response`."""
        await run_hook(self.addon.requestheaders(flow))
        await run_hook(self.addon.request(flow))
        if flow.response is not None:
            await run_hook(self.addon.response(flow))
        return flow

    async def request(self, url: str, **kwargs: Any) -> http.HTTPFlow:
        return await self.send(self.flow(url, **kwargs))

    async def events(self) -> list[Event]:
        assert self.runtime.events is not None
        assert self.runtime.store is not None
        await self.runtime.events.flush()
        return await self.runtime.store.events()

    async def kinds(self) -> list[tuple[str, str | None]]:
        return [(e.kind, e.expression) for e in await self.events()]

    # -- the warning flow, step by step ---------------------------------------------

    async def warning_page(self, url: str, client: str = "127.0.0.1", **headers: str) -> http.HTTPFlow:
        """Navigate to *url* and follow the redirect to the own origin's page."""
        first = await self.request(url, headers={**NAVIGATE, **headers}, client=client)
        assert first.response is not None, url
        assert first.response.status_code == 303, first.response.get_text()
        location = first.response.headers["location"]
        assert urlsplit(location).hostname == OWN
        return await self.request(location, headers=NAVIGATE, client=client)

    async def post_form(
        self,
        path: str,
        fields: dict[str, str],
        client: str = "127.0.0.1",
        scheme: str = "https",
        **headers: str,
    ) -> http.HTTPFlow:
        base = {
            "content-type": "application/x-www-form-urlencoded",
            "origin": f"{scheme}://{OWN}",
            "sec-fetch-site": "same-origin",
            "sec-fetch-dest": "document",
            "sec-fetch-mode": "navigate",
        }
        from urllib.parse import urlencode

        return await self.request(
            f"{scheme}://{OWN}{path}",
            method="POST",
            headers={**base, **headers},
            body=urlencode(fields).encode(),
            client=client,
        )

    async def proceed(
        self, url: str, client: str = "127.0.0.1", wait: bool = True, **fields: str
    ) -> http.HTTPFlow:
        """Open the warning for *url*, wait as a person would, press Proceed; the POST's flow."""
        page = await self.warning_page(url, client=client)
        token = form_value(page, "/proceed")
        if wait:
            await asyncio.sleep(1.05)
        return await self.post_form("/proceed", {"token": token, **fields}, client=client)

    async def pass_cookie(self, url: str, client: str = "127.0.0.1", **fields: str) -> tuple[str, str]:
        """Proceed to *url* and follow the code; the pass cookie and the clean URL it was set for."""
        post = await self.proceed(url, client=client, **fields)
        assert post.response is not None
        assert post.response.status_code == 303, post.response.get_text()
        with_code = post.response.headers["location"]
        consumed = await self.request(with_code, headers=NAVIGATE, client=client)
        assert consumed.response is not None
        assert consumed.response.status_code == 303, consumed.response.get_text()
        cookie = consumed.response.headers["set-cookie"]
        return cookie.split(";", 1)[0], consumed.response.headers["location"]


def form_value(page: http.HTTPFlow, action: str, field: str = "token") -> str:
    """The value of *field* in the page's form posting to *action*."""
    import re

    assert page.response is not None
    text = page.response.get_text() or ""
    form = re.search(rf'<form method="post" action="{re.escape(action)}"[^>]*>(.*?)</form>', text, re.S)
    assert form is not None, f"no form for {action}"
    value = re.search(rf'name="{field}" value="([^"]*)"', form.group(1))
    assert value is not None
    return value.group(1)


def query_value(url: str, name: str) -> str:
    return parse_qs(urlsplit(url).query)[name][0]


@asynccontextmanager
async def proxy_with(data_dir: Path, entries: list[Entry], **options: Any) -> AsyncIterator[Proxy]:
    """The addons over a store in *data_dir* holding *entries*, configured with *options*."""
    if entries:
        async with Store.in_dir(data_dir) as store:
            await store.import_entries("corp", entries)
    runtime = Runtime()
    addon, api = Linkwarn(runtime), LocalApi(runtime)
    options.setdefault("linkwarn_secret", "s" * 32)
    options.setdefault("linkwarn_api_port", 0)
    with taddons.context(addon, api) as tctx:
        tctx.configure(addon, linkwarn_data_dir=str(data_dir), **options)
        addon.running()
        api.running()
        await runtime.ready.wait()
        await runtime.opened()
        try:
            yield Proxy(runtime, addon, api, tctx, data_dir)
        finally:
            await api.done()
            await addon.done()


def soon(seconds: float) -> int:
    return int(time.time() + seconds)
