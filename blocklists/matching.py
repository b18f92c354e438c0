"""Decide which of the entries matching a URL wins, and say why.

The most specific entry wins: an exact URL with its query, then the exact
path, then the longer path prefix; on equal paths the exact host, then the
deeper domain. At equal specificity a local entry beats one from a feed (local
lists and exceptions apply on top of feeds), then ``allow`` beats ``block``
beats ``warn`` beats ``audit``. Expired entries never match; they appear in the trace only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .canonical import Canonical
from .entry import Action, Entry

__all__ = ["Match", "Verdict", "decide", "describe_expression"]

_QUERY_RANK = 1_000_000
_PATH_RANK = 999_999


@dataclass(frozen=True, slots=True)
class Match:
    """An entry that lists one of a URL's expressions."""

    entry: Entry
    expression: str
    path_rank: int
    host_rank: int

    @property
    def order(self) -> tuple[int, int, bool, int]:
        """Sort key, larger wins: path specificity, host depth, local over feed, action priority."""
        return (self.path_rank, self.host_rank, self.entry.local, self.entry.action.priority)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome for one URL, with everything needed to explain it."""

    url: str
    canonical: Canonical
    expressions: tuple[str, ...]
    matches: tuple[Match, ...]  # live matches, the winner first
    expired: tuple[Match, ...] = ()

    @property
    def winner(self) -> Match | None:
        return self.matches[0] if self.matches else None

    @property
    def action(self) -> Action | None:
        return self.matches[0].entry.action if self.matches else None

    @property
    def entry(self) -> Entry | None:
        return self.matches[0].entry if self.matches else None

    def explain(self) -> list[str]:
        """Why the winner won over each other match, in words."""
        if not self.matches:
            return []
        first = self.matches[0]
        covers = describe_expression(first.expression, self.canonical)
        lines = [f"{first.entry.label} ({first.entry.action}) matched: {covers}"]
        for other in self.matches[1:]:
            if (first.path_rank, first.host_rank) > (other.path_rank, other.host_rank):
                why = "it is more specific than"
            elif first.entry.local and not other.entry.local:
                why = "a local entry applies on top of a feed's, at equal specificity, over"
            elif first.entry.action != other.entry.action:
                why = f"{first.entry.action} beats {other.entry.action} at equal specificity over"
            else:
                why = "it is listed in several sources, including"
            lines.append(
                f"it wins because {why} {other.entry.label} ({other.entry.action}, {other.entry.source})"
            )
        lines.extend(f"{m.entry.label} ({m.entry.action}) would match but expired" for m in self.expired)
        return lines


def describe_expression(expression: str, canonical: Canonical) -> str:
    """What listing *expression* covers, relative to the URL being checked."""
    host, _, rest = expression.partition("/")
    path = "/" + rest
    where = f"the host {host}" if host == canonical.host else f"{host} and every subdomain"
    if "?" in path:
        return f"this exact URL, query included, on {where}"
    if path == canonical.path and not path.endswith("/"):
        return f"the page {path} on {where}, with any query"
    if path == "/":
        return f"all of {where}"
    return f"everything under {path} on {where}"


def _ranks(expression: str, canonical: Canonical) -> tuple[int, int]:
    host, _, rest = expression.partition("/")
    path = "/" + rest
    if "?" in path:
        path_rank = _QUERY_RANK
    elif path == canonical.path:
        path_rank = _PATH_RANK
    else:
        path_rank = path.count("/") - 1
    return path_rank, host.count(".") + 1


def decide(
    url: str,
    canonical: Canonical,
    expressions: Sequence[str],
    hits: Sequence[tuple[str, bytes]],
    found: Mapping[bytes, Sequence[Entry]],
    now: float,
) -> Verdict:
    """Pick the winning entry among those whose full key matched an expression."""
    live: list[Match] = []
    expired: list[Match] = []
    for expression, key in hits:
        for entry in found.get(key, ()):
            match = Match(entry, expression, *_ranks(expression, canonical))
            (live if entry.is_live(now) else expired).append(match)
    live.sort(key=lambda m: m.order, reverse=True)
    return Verdict(url, canonical, tuple(expressions), tuple(live), tuple(expired))
