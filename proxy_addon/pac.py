"""Proxy auto-config (PAC) files that send browsers through linkwarn.

`render_pac` writes the ``FindProxyForURL`` function browsers and operating
systems evaluate: every request goes to the proxy (``PROXY host:port``), except
hosts IT lists as ``DIRECT``. There is deliberately no fallback to ``DIRECT``
when the proxy is unreachable: a browser that silently went direct would also
go unchecked. Served by the own origin at ``/proxy.pac`` and printed by
``linkwarn pac``.

A DIRECT host never reaches the proxy, so linkwarn never checks it: list only
hosts the company runs itself (intranet, the feed server), never a site people
could be sent to.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

__all__ = ["PAC_MEDIA_TYPE", "parse_direct_patterns", "render_pac"]

PAC_MEDIA_TYPE = "application/x-ns-proxy-autoconfig"
_PATTERN = re.compile(r"^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")
_ADDRESS = re.compile(r"^[A-Za-z0-9.\-]+:\d{1,5}$|^\[[0-9A-Fa-f:.]+\]:\d{1,5}$")


def parse_direct_patterns(patterns: Iterable[str]) -> tuple[str, ...]:
    """Host patterns for DIRECT: ``host.example`` (that host and its subdomains) or ``*.host.example``.

    Raises ValueError naming a pattern that is not one of those (no other wildcards,
    no schemes, ports or paths): a PAC file is code, and nothing else goes into it.
    """
    parsed = []
    for pattern in patterns:
        value = pattern.strip().lower().rstrip(".")
        if not _PATTERN.match(value):
            raise ValueError(f"{pattern!r} is not a host pattern such as intranet.example or *.corp.example")
        parsed.append(value)
    return tuple(dict.fromkeys(parsed))


def render_pac(proxy: str, direct: Iterable[str] = ()) -> str:
    """The PAC file sending everything to *proxy* (``host:port``) but the *direct* patterns.

    Raises ValueError for a *proxy* that is not ``host:port`` or a bad pattern.
    """
    if not _ADDRESS.match(proxy):
        raise ValueError(f"{proxy!r} is not HOST:PORT")
    patterns = parse_direct_patterns(direct)
    lines = [
        "// linkwarn: every request goes through the proxy, which checks it against the lists.",
        "// Hosts listed DIRECT bypass the proxy and are never checked.",
        "function FindProxyForURL(url, host) {",
        "  host = host.toLowerCase();",
    ]
    for pattern in patterns:
        if pattern.startswith("*."):
            test = f"shExpMatch(host, {json.dumps(pattern)})"
        else:
            test = f"host == {json.dumps(pattern)} || dnsDomainIs(host, {json.dumps('.' + pattern)})"
        lines.append(f'  if ({test}) return "DIRECT";')
    lines += [f"  return {json.dumps('PROXY ' + proxy)};", "}", ""]
    return "\n".join(lines)
