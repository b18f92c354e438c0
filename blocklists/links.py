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

A caller that only wants the links a list could match passes a host test
(``host_may_match``, `Checker.reads_host`): each text is then read for its
host names first (`link_hosts`, one cheap pass), and only a text with a host
the test does not clear, or with a link whose host cannot be read on its own,
is searched link by link. Most posts link to hosts no entry names, and those
are never searched.

The two readers every post goes through, its hosts (`link_hosts`) and a form's
fields, are compiled from ``_scan.c`` where it was built at install (`COMPILED`)
and read ASCII texts there, with the same answers as the Python functions beside
them, which read every other text.
"""

from __future__ import annotations

import codecs
import functools
import html
import json
import re
from collections.abc import Callable, Iterator
from email.parser import BytesParser
from email.policy import HTTP
from itertools import pairwise
from typing import cast
from urllib.parse import unquote

__all__ = ["COMPILED", "MAX_LINKS", "find_links", "is_text_type", "link_hosts", "percent_decoded"]

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
# Typographic quotes and guillemets end a link as straight quotes do: no URL holds one unescaped,
# and a link quoted in running text ("“https://mirror.test”") is read without them.
QUOTES = "\u201c\u201d\u2018\u2019\u00ab\u00bb\u201e\u201a\u2039\u203a"
_LINK = re.compile(
    r"""(?ix)
    (?:https?:(?://|\\\\)[^\s"'<>`{}|^\[\]¤]*(?:\[[^\s\]]*\][^\s"'<>`¤]*)?   # scheme://... (IPv6 too)
    | (?<![\w@.-])(?:www\.)?(?:[\w-]+\.)+[^\W\d_]{2,}\.?(?::\d{1,5})?(?:[/\\][^\s"'<>`{}|^¤]*)?  # host/path
    )
    """.replace("¤", QUOTES)
)
_TRAILING = ".,;:!?)]}'\""
_RUN = re.compile(rf"[^\s\"'<>`{QUOTES}]*")  # text up to a delimiter (read backwards on reversed text)
MAX_TOKEN = 4096  # how far back from a dot a link may start
# Full stops that browsers read as "." in a host name (UTS #46): ideographic, fullwidth, halfwidth.
_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})
# For `link_hosts`: a run of the characters a plain host is made of; the host a bare link (the
# second branch of _LINK) reads at the start of such a run (_LINK's classes, on ASCII); how far
# a link with a scheme runs (its first branch).
_HOST_RUN = re.compile(r"[A-Za-z0-9.-]*")
_LABEL, _LETTER = "[A-Za-z0-9-]", "[A-Za-z]"  # of a bare host's labels, and of its last one
_BARE_HOST = rf"(?:[wW][wW][wW]\.)?(?:{_LABEL}+\.)+{_LETTER}{{2,}}"
_HOST_RUN_AND_BARE_HOST = re.compile(rf"(?:(?=({_BARE_HOST}))|)[A-Za-z0-9.-]*")  # both from a run's start
_LINK_REST = re.compile(rf"[^\s\"'<>`{{}}|^\[\]{QUOTES}]*")
# Each of these matches (maybe empty) wherever it is tried.
_HOST_RUN_MATCH = cast("Callable[[str, int, int], re.Match[str]]", _HOST_RUN.match)
_HOST_RUN_AND_BARE_HOST_MATCH = cast("Callable[[str, int], re.Match[str]]", _HOST_RUN_AND_BARE_HOST.match)
_LINK_REST_MATCH = cast("Callable[[str, int], re.Match[str]]", _LINK_REST.match)
# After a host: what ends a link there, or its host (a path, a query, a fragment).
_ENDS_HOST = frozenset(c for c in map(chr, range(128)) if re.match(r"[\s\"'<>`{}|^\]/?#]", c))
_CLOSING = ",;!)"  # closing punctuation after a host, which may end the link there
MAX_HOST = 255  # a longer run of host characters is searched link by link


def _classes() -> bytes:
    """The character classes `_link_hosts` reads, for each ASCII character, as the compiled
    reader takes them (`_scan.c`): derived from the patterns above, never written twice."""
    classes = bytearray(128)
    for code in range(128):
        c = chr(code)
        for bit, member in enumerate((
            _HOST_RUN.fullmatch(c) is not None, c in _ENDS_HOST, _LINK_REST.fullmatch(c) is not None,
            c in _TRAILING, re.fullmatch(_LABEL, c) is not None, re.fullmatch(_LETTER, c) is not None,
            c in _CLOSING,
        )):  # fmt: skip
            classes[code] |= member << bit
    return bytes(classes)


try:
    from blocklists import _scan  # type: ignore[attr-defined]  # compiled by blocklists/_build.py
except ImportError:  # not built (no C compiler when installed): every text is read in Python
    _scan = None
else:
    _scan.configure(_classes(), MAX_HOST)
COMPILED = _scan is not None  # whether ASCII texts are read by the compiled readers (`_scan.c`)


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
    tail = _RUN.match(before[-64:][::-1])
    if tail and tail.end() == 64:  # a long run: read as far as the window goes
        tail = _RUN.match(before[-SPLIT_WINDOW:][::-1])
    head = _RUN.match(after, 0, SPLIT_WINDOW)
    tail_text = before[len(before) - tail.end() :] if tail and tail.end() else ""
    head_text = head.group() if head else ""
    return tail_text + head_text if tail_text and head_text else ""


@functools.lru_cache(maxsize=256)
def is_text_type(content_type: str) -> bool:
    """Whether a body of this content type is text a link could be in."""
    media = _media(content_type)
    return media.startswith(_TEXT_TYPES) or media.endswith(("+json", "+xml"))


@functools.lru_cache(maxsize=256)
def _media(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


@functools.lru_cache(maxsize=256)
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
    media = _media(content_type)
    text = _decode(body, content_type)
    if depth < MAX_DEPTH:
        if media == "application/x-www-form-urlencoded":
            values, names, rest = _form_fields_of(text)
            if values or names:
                yield from values
                yield from names
                if rest:
                    yield rest  # past MAX_FIELDS: read as text (its escapes too, see `_readings`)
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


def _form_fields_of(text: str) -> tuple[list[str], list[str], str]:
    """`_form_fields`, read by the compiled reader (`_scan.c`) when the text is ASCII and it
    is built: the same answer (a test holds them equal)."""
    if _scan is not None and text.isascii():
        return cast("tuple[list[str], list[str], str]", _scan.form_fields(text, MAX_FIELDS))
    return _form_fields(text)


def _form_fields(text: str) -> tuple[list[str], list[str], str]:
    """The values and the names of a form body, decoded, in order; empty ones left out; and
    the text after the first `MAX_FIELDS` fields, not split ("" when there is none).

    As the WHATWG ``application/x-www-form-urlencoded`` parser reads them:
    fields split at ``&``, name and value at the first ``=``, ``+`` a space.
    Names too, since a body without an ``=`` is all name. The rest is the
    bound's: a receiver reads every field, so it is read too, as text.
    """
    values: list[str] = []
    names: list[str] = []
    fields = text.replace("+", " ").split("&", MAX_FIELDS)  # "+" is neither "&" nor "="
    for field in fields[:MAX_FIELDS]:
        name, _, value = field.partition("=")
        if value:
            values.append(percent_decoded(value))
        if name:
            names.append(percent_decoded(name))
    return values, names, fields[MAX_FIELDS] if len(fields) > MAX_FIELDS else ""


def percent_decoded(text: str) -> str:
    """*text* with its percent escapes decoded as UTF-8 (invalid bytes replaced), as
    `urllib.parse.unquote` decodes it, faster for the ASCII text a form body is: there the
    escapes are decoded in one pass by Python's own escape codec (``codecs.escape_decode``),
    which refuses a ``%`` that is no escape (``unquote`` keeps it: it then decodes)."""
    if "%" not in text:
        return text
    if text.isascii():
        escaped = text.replace("\\", "\\\\") if "\\" in text else text
        try:
            octets, _ = codecs.escape_decode(escaped.replace("%", "\\x").encode("ascii"))
        except ValueError:
            return unquote(text)
        return octets.decode("utf-8", "replace")
    return unquote(text)


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


def _readings(body: bytes, content_type: str) -> list[str]:
    """The texts the links are searched in, in order: each text of the body (`_texts`), then its
    percent-decoded forms, and those of its HTML-unescaped form where it has entities."""
    readings: list[str] = []
    for text in _texts(body, content_type):
        readings.extend(_unquoted(text)) if "%" in text else readings.append(text)
        if "&" in text and ("&#" in text or "&amp;" in text):
            readings.extend(_unquoted(html.unescape(text)))  # entities inside a field or a JSON string
    for at, reading in enumerate(readings):
        if not reading.isascii() and ("\u3002" in reading or "\uff0e" in reading or "\uff61" in reading):
            readings[at] = reading.translate(_DOTS)
    return readings


def link_hosts(reading: str) -> list[str] | None:
    """The host names the links in *reading* go to, when each is a link whose host reads on its
    own (`canonical.plain_host`); None when some link's host might not be one of them.

    `_link_hosts`, read by the compiled reader (`_scan.c`) when the text is ASCII
    and it is built (`COMPILED`): the same answer (a test holds them equal), about
    ten times faster.
    """
    if _scan is not None and reading.isascii():
        return cast("list[str] | None", _scan.link_hosts(reading))
    return _link_hosts(reading)


def _link_hosts(reading: str) -> list[str] | None:
    """`link_hosts` in Python, for every text.

    One pass from dot to dot, without finding the links: each run of host
    characters (ASCII letters, digits, hyphens, dots) holding a dot gives the
    host a bare link starting there has (the second branch of the link
    pattern), and the run itself when it follows a ``://``. A run whose only
    dot ends it (a full stop) is passed over: no bare link has such a host,
    and one after ``://`` is then a scheme left unread (below). The names may be
    more than the links' hosts (a run inside a link's path is one too), never
    fewer: None whenever a link could be on another host, which is when

    - a run touches a character that could make a host of it, or part of a
      longer or an escaped one: ``_``, ``\\``, a non-ASCII letter before it;
      after it anything but what ends a host (``/ ? #``, a delimiter, the
      end), or closing punctuation that ends the link;
    - some ``://`` is not followed by such a run (a host without a dot or
      whose only dot ends it, a user name, an IPv6 address), or the text
      holds a ``:\\`` scheme.

    `find_links` with a host test relies on this: a reading every one of
    whose names the test clears holds no link it would not clear.
    """
    hosts: list[str] = []
    schemes = 0  # the "://" seen, each of which must be followed by a run of host characters
    colon = reading.find(":")
    while colon >= 0:  # a single character is found fast; ":\\" or "://" then read at each
        if reading.startswith("//", colon + 1):
            schemes += 1
        elif reading.startswith("\\", colon + 1):
            return None
        colon = reading.find(":", colon + 1)
    find, size, ends = reading.find, len(reading), _ENDS_HOST
    back_run, run, rest = _HOST_RUN_MATCH, _HOST_RUN_AND_BARE_HOST_MATCH, _LINK_REST_MATCH
    backwards = ""  # the reading reversed, made at the first dot a host may hold
    at = find(".")
    while at >= 0:
        if at + 1 == size or reading[at + 1] in ends:
            # A full stop, or a dot ending a run that holds no other: no bare link has its host
            # there (it needs a label after a dot), and one after "://" is left uncounted (None).
            at = find(".", at + 1)
            continue
        if not backwards:
            backwards = reading[::-1]
        back = back_run(backwards, size - at, size - at + MAX_HOST + 1).end() - (size - at)
        start = at - back
        match = run(reading, start)
        end = match.end()
        if end - start > MAX_HOST:
            return None
        if start:
            before = reading[start - 1]
            if before in "_\\" or not before.isascii():
                return None
        if end < size:
            after = reading[end]
            if after not in _ENDS_HOST:
                if after not in _CLOSING:
                    return None
                stop = rest(reading, end).end()
                if (stop < size and reading[stop] == "[") or reading[end:stop].rstrip(_TRAILING):
                    return None
        bare = match.group(1)
        if start >= 3 and reading.startswith("://", start - 3):
            schemes -= 1
            name = reading[start:end]
            hosts.append(name)
            if bare is not None and bare != name:
                hosts.append(bare)
        elif bare is not None:
            hosts.append(bare)
        at = find(".", end)
    return hosts if schemes == 0 else None


def find_links(
    body: bytes, content_type: str, host_may_match: Callable[[str], bool] | None = None
) -> list[str]:
    """The distinct links in a request body, as absolute http(s) URLs where they were bare.

    With *host_may_match*, the body's texts are first read for their link
    hosts all at once (`link_hosts` over the texts joined by line breaks,
    which end a link and a host as the end of a text does). When it answers
    False for every one, no link is returned: none could be matched. When
    some link's host cannot be read so, each text is screened on its own,
    and only those with a host it does not clear are searched; the
    `MAX_LINKS` bound then counts the links of the texts searched.
    """
    readings = _readings(body, content_type)
    if host_may_match is not None:
        hosts = link_hosts(readings[0] if len(readings) == 1 else "\n".join(readings))
        if hosts is not None and not any(map(host_may_match, hosts)):
            return []
        if hosts is None:
            readings = [reading for reading in readings if _may_hold(reading, host_may_match)]
    found: dict[str, None] = {}
    for reading in readings:
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


def _may_hold(reading: str, host_may_match: Callable[[str], bool]) -> bool:
    """Whether *reading* may hold a link *host_may_match* does not clear."""
    hosts = link_hosts(reading)
    return hosts is None or any(map(host_may_match, hosts))
