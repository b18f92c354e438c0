"""Every name a request carries, and every place a response sends the browser next.

A request is checked under each of them, and the strictest verdict wins, so an
``allow`` on one name never excuses a ``block`` on another:

- the host of its URL (the authority of an absolute-form request, HTTP/2's
  ``:authority``), every ``Host`` header (several of them, comma-joined values,
  junk ports), the CONNECT target of its tunnel and the TLS SNI;
- its path as a browser would read it (a raw ``#`` starts a fragment) and as a
  server reads it (the ``#`` is part of the path).

A response's next hops are its ``Location`` (resolved against the request URL
by the WHATWG URL standard, through ada: backslashes, protocol-relative
references and surrounding whitespace as browsers read them) and a ``Refresh``
header's URL.
"""

from __future__ import annotations

import re

import ada_url
from mitmproxy import http

__all__ = ["next_hops", "request_urls"]

_REFRESH = re.compile(
    r"^\s*\d*(?:\.[\d.]*)?\s*[;,]?\s*(?:url\s*=\s*)?(['\"]?)(?P<url>.*?)\1\s*$", re.IGNORECASE | re.S
)
# Statuses whose Location a browser follows, plus 201 and 300, whose Location names a resource too.
LOCATION_STATUSES = frozenset({201, 300, 301, 302, 303, 305, 307, 308})


def host_name(value: str) -> str:
    """The host part of a Host header, an authority or an address, as a URL host (IPv6 in brackets)."""
    value = value.strip().lower().rstrip(".")
    if value.startswith("["):
        end = value.find("]")
        return value[: end + 1] if end > 0 else value
    if value.count(":") > 1:  # a bare IPv6 address, as mitmproxy hands over a request's host
        return f"[{value}]"
    return value.split(":", 1)[0]


def request_names(flow: http.HTTPFlow) -> list[str]:
    """The distinct host names of a request, the URL's first."""
    request = flow.request
    found = [request.host, request.authority]
    for value in request.headers.get_all("host"):
        found.extend(value.split(","))
    if flow.server_conn.address:
        found.append(str(flow.server_conn.address[0]))
    if flow.client_conn.sni:
        found.append(flow.client_conn.sni)
    names: list[str] = []
    for value in found:
        name = host_name(value) if value else ""
        if name and name not in names:
            names.append(name)
    return names


def request_urls(flow: http.HTTPFlow) -> list[str]:
    """The URLs to check for a request: each of its names with each reading of its path."""
    request = flow.request
    path = request.path if request.path.startswith("/") else "/" + request.path
    paths = [path]
    if "#" in path:
        paths.append(path.replace("#", "%23"))  # how the server will read it
    scheme = "https" if request.scheme == "https" else "http"
    return [f"{scheme}://{name}{p}" for name in request_names(flow) for p in paths]


def next_hops(flow: http.HTTPFlow) -> list[str]:
    """The absolute http(s) URLs a response sends the browser to: Location and Refresh."""
    response = flow.response
    if response is None:
        return []
    references = []
    if response.status_code in LOCATION_STATUSES or 300 <= response.status_code < 400:
        references.extend(response.headers.get_all("location"))
    for value in response.headers.get_all("refresh"):
        match = _REFRESH.match(value)
        if match and match.group("url").strip():
            references.append(match.group("url"))
    base = request_urls(flow)[0]
    hops = []
    for reference in references:
        try:
            target = ada_url.join_url(base, reference)
        except ValueError:
            continue  # no browser can follow it
        if target.startswith(("http://", "https://")) and target not in hops:
            hops.append(target)
    return hops
