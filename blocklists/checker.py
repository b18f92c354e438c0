"""Check URLs against the lists: the index first, the store only on a hit.

`Checker.prefilter` is what the request path calls: canonicalize, derive the
expressions, look them up in the in-memory index. It does no I/O and never
awaits, and for almost all traffic it finds nothing and that is the answer.
Until the first index is built, every expression counts as a hit, so the store
(which is authoritative, and answers a URL's keys in one indexed query) decides:
a proxy serves, correctly, from its first second, however large its lists.
On a prefix hit, `Checker.confirm` reads the full keys from the store and
`decide` picks the winner. `reload` builds a new index from the store and
swaps it in with one assignment, so a lookup sees the old index or the new
one, never half of either.

`Checker.reads_host` answers the question a TLS connection asks before it is
decrypted: could any entry match a URL on this host? Entries carry a host
marker (`entry.host_marker`); a second index holds those, and the host and
its parent domains are looked up in it as a URL's expressions are in the first.
`Checker.may_match` asks the same of a URL whose host can be read on its own,
which is how a post's links are screened before any is canonicalized whole.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from .canonical import (
    MAX_HOSTS,
    Canonical,
    canonicalize_partial,
    canonicalize_traced,
    expressions_of,
    host_expressions,
    plain_canonical_host,
    plain_host,
)
from .entry import EntryRow, key_of
from .errors import InvalidURL
from .index import PrefixIndex, ShortPrefixIndex
from .matching import Verdict, decide
from .store import Store

__all__ = ["Checker", "HostIndex", "Prefiltered"]

Prefiltered = tuple[Canonical, list[str], list[tuple[str, bytes]]]
READ_HOSTS_CACHED = 65536  # host names whose answer is kept until the indexes change


@dataclass(frozen=True, slots=True)
class HostIndex:
    """The host markers, and how many entries have none (their host is unknown)."""

    markers: ShortPrefixIndex  # the first 4 bytes of every entry's host marker
    unmarked: int

    def reads(self, host: str, is_ip: bool, named: dict[str, bool] | None = None) -> bool:
        """Whether an entry could match under *host* (canonical), itself or a parent domain.

        Every entry's marker is held, a host entry's (``host/``) too, so a name
        is one lookup: its marker. A prefix hit is not confirmed: at worst a
        connection is read that need not be. With any unmarked entry, every
        host might be the one it lists. *named* keeps each parent domain's
        answer: the parents of the hosts a proxy sees are few, and each is
        looked up once (the host's own answer is the caller's to keep).
        """
        if self.unmarked > 0:
            return True
        holds = self.markers.holds
        # Most hosts: nothing under any parent, and no suffix list needed to know it (a host
        # deeper than MAX_HOSTS is looked up under its `host_expressions` alone).
        if not holds(host) and (
            is_ip or (host.count(".") <= MAX_HOSTS and not _any_named(holds, _parents(host), named))
        ):
            return False
        return _any_named(holds, host_expressions(host, is_ip), named)


def _any_named(holds: Callable[[str], bool], names: Iterable[str], named: dict[str, bool] | None) -> bool:
    """Whether *holds* answers True for any of *names*, each answer kept in *named*."""
    if named is None:
        return any(map(holds, names))
    for name in names:
        answer = named.get(name)
        if answer is None:
            answer = named[name] = holds(name)
        if answer:
            return True
    return False


def _parents(host: str) -> Iterator[str]:
    """Every parent domain of *host* (a name, not an address), deepest first: with *host*, a
    superset of `host_expressions` whatever the public suffix list says, so found without it."""
    at = host.find(".")
    while at >= 0:
        yield host[at + 1 :]
        at = host.find(".", at + 1)


class Checker:
    def __init__(self, store: Store, index: PrefixIndex | None = None) -> None:
        self.store = store
        self.index = index  # None until loaded: then the store answers every lookup
        self.hosts: HostIndex | None = None  # None until loaded: then every host is read
        self._read_hosts: dict[str, bool] = {}  # reads_host's answers for the indexes in force
        self._named: dict[str, bool] = {}  # HostIndex.reads's answers for parent domains, likewise

    def _swap(self, hosts: HostIndex, index: PrefixIndex) -> None:
        self.hosts, self.index, self._read_hosts, self._named = hosts, index, {}, {}

    async def reload(self) -> PrefixIndex:
        """Rebuild the indexes from the store and swap them in."""
        keys, markers = await self.store.key_prefixes()
        unmarked = await self.store.unmarked_count()
        # Built in a worker thread: the bucket table of a large index takes a
        # noticeable fraction of a second, which requests must not wait for.
        index = await asyncio.to_thread(PrefixIndex.from_prefix_bytes, keys)
        hosts = HostIndex(await asyncio.to_thread(ShortPrefixIndex.from_prefix_bytes, markers), unmarked)
        self._swap(hosts, index)
        return index

    async def refresh(self, added: Sequence[EntryRow] | None = None) -> PrefixIndex:
        """After the store changed: merge *added* rows into new indexes, or (None) rebuild; then swap.

        A row without an expression or a marker is a host nobody knows: rebuild,
        so that `HostIndex.unmarked` counts it.
        """
        if added is None or self.index is None or self.hosts is None:
            return await self.reload()
        if any(row[1] is None and row[9] is None and row[2] != "allow" for row in added):
            return await self.reload()
        index = await asyncio.to_thread(self.index.with_keys, [row[0] for row in added])
        markers = await asyncio.to_thread(
            self.hosts.markers.with_prefixes, [row[9] for row in added if row[9] is not None]
        )
        self._swap(HostIndex(markers, self.hosts.unmarked), index)
        return index

    def reads_host(self, name: str) -> bool:
        """Whether a TLS connection to the host *name* must be decrypted: could any entry match there?

        No I/O. True until the indexes are loaded, and for a name that cannot
        be read as a host (doubt is never a pass).
        """
        hosts, index, answers = self.hosts, self.index, self._read_hosts
        if hosts is None or index is None:
            return True
        answer = answers.get(name)
        if answer is None:
            canonical = _canonical_host(name)
            named = self._named
            if len(named) >= READ_HOSTS_CACHED:
                named.clear()
            answer = True if canonical is None else hosts.reads(*canonical, named)
            if len(answers) >= READ_HOSTS_CACHED:
                answers.clear()
            answers[name] = answer
        return answer

    @property
    def screens_hosts(self) -> bool:
        """Whether `reads_host` can answer False at all: the indexes are loaded and every entry's
        host is known (`HostIndex.unmarked`); else it is True for every name."""
        hosts = self.hosts
        return hosts is not None and self.index is not None and hosts.unmarked == 0

    def may_match(self, url: str) -> bool:
        """Whether an entry could match *url*; False only when none can. No I/O.

        Cheaper than `prefilter` for a URL whose host reads on its own
        (`plain_host`): only that host is looked up, as `reads_host` does; any
        other URL may match. A post's links are screened so, and only the few
        that may match are canonicalized and looked up whole.
        """
        host = plain_host(url)
        return host is None or self.reads_host(host)

    def prefilter(self, url: str) -> Prefiltered:
        """Canonical URL, its expressions, and those whose prefix is listed.

        A URL that cannot be canonicalized whole is decided on what can be read
        of it (`canonicalize_partial`: ``canonical.partial`` is then true).
        Raises InvalidURL only when not even its host can be read.
        """
        try:
            canonical = canonicalize_traced(url)
        except InvalidURL as whole:
            try:
                canonical = canonicalize_partial(url)
            except InvalidURL:
                raise whole from None
        expressions = expressions_of(canonical)
        index = self.index
        if index is None:
            return canonical, expressions, [(expression, key_of(expression)) for expression in expressions]
        return canonical, expressions, index.hits(expressions)

    async def confirm(self, url: str, prefiltered: Prefiltered, now: float | None = None) -> Verdict:
        """Turn prefix hits into a verdict, reading full keys from the store."""
        canonical, expressions, hits = prefiltered
        found = await self.store.lookup([key for _, key in hits]) if hits else {}
        return decide(url, canonical, expressions, hits, found, time.time() if now is None else now)

    async def check(self, url: str, now: float | None = None) -> Verdict:
        """The whole decision for one URL. Raises InvalidURL."""
        return await self.confirm(url, self.prefilter(url), now)


def _canonical_host(name: str) -> tuple[str, bool] | None:
    """A connection's host name as `canonicalize` reads it, and whether it is an address; None: unreadable.

    Not cached itself: `Checker.reads_host` keeps each name's answer for the indexes in force.
    """
    plain = plain_canonical_host(name)
    if plain is not None:
        return plain
    try:
        canonical = canonicalize_traced(f"http://[{name}]/" if ":" in name else f"http://{name}/")
    except InvalidURL:
        return None
    return canonical.host, canonical.is_ip
