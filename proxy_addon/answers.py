"""The responses linkwarn makes, and what it records on a flow: shared by the addon and the own origin.

`Decision` is the one frozen record a flow carries in ``flow.metadata["linkwarn"]``.
Every header value linkwarn writes goes through `header_safe`, so no URL,
reason or comment can put CR, LF or any other control byte into a response.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from mitmproxy import ctx, http
from mitmproxy.utils import human

from blocklists import Entry, Verdict
from blocklists.store import Event
from proxy_addon.events import EventKind
from proxy_addon.interstitial import CONTENT_SECURITY_POLICY
from proxy_addon.policy import Answer, RequestKind

__all__ = [
    "METADATA_KEY",
    "Decision",
    "client_of",
    "event_for",
    "header_safe",
    "may_stream",
    "page_response",
    "redirect_response",
    "referrer_host",
    "refusal_response",
    "request_kind",
]

METADATA_KEY = "linkwarn"
_UNSAFE = re.compile(r"[^\x20-\x7e]")
_UNSAFE_URL = re.compile(r"[^\x21-\x7e]")
_ASCII_PRINTABLE = "".join(chr(c) for c in range(0x21, 0x7F))


@dataclass(frozen=True, slots=True)
class Decision:
    """What linkwarn decided about a flow, for other addons and for the tests."""

    answer: Answer | None = None  # None: linkwarn answered for another reason (own origin, unavailable)
    action: str | None = None
    entry: str | None = None
    source: str | None = None
    canonical: str | None = None
    proceeded: bool = False
    own_origin: bool = False
    unavailable: str | None = None
    answered: bool = False  # linkwarn made the response itself: nothing was forwarded

    @classmethod
    def of(cls, entry: Entry, canonical: str, answer: Answer, *, proceeded: bool = False,
           answered: bool = False) -> Decision:  # fmt: skip
        answered = answered or answer in (Answer.PAGE, Answer.REFUSE)
        return cls(
            answer, str(entry.action), entry.label, entry.source, canonical, proceeded, answered=answered
        )


def client_of(flow: http.HTTPFlow) -> str:
    """Who a ticket or pass is bound to: the proxy-auth user when there is one, else the address."""
    auth = flow.metadata.get("proxyauth")
    if auth:
        return f"user:{auth[0]}"
    return f"addr:{flow.client_conn.peername[0]}" if flow.client_conn.peername else "addr:unknown"


def referrer_host(value: str | None) -> str | None:
    """The host of a Referer header, or None (absent or unreadable)."""
    try:
        return urlsplit(value).hostname if value else None
    except ValueError:
        return None


def event_for(
    flow: http.HTTPFlow,
    kind: EventKind,
    verdict: Verdict,
    detail: str | None = None,
    with_referrer: bool = True,
) -> Event | None:
    """The event recording *kind* for this flow's verdict; None when no entry matched."""
    entry = verdict.entry
    if entry is None:
        return None
    return Event(
        at=time.time(),
        kind=kind,
        client=client_of(flow),
        action=str(entry.action),
        entry_key=entry.key,
        expression=entry.expression,
        source=entry.source,
        url=verdict.canonical.url,
        referrer_host=referrer_host(flow.request.headers.get("referer")) if with_referrer else None,
        detail=detail,
    )


def header_safe(value: str, *, url: bool = False) -> str:
    """*value* with every control byte and non-ASCII character percent-encoded: never CR or LF.

    With *url*, spaces are encoded too, as a URL in a ``Location`` needs.
    """
    unsafe = _UNSAFE_URL if url else _UNSAFE
    if not unsafe.search(value):
        return value
    try:  # the bytes mitmproxy read (it decodes them with surrogateescape)
        raw = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raw = value.encode("utf-8", "surrogatepass")
    return quote(raw, safe=_ASCII_PRINTABLE if url else _ASCII_PRINTABLE + " ")


_PAGE_HEADERS = {
    "content-type": "text/html; charset=utf-8",
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    # "same-origin": the page's own forms carry its real Origin (under no-referrer
    # Chromium sends "Origin: null"), and nothing leaves for other sites.
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}


def page_response(status: int, html: str, **headers: str) -> http.Response:
    response = http.Response.make(status, html, _PAGE_HEADERS)
    for name, value in headers.items():
        response.headers[name.replace("_", "-")] = header_safe(value)
    return response


def redirect_response(location: str, *, status: int = 303, **headers: str) -> http.Response:
    response = http.Response.make(
        status,
        b"",
        {"location": header_safe(location, url=True), "cache-control": "no-store", "content-length": "0"},
    )
    for name, value in headers.items():
        response.headers[name.replace("_", "-")] = header_safe(value)
    return response


def refusal_response(entry: Entry, message: str) -> http.Response:
    text = f"linkwarn: {message}: {entry.label}" + (f" ({entry.reason})" if entry.reason else "") + "\n"
    return http.Response.make(
        403,
        text,
        {
            "content-type": "text/plain; charset=utf-8",
            "x-linkwarn": header_safe(f"{entry.action}; entry={entry.label}"),
            "cache-control": "no-store",
            "x-content-type-options": "nosniff",
        },
    )


def request_kind(request: http.Request) -> RequestKind:
    """What kind of request this is: by Sec-Fetch headers when the browser sends them, else by Accept."""
    if request.headers.get("upgrade", "").lower() == "websocket":
        return RequestKind.WEBSOCKET
    dest = request.headers.get("sec-fetch-dest")
    if dest is not None:
        navigation = dest == "document" and request.headers.get("sec-fetch-mode", "navigate") == "navigate"
    else:
        navigation = request.method in ("GET", "HEAD", "POST") and "text/html" in request.headers.get(
            "accept", ""
        )
    return RequestKind.NAVIGATION if navigation else RequestKind.SUBRESOURCE


def may_stream(request: http.Request) -> bool:
    """Whether mitmproxy may stream this request's body (``stream_large_bodies``) while reading it."""
    if request.stream:
        return True
    limit = getattr(
        ctx.options, "stream_large_bodies", None
    )  # absent where mitmproxy's proxy core is not loaded
    if not limit or request.method in ("GET", "HEAD", "OPTIONS"):
        return False
    length = request.headers.get("content-length")
    return length is None or not length.isdigit() or int(length) > (human.parse_size(limit) or 0)
