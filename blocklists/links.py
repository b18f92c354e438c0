"""Find the links in a request body: what a post, a message or a paste would pass on. Pure.

`find_links` takes a body and its content type and returns the URLs in it,
as candidates for the same matcher a request goes through. It reads the body
the way the receiving site will: form fields decoded, JSON strings decoded
(``\\/`` and ``\\uXXXX`` included), multipart text parts one by one, HTML with
its entities resolved, and plain text; in every text it also reads the
percent-decoded form, so a link spelled ``mirror%2Etest%2Ffilm`` is found.
Links are full URLs (``https://...``) and bare ones (``www.mirror.test/film``,
``mirror.test/film``): a bare candidate costs one index lookup, and only a
listed one matters, so being generous here costs nothing in false warnings.

Everything is linear in the body's size and bounded (`MAX_LINKS` links,
`MAX_DEPTH` levels of nesting), so a hostile body cannot make it slow.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from email.parser import BytesParser
from email.policy import HTTP
from itertools import pairwise
from urllib.parse import unquote

__all__ = ["MAX_LINKS", "find_links", "is_text_type", "percent_decoded"]

MAX_LINKS = 1000
MAX_DEPTH = 8
MAX_FIELDS = 10_000  # of a form body
MAX_UNQUOTE = 3  # percent-decoding rounds, for links escaped more than once
SPLIT_WINDOW = 2048  # how much of each side of a boundary between two form fields is read together

_TEXT_TYPES = (
    "text/",
    "application/json",
    "application/x-www-form-urlencoded",
    "multipart/form-data",
    "multipart/mixed",
    "application/xml",
    "application/xhtml+xml",
    "application/javascript",
    "application/graphql",
    "application/ld+json",
    "application/x-ndjson",
)
# A URL with a scheme, or a bare host with a dot and a path or a www. Hosts may be
# international (any letter), and the path runs to the first character that cannot
# be part of a link in running text.
_LINK = re.compile(
    r"""(?ix)
    (?:https?:(?://|\\\\)[^\s"'<>`{}|^\[\]]*(?:\[[^\s\]]*\][^\s"'<>`]*)?   # scheme://... (IPv6 too)
    | (?<![\w@.-])(?:www\.)?(?:[\w-]+\.)+[^\W\d_]{2,}\.?(?::\d{1,5})?(?:[/\\][^\s"'<>`{}|^]*)?  # host/path
    )
    """
)
_LONE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")  # a "%" that is no escape, which unquote keeps
_TRAILING = ".,;:!?)]}'\""
_RUN = re.compile(r"[^\s\"'<>`]*")  # a run of text up to a delimiter (read backwards on reversed text)
MAX_TOKEN = 4096  # how far back from a dot a link may start
# Full stops that browsers read as "." in a host name (UTS #46): ideographic, fullwidth, halfwidth.
_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})


def _runs_around(text: str, anchor: str) -> Iterator[str]:
    """The runs of text between delimiters that hold *anchor*.

    Found with str.find and two anchored matches, which are fast; the link
    pattern then runs on these few short runs instead of at every position.
    """
    position, find, width = 0, text.find, len(anchor)
    while True:
        at = find(anchor, position)
        if at < 0:
            return
        before = _RUN.match(text[max(position, at - MAX_TOKEN) : at][::-1])
        start = at - (before.end() if before else 0)
        after = _RUN.match(text, at)
        end = max(after.end() if after else 0, at + width)
        yield text[start:end]
        position = end


def _candidate_runs(text: str) -> Iterator[str]:
    """The runs of text a link can be in: those holding a dot, and those holding a scheme's
    ``://`` (or ``:\\``) but no dot, for a link to a host without one (``http://168496141/``).

    The second kind is looked for only when some ``://`` was in no run of the first.
    """
    schemes = text.count("://") + text.count(":\\")
    for run in _runs_around(text, "."):
        if schemes:
            schemes -= run.count("://") + run.count(":\\")
        yield run
    if schemes:
        for anchor in ("://", ":\\"):
            yield from (run for run in _runs_around(text, anchor) if "." not in run)


def _split_link(before: str, after: str) -> str:
    """A link split across two form fields: the run of text that ends one and the run that starts
    the next, read together (a link has no delimiter in it, so nothing else can join them)."""
    tail = _RUN.match(before[-SPLIT_WINDOW:][::-1])
    head = _RUN.match(after, 0, SPLIT_WINDOW)
    tail_text = before[len(before) - tail.end() :] if tail and tail.end() else ""
    head_text = head.group() if head else ""
    return tail_text + head_text if tail_text and head_text else ""


def is_text_type(content_type: str) -> bool:
    """Whether a body of this content type is text a link could be in."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media.startswith(_TEXT_TYPES) or media.endswith(("+json", "+xml"))


def _charset(content_type: str) -> str:
    match = re.search(r"charset=\"?([\w.:-]+)", content_type, re.IGNORECASE)
    return match.group(1) if match else "utf-8"


def _decode(body: bytes, content_type: str) -> str:
    try:
        return body.decode(_charset(content_type), "replace")
    except LookupError:
        return body.decode("utf-8", "replace")


def _json_strings(value: object, depth: int = 0) -> Iterator[str]:
    if depth > MAX_DEPTH * 8:
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _json_strings(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            yield from _json_strings(item, depth + 1)


def _texts(body: bytes, content_type: str, depth: int = 0) -> Iterator[str]:
    """The texts of a body as its receiver reads them: the decoded fields or strings, else the text.

    A form or JSON body that parses is read as its values (a raw reading would
    only find the same links again, less decoded); anything else as text, with
    its HTML entities resolved where it has any.
    """
    media = content_type.split(";", 1)[0].strip().lower()
    text = _decode(body, content_type)
    if depth < MAX_DEPTH:
        if media == "application/x-www-form-urlencoded":
            values, names = _form_fields(text)
            if values or names:
                yield from values
                yield from names
                for before, after in pairwise(values):
                    joined = _split_link(before, after)
                    if joined:
                        yield joined
                return
        elif media.startswith("multipart/"):
            yield from _multipart(body, content_type, depth)
        elif media.endswith("json") or media == "application/x-ndjson":
            parsed = False
            for line in text.splitlines() if "ndjson" in media else [text]:
                try:
                    value = json.loads(line)
                except (ValueError, RecursionError):
                    continue  # not JSON after all: read as text below
                parsed = True
                yield from _json_strings(value)
            if parsed:
                return
    yield text


def _multipart(body: bytes, content_type: str, depth: int) -> Iterator[str]:
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n" + body
    )
    for part in message.walk():
        if part.is_multipart():
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        part_type = part.get_content_type() if part.get("content-type") else "text/plain"
        if is_text_type(part_type):
            yield from _texts(payload, str(part.get("content-type", "text/plain")), depth + 1)
        filename = part.get_filename()
        if filename:
            yield filename


def _form_fields(text: str) -> tuple[list[str], list[str]]:
    """The values and the names of a form body, decoded, in order; empty ones left out.

    As the WHATWG ``application/x-www-form-urlencoded`` parser reads them:
    fields split at ``&``, name and value at the first ``=``, ``+`` a space.
    Names too, since a body without an ``=`` is all name.
    """
    values: list[str] = []
    names: list[str] = []
    for field in text.split("&", MAX_FIELDS)[:MAX_FIELDS]:
        name, _, value = field.partition("=")
        for part, into in ((value, values), (name, names)):
            if part:
                part = part.replace("+", " ")
                into.append(percent_decoded(part) if "%" in part else part)
    return values, names


def percent_decoded(text: str) -> str:
    """*text* with its percent escapes decoded as UTF-8 (invalid bytes replaced), as
    `urllib.parse.unquote` decodes it, faster for the ASCII text a form body is: there the
    escapes are decoded in one pass by Python's own ``unicode_escape`` codec."""
    if "%" not in text:
        return text
    if not text.isascii() or _LONE_PERCENT.search(text):
        return unquote(text)
    octets = text.replace("\\", "\\\\").replace("%", "\\x").encode("ascii").decode("unicode_escape")
    return octets.encode("latin-1").decode("utf-8", "replace")


def _unquoted(text: str) -> Iterator[str]:
    """*text*, then its percent-decoded forms while decoding changes it."""
    yield text
    for _ in range(MAX_UNQUOTE):
        if "%" not in text:
            return
        decoded = percent_decoded(text)
        if decoded == text:
            return
        text = decoded
        yield text


def find_links(body: bytes, content_type: str) -> list[str]:
    """The distinct links in a request body, as absolute http(s) URLs where they were bare."""
    found: dict[str, None] = {}
    for text in _texts(body, content_type):
        readings = list(_unquoted(text))
        if "&#" in text or "&amp;" in text:
            readings.extend(_unquoted(html.unescape(text)))  # entities inside a field or a JSON string
        for reading in readings:
            if not reading.isascii() and ("\u3002" in reading or "\uff0e" in reading or "\uff61" in reading):
                reading = reading.translate(_DOTS)
            for match in (m for token in _candidate_runs(reading) for m in _LINK.finditer(token)):
                link = match.group().rstrip(_TRAILING)
                if not link:
                    continue
                if not link.lower().startswith(("http:", "https:")):
                    link = "http://" + link
                found.setdefault(link, None)
                if len(found) >= MAX_LINKS:
                    return list(found)
    return list(found)
