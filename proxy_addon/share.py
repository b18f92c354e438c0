"""The share warning: a post that would pass a listed link on is held back.

`ShareGuard.scan` runs in the ``request`` hook, once a body is in, for POST,
PUT and PATCH requests of a text type up to ``linkwarn_share_max_body`` to the
sites ``linkwarn_share_sites`` names (every site by default). It finds the
links in the body (`blocklists.links`; the body's hosts are screened first, so
a post linking only to hosts no entry names is not searched link by link, see
`ShareGuard.find`) and decides each with the same matcher
as a request; ``allow`` wins as it does for requests, ``audit`` links are
logged and pass. When a ``block`` or ``warn`` link is among them the request
is never forwarded:

- a top-level form submission is redirected to the share warning on linkwarn's
  own origin, which names the links and their entries; for ``warn`` it offers
  *Send anyway*, with the same one-click, one-time rules as Proceed: its answer
  is a redirect back to the post's URL carrying a one-time code, and the proxy,
  consuming the code, puts the held request in place of the browser's, method,
  headers and body byte for byte, once;
- an XHR or fetch gets a 403 whose ``X-Linkwarn`` header names the share
  verdict (``share-warn`` or ``share-block``), for the extension to show.

Held posts live in this proxy's memory (`HeldPosts`: bounded in count, bytes
and time), so *Send anyway* must reach the proxy that held the post.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from time import perf_counter
from typing import Any

from mitmproxy import http

from blocklists import Action, InvalidURL, Verdict
from blocklists.checker import Prefiltered
from blocklists.links import find_links, is_text_type
from blocklists.store import Event
from proxy_addon.answers import (
    METADATA_KEY,
    Decision,
    client_of,
    header_safe,
    may_stream,
    redirect_response,
    request_kind,
)
from proxy_addon.events import EventKind
from proxy_addon.held import HeldPost, ListedLink
from proxy_addon.names import request_urls
from proxy_addon.origin import SHARE_CODE_PARAM
from proxy_addon.policy import RequestKind
from proxy_addon.runtime import ListsUnavailable, Runtime
from proxy_addon.settings import Settings
from proxy_addon.streamed import StreamedPost
from proxy_addon.tokens import Purpose, Token, mint

__all__ = ["SHARE_CODE_PARAM", "ShareGuard"]

logger = logging.getLogger(__name__)

HOLD_SECONDS = 15 * 60
MAX_LINKS_SHOWN = 20
THREAD_THRESHOLD = 64 * 1024  # bodies larger than this are searched off the event loop
SCANNED_METHODS = frozenset({"POST", "PUT", "PATCH"})
_SCANNED_METHODS_SENT = frozenset(method.encode() for method in SCANNED_METHODS)
SITES_KEPT = 4096  # Host headers whose "is this a share site" answer is kept, for the settings in force
_READ_HEADERS = frozenset({b"content-type", b"content-encoding", b"host"})
_AUTHORITY_VERSIONS = frozenset({b"HTTP/2.0", b"HTTP/3"})  # request.is_http2 or request.is_http3


def _post_headers(request: http.Request) -> tuple[str | None, str | None, str | None]:
    """Content-Type, Content-Encoding and Host as ``request.headers.get`` reads each (repeated
    fields joined by ", "), in one pass over the fields: every post is read for the three."""
    found: dict[bytes, list[bytes]] = {}
    for name, value in request.headers.fields:
        key = name.lower()
        if key in _READ_HEADERS:
            found.setdefault(key, []).append(value)
    return (
        _joined(found.get(b"content-type")),
        _joined(found.get(b"content-encoding")),
        _joined(found.get(b"host")),
    )


def _scanned_method(request: http.Request) -> bool:
    """Whether the request's method is one whose body is scanned, as ``request.method`` reads it
    (upper-cased), without decoding an ASCII one: every request is asked."""
    method = request.data.method
    if method.isascii():
        return method.upper() in _SCANNED_METHODS_SENT
    return request.method in SCANNED_METHODS


def _timed_find_links(body: bytes, content_type: str) -> tuple[list[str], float]:
    """`find_links` (every link: no host test, which would read the indexes from a thread), and
    the seconds it took."""
    started = perf_counter()
    links = find_links(body, content_type)
    return links, perf_counter() - started


def _joined(values: list[bytes] | None) -> str | None:
    return None if values is None else b", ".join(values).decode("utf-8", "surrogateescape")


def _listed(url: str, verdict: Verdict) -> ListedLink:
    entry = verdict.entry
    assert entry is not None
    return ListedLink(url, verdict.canonical.url, str(entry.action), entry.expression or "", entry.reason,
                      entry.source, entry.key)  # fmt: skip


class ShareGuard:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.resend: dict[str, bytes] = {}  # flow id -> the held body to send in place of the browser's
        self._sites: dict[str, bool] = {}  # Host header -> whether posts to it are scanned
        self._sites_for: Settings | None = None  # the settings those answers are for

    def scanned_type(self, request: http.Request) -> str | None:
        """The content type a post's body is scanned as; None when it is not scanned: only a POST,
        PUT or PATCH of a text type to a scanned site is."""
        scanned = self._scanned(request)
        return None if scanned is None else scanned[0]

    def _scanned(self, request: http.Request) -> tuple[str, str | None] | None:
        """`scanned_type`, and the body's Content-Encoding."""
        settings = self.runtime.settings
        if settings is None or not _scanned_method(request):
            return None
        return self._scanned_post(settings, request)

    def _scanned_post(self, settings: Settings, request: http.Request) -> tuple[str, str | None] | None:
        """`_scanned` for a request whose method is scanned."""
        content_type, encoding, host = _post_headers(request)
        if content_type is None:
            content_type = "text/plain"
        if not is_text_type(content_type) or not self._scans_posts_to(settings, request, host):
            return None
        return content_type, encoding

    def _scans_posts_to(self, settings: Settings, request: http.Request, host: str | None) -> bool:
        """``settings.scans_posts_to(request.pretty_host)``, kept per Host header (or HTTP/2
        authority): mitmproxy's ``pretty_host`` parses and validates the header anew at each call."""
        header = (request.authority if request.data.http_version in _AUTHORITY_VERSIONS else "") or host
        if not header:
            return settings.scans_posts_to(request.pretty_host)
        if self._sites_for is not settings:
            self._sites, self._sites_for = {}, settings
        answer = self._sites.get(header)
        if answer is None:
            answer = settings.scans_posts_to(request.pretty_host)
            if len(self._sites) >= SITES_KEPT:
                self._sites.clear()
            self._sites[header] = answer
        return answer

    def scan(self, flow: http.HTTPFlow) -> Coroutine[Any, Any, None] | None:
        """Hold back a post that carries a block or warn link; log the audit ones.

        A plain function for the common post (a few links, none listed): it finds
        the links and looks them up in the index, and returns None. Only a large
        body (searched in a thread) or an index hit returns a coroutine to await.
        A streamed body is not here: `watch_stream` reads it as it passes.
        Its time is added to the ``linkwarn_share_scan_seconds`` metric.
        """
        started = perf_counter()
        try:
            return self._scan(flow)
        finally:
            self.runtime.metrics.scan.seconds += perf_counter() - started

    def _scan(self, flow: http.HTTPFlow) -> Coroutine[Any, Any, None] | None:
        request = flow.request
        settings = self.runtime.settings
        body = request.raw_content
        if settings is None or not settings.share or request.stream or not body:
            return None
        if len(body) > settings.share_max_body:
            return None
        scanned = self._scanned(request)
        if scanned is None:
            return None
        content_type, encoding = scanned
        if encoding is not None and encoding.lower() not in ("identity", ""):
            try:
                body = request.content or b""
            except ValueError:
                return None  # an encoding that cannot be read: passes untouched
        self.runtime.metrics.scan.posts += 1
        if len(body) > THREAD_THRESHOLD:
            return self._search_then_decide(flow, body, content_type)
        hits = self.screen(self.find(body, content_type))
        return None if not hits else self._decide_and_answer(flow, hits)

    def watch_stream(self, flow: http.HTTPFlow) -> None:
        """A post whose body mitmproxy will stream is read as it passes (`StreamedPost`)."""
        request = flow.request
        settings = self.runtime.settings
        if settings is None or not settings.share or not _scanned_method(request) or not may_stream(request):
            return  # the method first: every request is asked
        scanned = self._scanned_post(settings, request)
        if scanned is None or (scanned[1] or "identity").lower() not in ("identity", ""):
            return  # not scanned, or an encoding a chunk cannot be read in: passes untouched
        request.stream = StreamedPost(self, flow, scanned[0], settings.share_max_body)

    async def _search_then_decide(self, flow: http.HTTPFlow, body: bytes, content_type: str) -> None:
        links, seconds = await asyncio.to_thread(_timed_find_links, body, content_type)
        self.runtime.metrics.scan.seconds += seconds
        hits = self.screen(links)
        if hits:
            await self._decide_and_answer(flow, hits)

    def find(self, body: bytes, content_type: str) -> list[str]:
        """The links of a body that `screen` needs to see: those of its texts that name a host
        some entry could match (`find_links` with `Checker.reads_host` as its host test)."""
        checker = self.runtime.checker
        if checker is None:
            return []  # nothing can be screened: see `screen`
        return find_links(body, content_type, checker.reads_host if checker.screens_hosts else None)

    def screen(self, links: list[str]) -> list[tuple[str, Prefiltered]]:
        """The links whose expressions the index holds a prefix of. No I/O.

        Each link's host is screened first (`Checker.may_match`): most links
        go to hosts no entry names, and those need no canonicalization.
        """
        checker = self.runtime.checker
        if checker is None:
            return []  # the lists cannot be used: the post passes, as a request would (logged there)
        hits = []
        for url in links:
            if not checker.may_match(url):
                continue
            try:
                found = self.runtime.prefilter(url)
            except (InvalidURL, ListsUnavailable):
                continue
            if found is not None:
                hits.append((url, found))
        return hits

    async def _decide_and_answer(self, flow: http.HTTPFlow, hits: list[tuple[str, Prefiltered]]) -> None:
        listed = await self.decide_and_record(flow, hits)
        if not listed:
            return
        request = flow.request
        action = "block" if any(link.action == "block" for link in listed) else "warn"
        first = listed[0]
        logger.info(
            "linkwarn: held back a post to %s carrying %s", request.pretty_host, first.entry or "a hash"
        )
        flow.metadata[METADATA_KEY] = Decision(answered=True, action=f"share-{action}", entry=first.entry)
        header = f"share-{action}; entry={first.entry or 'sha256'}; links={len(listed)}"
        if request_kind(request) is not RequestKind.NAVIGATION:
            flow.response = http.Response.make(
                403,
                f"linkwarn: this post was not sent: it carries a listed link ({first.canonical})\n",
                {"content-type": "text/plain; charset=utf-8", "x-linkwarn": header_safe(header),
                 "cache-control": "no-store", "x-content-type-options": "nosniff"},
            )  # fmt: skip
            return
        now = time.time()
        post = HeldPost(
            client=client_of(flow),
            method=request.method,
            url=request_urls(flow)[0],
            headers=tuple(request.headers.fields),
            content=request.raw_content or b"",
            links=tuple(listed),
            action=action,
            expires_at=now + HOLD_SECONDS,
        )
        nonce = self.runtime.held_posts.hold(post, now)
        settings = self.runtime.require_settings()
        ticket = Token(
            Purpose.SHARE_TICKET,
            post.client,
            b"\0" * 32,
            int(post.expires_at),
            issued_ms=int(now * 1000),
            nonce=nonce,
        )
        location = f"https://{settings.own_host}/share?t={mint(self.runtime.secret, ticket)}"
        flow.response = redirect_response(location, x_linkwarn=header)

    async def decide_and_record(
        self, flow: http.HTTPFlow, hits: list[tuple[str, Prefiltered]]
    ) -> list[ListedLink]:
        """Confirm the hits; record the audit links, and the block and warn ones, which are returned."""
        listed, audited = await self._decide(hits)
        target = request_urls(flow)[0].split("?", 1)[0]
        for link in audited:
            self.record(flow, EventKind.SHARE_AUDIT, link, target)
        if not listed:
            return []
        action = "block" if any(link.action == "block" for link in listed) else "warn"
        self.runtime.metrics.decided(action, "share")
        for link in listed[:MAX_LINKS_SHOWN]:
            kind = EventKind.SHARE_BLOCKED if link.action == "block" else EventKind.SHARE_WARNED
            self.record(flow, kind, link, target)
        return listed

    async def _decide(self, hits: list[tuple[str, Prefiltered]]) -> tuple[list[ListedLink], list[ListedLink]]:
        """The block/warn links and the audit ones: per entry, the first link found (the most decoded)."""
        listed: list[ListedLink] = []
        audited: list[ListedLink] = []
        seen: set[bytes] = set()
        for url, found in hits:
            try:
                verdict = await self.runtime.confirm(url, found)
            except ListsUnavailable:
                continue
            if verdict.entry is None or verdict.entry.key in seen:
                continue
            seen.add(verdict.entry.key)
            if verdict.entry.action in (Action.BLOCK, Action.WARN):
                listed.append(_listed(url, verdict))
            elif verdict.entry.action is Action.AUDIT:
                audited.append(_listed(url, verdict))
        return listed, audited

    def record(self, flow: http.HTTPFlow, kind: EventKind, link: ListedLink, target: str) -> None:
        """The link and where it was posted; never the rest of the body."""
        if self.runtime.events is None:
            return
        self.runtime.events.record(
            Event(
                at=time.time(),
                kind=kind,
                client=client_of(flow),
                action=link.action,
                entry_key=link.key,
                expression=link.entry or None,
                source=link.source,
                url=link.canonical,
                detail=f"posted to {target}",
            )
        )
