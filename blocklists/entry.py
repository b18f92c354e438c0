"""What a list entry is: an expression, its key, an action and why it is listed."""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from .canonical import canonicalize_traced

__all__ = [
    "Action",
    "Entry",
    "EntryRow",
    "expression_for",
    "host_marker",
    "key_of",
    "marker_of",
    "parse_duration",
    "parse_time",
]


# key, expression, action, reason, category, incident, added_at, expires_at, require_reason, marker
# (the order of `rows.VALUE_COLUMNS` after the key)
EntryRow = tuple[bytes, str | None, str, str, str, str, int, int | None, bool, bytes | None]

MARKER_BYTES = 8


class Action(StrEnum):
    """What the proxy does with a request that an entry matches."""

    BLOCK = "block"  # a page with no way through
    WARN = "warn"  # a page with a way through
    AUDIT = "audit"  # logged, let through
    ALLOW = "allow"  # an exception to the entries above

    @property
    def priority(self) -> int:
        """At equal specificity the higher priority wins: allow > block > warn > audit."""
        return _PRIORITY[self]


_PRIORITY = {Action.ALLOW: 3, Action.BLOCK: 2, Action.WARN: 1, Action.AUDIT: 0}


def key_of(expression: str) -> bytes:
    """An entry's key: SHA-256 of its expression."""
    return hashlib.sha256(expression.encode("utf-8")).digest()


def host_marker(host: str) -> bytes:
    """The marker of *host*: "some entry lists this host or a path on it", and nothing more.

    The first 8 bytes of SHA-256 of the bare host name. No expression hashes
    to it, since every expression has a ``/`` after its host. The proxy reads
    (decrypts) a TLS connection only when one of its host names, or a parent
    domain, has a marker; a hashed feed publishes each entry's marker, so it
    says which hosts to read without saying which paths are listed.
    """
    return hashlib.sha256(host.encode("utf-8")).digest()[:MARKER_BYTES]


def marker_of(expression: str) -> bytes:
    """The marker of the host an *expression* lists (see `host_marker`)."""
    return host_marker(expression.partition("/")[0])


def expression_for(target: str) -> str:
    """The expression that lists *target*: a host, a URL prefix or a page.

    ``leak.example`` and ``http://leak.example/`` give ``leak.example/`` (the
    host and everything under it); a URL ending in ``/`` gives a path prefix; any
    other URL gives that page (with any query), or exactly that page and query
    when it has one. Raises `InvalidURL` as `canonicalize` does.
    """
    text = target.strip()
    if text.startswith("*."):
        text = text[2:]  # "*.leak.example": a host entry covers subdomains anyway
    canonical = canonicalize_traced(text)
    query = "" if canonical.query is None else "?" + canonical.query
    return f"{canonical.host}{canonical.path}{query}"


@dataclass(frozen=True, slots=True)
class Entry:
    """One listed expression and its metadata.

    The plaintext expression is optional: a hashed feed carries only keys.
    Times are whole seconds since the epoch. *require_reason*: a person who
    proceeds past this entry's warning must type why. *marker*: the
    `host_marker` of the entry's host; derived from the expression when there
    is one, published alongside the key by a hashed feed, None when nobody
    knows the host (a hashed entry from a list without markers).
    """

    key: bytes
    action: Action
    expression: str | None = None
    reason: str = ""
    category: str = ""
    incident: str = ""
    source: str = ""
    added_at: int = field(default_factory=lambda: int(time.time()))
    expires_at: int | None = None
    local: bool = True  # False for an entry that came from a feed
    require_reason: bool = False
    marker: bytes | None = None

    def __post_init__(self) -> None:
        if len(self.key) != 32:
            raise ValueError(f"an entry key is 32 bytes of SHA-256, got {len(self.key)}")
        if self.expression is not None:
            object.__setattr__(self, "marker", marker_of(self.expression))
        elif self.marker is not None and len(self.marker) != MARKER_BYTES:
            raise ValueError(f"a host marker is {MARKER_BYTES} bytes, got {len(self.marker)}")

    @classmethod
    def listing(cls, expression: str, action: Action, **metadata: object) -> Entry:
        """An entry for a plaintext expression."""
        return cls(key=key_of(expression), action=action, expression=expression, **metadata)  # type: ignore[arg-type]

    def is_live(self, now: float) -> bool:
        return self.expires_at is None or self.expires_at > now

    def row(self) -> EntryRow:
        """The plain-tuple form bulk paths use: no object per entry for the collector to walk."""
        return (self.key, self.expression, str(self.action), self.reason, self.category, self.incident,
                self.added_at, self.expires_at, self.require_reason, self.marker)  # fmt: skip

    @property
    def label(self) -> str:
        """How to name the entry to a person: its expression, or its hash."""
        return self.expression if self.expression is not None else "sha256:" + self.key.hex()


_DURATION = re.compile(r"(\d+)([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> int:
    """Seconds in a duration such as ``90s``, ``15m``, ``12h``, ``30d``, ``1w2d``."""
    value = text.strip().lower()
    if value.isdigit():
        return int(value)
    pos, total = 0, 0
    for match in _DURATION.finditer(value):
        if match.start() != pos:
            break
        total += int(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(value) or not value:
        raise ValueError(f"invalid duration {text!r} (examples: 90s, 15m, 12h, 30d, 1w)")
    return total


def parse_time(text: str) -> int:
    """Seconds since the epoch from an ISO 8601 date or time, or a number of seconds."""
    value = text.strip()
    if value.isdigit():
        return int(value)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"invalid time {text!r} (use ISO 8601, e.g. 2026-12-31 or 2026-12-31T18:00:00Z)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())
