"""What the extension's JavaScript tests check against, made by the proxy's own code at test time.

``python -m tests.support.jsfixtures DIR`` writes into *DIR*:

- ``psl.json``: the body the local API serves at ``GET /v1/psl`` (the suffix
  rules, which the repository does not hold a copy of);
- ``differential.json``: hosts with their `registrable_domain`, and URLs with
  what `canonicalize_traced`, `canonicalize_partial` and the checker's
  expressions make of them (or the error they raise), from a seeded random
  corpus of hostile spellings, so that extension/lib/canonical.js and psl.js are
  checked against the proxy on far more than the vector files.

tests/test_extension_js.py runs it into a temporary directory and passes it to
``node --test`` as ``LINKWARN_FIXTURES``; extension/test/fixtures.js runs it
itself when that is not set.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import Any

from blocklists.canonical import (
    canonicalize_partial,
    canonicalize_traced,
    expressions_of,
    registrable_domain,
    suffix_rules,
)
from blocklists.errors import InvalidURL
from proxy_addon.api import suffix_list_document

SEED = 15
URLS = 8000

_HOSTS = [
    "leak.test",
    "a.b.c.d.e.f.leak.test",
    "www.example.co.uk",
    "x.y.blogspot.com",
    "co.uk",
    "city.kawasaki.jp",
    "a.b.kawasaki.jp",
    "www.ck",
    "a.www.ck",
    "foo.ck",
    "b\u00fccher.test",
    "\u4f8b\u3048.jp",
    "xn--55qx5d.cn",
    "a.xn--55qx5d.cn",
    "\u516c\u53f8.cn",
    "10.11.12.13",
    "0x0a.0xb.014.13",
    "3279880203",
    "1.2.3.4.5",
    "[2001:db8::7]",
    "[::ffff:10.1.2.3]",
    "[::1.2.3.4]",
    "[fe80::1%25eth0]",
    "\u05d0\u05d1.test",
    "\u0627\u0644\u0639\u0631\u0628\u064a\u0629.test",
    "\uff41\uff42\uff43.test",
    "\u2100.test",
    "a\uff0fb.test",
    "\u00e9\u00a0x.test",
    "\u05d0 \u05d1.test",
    "\u00fc%20b.test",
    "\u00fc%2525b.test",
    "caf\u00e9\u3002test",
    "\u2488\u00fc.test",
    "\ufeff\u00fc.test",
    "\u00ad.test",
    "\u00fc\u200d.test",
    "a..b...test",
    "user@host.test",
    "host.test:8080",
    "host.test:\u00b2",
    "host.test:\u0663",
    "\u00fc:b.test",
    "[::1",
    "%5B::1%5D",
    "a%00b.test",
    "%C3%BC.test",
    "%C3.test",
    "\u00fc\u0338<.test",
    "x.github.io",
    "a.b.c.compute.amazonaws.com",
]
_SCHEMES = [
    "http://",
    "https://",
    "",
    "HTTP://",
    "//",
    "http:\\\\",
    "ftp://",
    "javascript:",
    "http:/",
    "ws://",
]
_PIECES = [
    *"abcXYZ019-._~/%?&=#@:;!$'()*+,[]\\ \t\u00e9\u4f8b\U0001f600\udcff",
    "%25",
    "%2e",
    "%2E",
    "%2F",
    "%3F",
    "%23",
    "%00",
    "%C3%A9",
    "%E4%BE%8B",
    "%FF",
    "/../",
    "/./",
    "//",
    "%252e",
]


_HOST_PIECES = [
    "a",
    "b",
    "z9",
    "-",
    ".",
    "..",
    "\u00fc",
    "\u00e9",
    "\u05d0",
    "\u0628",
    "\u0663",
    "1",
    "0x1",
    "08",
    "%20",
    "%25",
    "%2F",
    "%2E",
    "%00",
    "%C3%BC",
    "%D7%90",
    "%FF",
    " ",
    "\u00a0",
    "\uff0e",
    "\u3002",
    "\u2100",
    "\uff05",
    "\uff0f",
    "\u200d",
    "\u200c",
    "\u0338",
    "\u0301",
    "<",
    ">",
    "!",
    "$",
    ",",
    "^",
    "|",
    "xn--",
    "\u00ad",
    "\ufeff",
    "\u2488",
    "\u3000",
    "\ufe6a",
    "\uff20",
    "\u094d",
    "\U0001f600",
    ":",
    "[",
    "]",
]


def _random_host(rng: random.Random) -> str:
    return "".join(rng.choice(_HOST_PIECES) for _ in range(rng.randrange(1, 9))) + rng.choice(
        ["", ".test", ".jp"]
    )


def _one(text: str) -> dict[str, Any] | None:
    try:
        return {"url": canonicalize_traced(text).url}
    except InvalidURL as exc:
        return {"error": str(exc)}


def _case(rng: random.Random) -> dict[str, Any]:
    host = rng.choice(_HOSTS) if rng.random() < 0.6 else _random_host(rng)
    path = "".join(rng.choice(_PIECES) for _ in range(rng.randrange(0, 12)))
    url = rng.choice(_SCHEMES) + host + ("/" if rng.random() < 0.8 else "") + path
    case: dict[str, Any] = {"input": url, "whole": _one(url)}
    try:
        partial = canonicalize_partial(url)
        case["partial"] = {"url": partial.url}
    except InvalidURL as exc:
        case["partial"] = {"error": str(exc)}
        partial = None
    try:
        canonical = canonicalize_traced(url)
    except InvalidURL:
        canonical = partial
    case["expressions"] = None if canonical is None else expressions_of(canonical)
    return case


def _registrable_cases() -> list[list[str]]:
    hosts = set()
    for rule in suffix_rules():
        base = rule.removeprefix("!").removeprefix("*.")
        for extra in ("", "w.", "a.w.", "www.", "city.", "b.a.w."):
            hosts.add(extra + base)
    hosts.update(
        ["test", "leak.test", "a.leak.test", "co.uk", "a.b.c.d", "x.y:z", "[a]", "a.:b", "foo.xn--com-"]
    )
    return [[host, registrable_domain(host)] for host in sorted(hosts)]


def write(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "psl.json").write_bytes(suffix_list_document())
    rng = random.Random(SEED)
    cases = [_case(rng) for _ in range(URLS)]
    document = {"registrable": _registrable_cases(), "urls": cases}
    (directory / "differential.json").write_text(json.dumps(document, ensure_ascii=True), "utf-8")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m tests.support.jsfixtures DIRECTORY")
    write(Path(sys.argv[1]))
