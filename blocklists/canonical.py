"""Canonicalize URLs and derive their lookup expressions.

The rules are Google Safe Browsing's ("URLs and hashing", v4), with the v5 rule
for host suffixes: the shortest host tried is the registrable domain (eTLD+1
from the Public Suffix List, private section included), so a listed
``a.b.blogspot.com`` never widens into the whole platform.

Everything here is pure: no I/O, no global state but two bounded caches.
Unescaping is linear in the input length, so a hostile URL made of
``%252525...`` cannot make it quadratic.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass

import ada_url
import tldextract

from .errors import InvalidURL

__all__ = [
    "Canonical",
    "InvalidURL",
    "canonicalize",
    "canonicalize_partial",
    "canonicalize_traced",
    "expressions",
    "expressions_of",
    "host_expressions",
    "path_expressions",
    "plain_canonical_host",
    "plain_host",
    "registrable_domain",
    "suffix_rules",
]

MAX_HOSTS = 5
MAX_PATH_PREFIXES = 4
MAX_URL_LENGTH = 64 * 1024

# Schemes whose authority the browser parses leniently (WHATWG "special" schemes):
# any run of slashes or backslashes may follow the colon, and a backslash
# separates path segments.
_SPECIAL_SCHEMES = frozenset({"http", "https", "ws", "wss", "ftp"})
# Schemes that never have a host, even when what follows looks like a port.
_HOSTLESS_SCHEMES = frozenset(
    {"about", "blob", "chrome", "data", "file", "javascript", "mailto", "sms", "tel", "view-source"}
)
# What the WHATWG URL parser strips from both ends of its input: C0 controls and space.
_C0_AND_SPACE = "".join(chr(c) for c in range(0x21))
_SCHEME = re.compile(r"([a-zA-Z][a-zA-Z0-9+.\-]*):")
_PORT_LIKE = re.compile(r"\d*(?:[/?\\]|$)")
_HEX = frozenset("0123456789abcdefABCDEF")
_TO_ESCAPE = re.compile(r"[\x00-\x20\x7f-\xff#%]")
# Lower-case ASCII only: a host that is not valid UTF-8 is kept one character per
# byte, and str.lower() would turn the byte 0xC2 into 0xE2.
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_IPV4_PART = re.compile(r"0[xX][0-9a-fA-F]*|0[0-7]*|[1-9][0-9]*")
# Characters that cannot be part of a host once it is unescaped: a browser
# refuses such a host, so a URL that has one is not a URL anyone can open.
_FORBIDDEN_HOST_CHARS = frozenset("/\\?@")
# An http(s) URL whose authority is only ASCII letters, digits, hyphens and dots, and a port.
_PLAIN_NAME = re.compile(r"[a-z0-9-]+(?:\.[a-z0-9-]+)*\.?")  # lowercase LDH labels, no empty one
_PLAIN_AUTHORITY = re.compile(r"[hH][tT][tT][pP][sS]?://([a-zA-Z0-9.-]+)(?::[0-9]*)?(?=[/?#]|\Z)")


@dataclass(frozen=True, slots=True)
class Canonical:
    """A canonical URL in parts, with the steps that produced it."""

    scheme: str
    host: str
    path: str
    query: str | None
    is_ip: bool
    steps: tuple[str, ...] = ()
    partial: bool = False  # only the host and a path prefix could be read (see `canonicalize_partial`)

    @property
    def url(self) -> str:
        query = "" if self.query is None else "?" + self.query
        return f"{self.scheme}://{self.host}{self.path}{query}"


def canonicalize(url: str) -> str:
    """Return the Safe Browsing canonical form of *url*, scheme included.

    >>> canonicalize("http://host/%25%32%35")
    'http://host/%25'

    Raises `InvalidURL` when the input has no usable host.
    """
    return canonicalize_traced(url).url


def canonicalize_traced(url: str) -> Canonical:
    """Like `canonicalize`, but keep the parts and a human-readable trace."""
    if not isinstance(url, str):
        raise InvalidURL(f"expected a URL string, got {type(url).__name__}")
    if len(url) > MAX_URL_LENGTH:
        raise InvalidURL(f"URL is {len(url)} characters long, over the limit of {MAX_URL_LENGTH}")
    steps: list[str] = []

    text = url.strip(_C0_AND_SPACE)
    if "\t" in text or "\r" in text or "\n" in text:
        text = text.replace("\t", "").replace("\r", "").replace("\n", "")
        steps.append("removed tab, CR and LF characters")
    if not text:
        raise InvalidURL("empty URL")

    hash_at = text.find("#")
    if hash_at >= 0:
        text = text[:hash_at]
        steps.append("dropped the fragment")

    scheme, rest = _split_scheme(text, steps)

    query_at = rest.find("?")
    if query_at >= 0:
        before, query = rest[:query_at], rest[query_at + 1 :]
    else:
        before, query = rest, None
    if scheme in _SPECIAL_SCHEMES and "\\" in before:
        before = before.replace("\\", "/")
        steps.append("read backslashes as slashes, as browsers do")
    slash_at = before.find("/")
    if slash_at >= 0:
        authority, path = before[:slash_at], before[slash_at:]
    else:
        authority, path = before, "/"

    host, is_ip = _canonical_host(authority, steps)
    path = _canonical_path(path, steps)
    if query is not None:
        raw_query = query
        query = _escape(_unescape(_to_bytes(query)))
        if query != raw_query:
            steps.append(f"query unescaped and re-escaped: {query!r}")
    return Canonical(scheme, host, path, query, is_ip, tuple(steps))


PARTIAL_PATH = 4096


def canonicalize_partial(url: str) -> Canonical:
    """What can be read of a URL that `canonicalize_traced` refuses: its host and a path prefix.

    Doubt is never "not listed": a URL too long to canonicalize, or with a junk
    port, is still decided on its host and the first `PARTIAL_PATH` characters
    of its path, cut back to a ``/``, so host, domain and path-prefix entries
    match it; only an entry for the exact page cannot. The result has no query
    and ``partial=True``. Raises `InvalidURL` when not even a host can be read.
    """
    if not isinstance(url, str):
        raise InvalidURL(f"expected a URL string, got {type(url).__name__}")
    steps = ["read only the host and a path prefix: the whole URL cannot be canonicalized"]
    text = url[:MAX_URL_LENGTH].strip(_C0_AND_SPACE).replace("\t", "").replace("\r", "").replace("\n", "")
    text = text.split("#", 1)[0]
    scheme, rest = _split_scheme(text, steps)
    before = rest.split("?", 1)[0]
    if scheme in _SPECIAL_SCHEMES:
        before = before.replace("\\", "/")
    authority, _, path = before.partition("/")
    authority = authority[authority.rfind("@") + 1 :]
    if not authority.startswith("["):
        authority = authority.split(":", 1)[0]  # a junk port says nothing about the host
    elif "]" in authority:
        authority = authority[: authority.index("]") + 1]
    host, is_ip = _canonical_host(authority, steps)
    path = "/" + path[:PARTIAL_PATH]
    path = path[: path.rfind("/") + 1]
    return Canonical(scheme, host, _canonical_path(path, steps), None, is_ip, tuple(steps), partial=True)


def plain_host(url: str) -> str | None:
    """The host of *url* when it can be read without canonicalizing the whole URL, else None.

    That is an ``http://`` or ``https://`` URL whose authority is nothing but
    ASCII letters, digits, hyphens and dots, and perhaps a port: no user name,
    no escape, no backslash, no character that UTS #46 maps. Its host is the one
    `canonicalize` reads, before the host's own steps (case, dots, IPv4
    spellings), which `canonicalize` applies to it alike. A link scanner can
    then ask about the host alone (`Checker.may_match`) and canonicalize only
    the URLs whose host could be listed.
    """
    match = _PLAIN_AUTHORITY.match(url)
    return None if match is None else match.group(1)


def plain_canonical_host(name: str) -> tuple[str, bool] | None:
    """The canonical host of a plain host *name*, and whether it is an address; else None.

    Plain: ASCII letters, digits and hyphens in labels with no empty one but a
    trailing dot, and no ``xn--`` label. UTS #46 maps such a name only to lower
    case, so it is canonical once lowered and its trailing dot dropped (or read
    as an IPv4 address). A shortcut for the names connections and links carry
    most, equal to what `canonicalize` reads for them (a test holds it so);
    None means: canonicalize the name whole.
    """
    lowered = name.lower() if name.isascii() else ""
    if not lowered or _PLAIN_NAME.fullmatch(lowered) is None or "xn--" in lowered:
        return None
    host = lowered.rstrip(".")
    ipv4 = _parse_ipv4(host)
    return (host, False) if ipv4 is None else (ipv4, True)


def _split_scheme(text: str, steps: list[str]) -> tuple[str, str]:
    match = _SCHEME.match(text)
    if match is not None:
        scheme = match.group(1).lower()
        after = text[match.end() :]
        if scheme in _SPECIAL_SCHEMES:
            return scheme, after.lstrip("/\\")
        if after.startswith("//"):
            return scheme, after[2:]
        if scheme in _HOSTLESS_SCHEMES or not _PORT_LIKE.match(after):
            # "javascript:...", "mailto:...", "data:...": there is no host to look up.
            raise InvalidURL(f"scheme {scheme!r} has no host")
        # "host:8080/path": a bare host with a port, not a scheme.
    steps.append("no scheme: assumed http://")
    return "http", text.lstrip("/\\")


def _canonical_host(authority: str, steps: list[str]) -> tuple[str, bool]:
    at = authority.rfind("@")
    if at >= 0:
        authority = authority[at + 1 :]
        steps.append("dropped the user name and password")

    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            raise InvalidURL(f"unterminated IPv6 address in {authority!r}")
        literal, port = authority[1:end], authority[end + 1 :]
        if port and not ((port[0] == ":" and port[1:].isdigit()) or port == ":"):
            raise InvalidURL(f"junk after IPv6 address: {port!r}")
        try:
            address = ipaddress.IPv6Address(literal)
        except ValueError as exc:
            raise InvalidURL(f"invalid IPv6 address {literal!r}") from exc
        if port:
            steps.append("dropped the port")
        ipv4 = _embedded_ipv4(address)
        if ipv4 is not None:
            steps.append(f"IPv6 address [{literal}] reaches the IPv4 address {ipv4}")
            return ipv4, True
        return f"[{address.compressed}]", True

    colon = authority.rfind(":")
    if colon >= 0:
        port = authority[colon + 1 :]
        if port and not port.isdigit():
            raise InvalidURL(f"invalid port {port!r}")
        authority = authority[:colon]
        steps.append("dropped the port")

    raw = authority
    host = _unescape(_to_bytes(authority))
    if host != raw:
        shown = host.encode("latin-1").decode("utf-8", "backslashreplace")
        steps.append(f"host unescaped: {shown!r}")
    host = _decode_host(host, steps)

    dotted = ".".join(label for label in host.split(".") if label)
    if dotted != host:
        steps.append("removed leading, trailing and repeated dots in the host")
    host = dotted.lower() if dotted.isascii() else dotted.translate(_ASCII_LOWER)
    if not host:
        raise InvalidURL(f"no host in {raw!r}" if raw else "no host")
    if not _FORBIDDEN_HOST_CHARS.isdisjoint(host):
        raise InvalidURL(f"host {host!r} contains a character no browser accepts in a host")

    ipv4 = _parse_ipv4(host)
    if ipv4 is not None:
        if ipv4 != host:
            steps.append(f"IPv4 address {host!r} written as {ipv4!r}")
        return ipv4, True
    return _escape(host), False


def _decode_host(host: str, steps: list[str]) -> str:
    """Turn an unescaped host (one character per byte) into ASCII, by UTS #46 as browsers do.

    The mapping is the WHATWG URL standard's (``domainToASCII``, non-transitional,
    through ada, the parser Node.js uses), so ``http://☃-⌘.com`` is
    ``xn----dqo34k.com`` here as in the address bar.
    """
    if host.isascii():
        return host
    try:
        text = host.encode("latin-1").decode("utf-8")
    except UnicodeDecodeError:
        return host  # not UTF-8: keep the bytes; they are re-escaped later
    try:
        ascii_host = ada_url.idna_to_ascii(text).decode("ascii")
    except (ValueError, UnicodeError):
        ascii_host = ""
    if not ascii_host:
        return host  # no browser opens it; keep the bytes, re-escaped later
    steps.append(f"international host {text!r} converted to punycode {ascii_host!r}")
    return ascii_host


def _embedded_ipv4(address: ipaddress.IPv6Address) -> str | None:
    """The IPv4 address an IPv4-mapped (::ffff:a.b.c.d) or IPv4-compatible (::a.b.c.d) address reaches."""
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    packed = address.packed
    if packed[:12] == bytes(12) and int.from_bytes(packed[12:]) > 1:  # not :: or ::1
        return str(ipaddress.IPv4Address(packed[12:]))
    return None


def _parse_ipv4(host: str) -> str | None:
    """Return dotted-decimal form if *host* is any legal IPv4 spelling, else None."""
    last = host.rfind(".") + 1
    if not host[last : last + 1].isdigit():
        return None  # every part starts with a digit: most names fail at the last one
    parts = host.split(".")
    if len(parts) > 4 or not host[-1].isalnum() or not all(map(_IPV4_PART.fullmatch, parts)):
        return None
    values: list[int] = []
    for part in parts:
        if part[:2] in ("0x", "0X"):
            values.append(int(part[2:] or "0", 16))
        elif len(part) > 1 and part[0] == "0":
            values.append(int(part, 8))
        else:
            values.append(int(part))
    *head, last = values
    if any(v > 255 for v in head) or last >= 256 ** (5 - len(values)):
        return None
    number = last
    for index, value in enumerate(head):
        number += value << (8 * (3 - index))
    return str(ipaddress.IPv4Address(number))


def _canonical_path(path: str, steps: list[str]) -> str:
    raw = path
    path = _unescape(_to_bytes(path))
    if not path.startswith("/"):
        path = "/" + path
    if "/." in path or "//" in path:
        segments: list[str] = []
        parts = path.split("/")[1:]
        for part in parts:
            if part in ("", "."):
                continue
            if part == "..":
                if segments:
                    segments.pop()
                continue
            segments.append(part)
        trailing = parts[-1] in ("", ".", "..")
        path = "/" + "/".join(segments) + ("/" if trailing and segments else "")
    # A raw backslash in a path is a "/" to a browser, so one that survives to
    # here came from "%5C"; a "?" here came from "%3F" (the query was split off
    # before). Keep both escaped, or the canonical form read again would name
    # another path, or a query: "view%3Fid=7" is the path "view?id=7", not "view".
    path = _escape(path).replace("\\", "%5C").replace("?", "%3F")
    if path != raw:
        steps.append(f"path {raw!r} -> {path!r} (unescaped, dot segments and // resolved)")
    return path


def _to_bytes(text: str) -> str:
    """Represent *text* as its UTF-8 bytes, one character per byte.

    Text read off the wire may hold bytes that were not UTF-8, decoded as lone
    surrogates (Python's ``surrogateescape``): those become their own bytes again.
    """
    if text.isascii():
        return text
    try:
        return text.encode("utf-8", "surrogateescape").decode("latin-1")
    except UnicodeEncodeError:  # a lone surrogate that stands for no byte
        return text.encode("utf-8", "surrogatepass").decode("latin-1")


def _unescape(text: str) -> str:
    """Percent-unescape until no escape is left, in one linear pass.

    Decoding can only create a new escape that ends at the decoded character,
    so re-checking the tail after each reduction reaches the same fixed point as
    unescaping the whole string again and again.
    """
    if "%" not in text:
        return text
    out: list[str] = []
    for char in text:
        out.append(char)
        while len(out) >= 3 and out[-3] == "%" and out[-2] in _HEX and out[-1] in _HEX:
            decoded = chr(int(out[-2] + out[-1], 16))
            del out[-3:]
            out.append(decoded)
    return "".join(out)


def _escape(text: str) -> str:
    """Percent-escape bytes <= 0x20, >= 0x7f, '#' and '%' with upper-case hex."""
    if _TO_ESCAPE.search(text) is None:
        return text
    return _TO_ESCAPE.sub(lambda m: f"%{ord(m.group()):02X}", text)


@functools.cache
def _extractor() -> tldextract.TLDExtract:
    # Offline by construction: no suffix-list URLs, no cache directory, so the
    # snapshot bundled with tldextract is the only source.
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, include_psl_private_domains=True)


@functools.cache
def suffix_rules() -> tuple[str, ...]:
    """The Public Suffix List rules `registrable_domain` follows, sorted, each label in ASCII.

    tldextract's bundled snapshot, private section included (``*.ck``,
    ``!www.ck``, ``blogspot.com``...), with international labels as their
    A-labels (``公司.cn`` is ``xn--55qx5d.cn``): the form a canonical host has,
    so that another implementation can match hosts label by label as
    tldextract does after decoding them.
    """
    rules = set()
    for rule in _extractor().tlds:
        mark = "!" if rule.startswith("!") else ""
        labels = rule.removeprefix("!").split(".")
        ascii_labels = [label if label.isascii() else "xn--" + label.encode("punycode").decode("ascii")
                        for label in labels]  # fmt: skip
        rules.add(mark + ".".join(ascii_labels))
    return tuple(sorted(rules))


@functools.lru_cache(maxsize=65536)
def registrable_domain(host: str) -> str:
    """The eTLD+1 of *host*, "" when *host* is itself a public suffix.

    A host under a suffix the list does not know (``.test``, ``.example``,
    an intranet name) is treated as if its last label were the suffix.
    """
    result = _extractor().extract_str(host)
    if result.suffix:
        return result.top_domain_under_public_suffix
    labels = host.split(".")
    return ".".join(labels[-2:])


@functools.lru_cache(maxsize=65536)
def host_expressions(host: str, is_ip: bool = False) -> tuple[str, ...]:
    """The exact host, then up to four hosts from deepest to the registrable domain."""
    if is_ip:
        return (host,)
    registrable = registrable_domain(host)
    if not registrable or registrable == host:
        return (host,)
    labels = host.split(".")
    base = registrable.count(".") + 1
    hosts = [host]
    for extra in range(MAX_HOSTS - 2, -1, -1):
        count = base + extra
        if count < len(labels):
            hosts.append(".".join(labels[-count:]))
    return tuple(hosts)


def path_expressions(path: str, query: str | None) -> list[str]:
    """Exact path with query, exact path, then up to four prefixes from the root."""
    paths = []
    if query is not None:
        paths.append(f"{path}?{query}")
    paths.append(path)
    prefix = "/"
    if prefix != path:
        paths.append(prefix)
    for component in path.split("/")[1:-1][: MAX_PATH_PREFIXES - 1]:
        prefix = f"{prefix}{component}/"
        if prefix != path:
            paths.append(prefix)
    return paths


def expressions_of(canonical: Canonical) -> list[str]:
    """All lookup expressions of an already canonical URL, most specific host first."""
    paths = path_expressions(canonical.path, canonical.query)
    return [host + path for host in host_expressions(canonical.host, canonical.is_ip) for path in paths]


def expressions(url: str) -> list[str]:
    """The host-suffix/path-prefix lookup expressions of *url*.

    >>> expressions("http://a.b.c/1/2.html?param=1")[:4]
    ['a.b.c/1/2.html?param=1', 'a.b.c/1/2.html', 'a.b.c/', 'a.b.c/1/']
    """
    return expressions_of(canonicalize_traced(url))
