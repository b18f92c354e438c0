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
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from .canonical import Canonical, canonicalize_partial, canonicalize_traced, expressions_of
from .entry import key_of
from .errors import InvalidURL
from .index import PrefixIndex
from .matching import Verdict, decide
from .store import Store

__all__ = ["Checker", "Prefiltered"]

Prefiltered = tuple[Canonical, list[str], list[tuple[str, bytes]]]


class Checker:
    def __init__(self, store: Store, index: PrefixIndex | None = None) -> None:
        self.store = store
        self.index = index  # None until loaded: then the store answers every lookup

    async def reload(self) -> PrefixIndex:
        """Rebuild the index from the store and swap it in."""
        data = await self.store.key_prefixes()
        # Built in a worker thread: the bucket table of a large index takes a
        # noticeable fraction of a second, which requests must not wait for.
        index = await asyncio.to_thread(PrefixIndex.from_prefix_bytes, data)
        self.index = index
        return index

    async def refresh(self, added: Sequence[bytes] | None = None) -> PrefixIndex:
        """After the store changed: merge *added* keys into a new index, or (None) rebuild; then swap."""
        if added is None or self.index is None:
            return await self.reload()
        index = await asyncio.to_thread(self.index.with_keys, added)
        self.index = index
        return index

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
