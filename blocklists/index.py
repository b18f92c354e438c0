"""The in-memory index the request path consults: sorted 64-bit key prefixes.

Two flat arrays and nothing else: the first 8 bytes of each entry's SHA-256
key in ascending order, and a bucket table giving, for each value of the top
bits, where its run of prefixes starts. About 9 bytes per entry; two objects,
so the garbage collector never walks a million of anything. A lookup hashes
each expression, reads two table cells and bisects a run of a few items.

A prefix hit only says "maybe": the caller confirms it against the full key in
the store. An index is never changed after it is built; a new one replaces it.
"""

from __future__ import annotations

import struct
import sys
from array import array
from bisect import bisect_left
from collections.abc import Iterable
from typing import Self

try:
    # CPython's own SHA-256 (HACL*), which hashlib falls back on: the same digests as hashlib's
    # OpenSSL one, as fast when hot, and about twice as fast for a host name when its code is not
    # in the CPU's caches, which is how a proxy finds it between two requests (timed in a loop
    # that evicts the caches between posts: 3.8 against 7.8 µs).
    from _sha2 import sha256 as _sha256  # type: ignore[import-not-found]
except ImportError:  # a Python built without it
    from hashlib import sha256 as _sha256

__all__ = ["PrefixIndex", "ShortPrefixIndex"]

PREFIX_BYTES = 8
_PREFIX = struct.Struct(">Q").unpack_from


class PrefixIndex:
    __slots__ = ("_buckets", "_prefixes", "_shift")

    TYPECODE = "Q"  # the array's item: 8-byte prefixes
    BITS = 64
    _unpack = staticmethod(_PREFIX)

    def __init__(self, prefixes: array[int]) -> None:
        """Index *prefixes*, an array of TYPECODE already in ascending order."""
        if prefixes.typecode != self.TYPECODE:
            raise TypeError(f"a {type(self).__name__} holds an array({self.TYPECODE!r})")
        self._prefixes = prefixes
        # About four prefixes per bucket: the table costs 1-2 bytes per entry
        # and leaves a bisect of two or three steps.
        bits = max(1, min(28, len(prefixes).bit_length() - 2))
        self._shift = self.BITS - bits
        self._buckets = array("I", (bisect_left(prefixes, b << self._shift) for b in range(1 << bits)))
        self._buckets.append(len(prefixes))

    @classmethod
    def empty(cls) -> Self:
        return cls(array(cls.TYPECODE))

    @classmethod
    def from_prefix_bytes(cls, data: bytes) -> Self:
        """From concatenated big-endian prefixes of BITS // 8 bytes, already in ascending order."""
        if len(data) % (cls.BITS // 8):
            raise ValueError(f"prefix data of {len(data)} bytes is not a whole number of prefixes")
        prefixes = array(cls.TYPECODE)
        prefixes.frombytes(data)
        if sys.byteorder == "little":
            prefixes.byteswap()
        return cls(prefixes)

    @classmethod
    def from_keys(cls, keys: Iterable[bytes]) -> Self:
        """From full keys in any order (for tests and small lists)."""
        return cls(array(cls.TYPECODE, sorted({cls._unpack(key)[0] for key in keys})))

    def with_keys(self, keys: Iterable[bytes]) -> Self:
        """A new index that also holds *keys*' prefixes (see `with_prefixes`)."""
        return self.with_prefixes(keys)

    def with_prefixes(self, prefixes: Iterable[bytes]) -> Self:
        """A new index that also holds *prefixes* (bytes; the first BITS // 8 of each count).

        The original is unchanged. For a feed diff: merging a few thousand
        prefixes into a sorted array is a few slice copies, where rebuilding
        from the store reads a million rows. Removed keys may keep their prefix
        until the next full rebuild; that is safe, since every prefix hit is
        confirmed against the store (and a host marker kept too long only has
        a host read that need not be).
        """
        old = self._prefixes
        merged = array(self.TYPECODE)
        start = 0
        unpack = self._unpack
        for prefix in sorted({unpack(raw)[0] for raw in prefixes}):
            at = bisect_left(old, prefix, start)
            merged.extend(old[start:at])
            if at == len(old) or old[at] != prefix:
                merged.append(prefix)
            start = at
        merged.extend(old[start:])
        return type(self)(merged)

    def __len__(self) -> int:
        return len(self._prefixes)

    @property
    def prefixes(self) -> array[int]:
        """The sorted prefixes themselves (the index's own array: do not change it)."""
        return self._prefixes

    def prefix_bytes(self) -> bytes:
        """The prefixes as `from_prefix_bytes` reads them: big-endian, ascending, concatenated."""
        if sys.byteorder == "big":
            return self._prefixes.tobytes()
        swapped = array(self.TYPECODE, self._prefixes)
        swapped.byteswap()
        return swapped.tobytes()

    @property
    def nbytes(self) -> int:
        """Memory held by the index (sys.getsizeof of an array counts its buffer)."""
        return sys.getsizeof(self._prefixes) + sys.getsizeof(self._buckets) + sys.getsizeof(self)

    def hits(self, expressions: Iterable[str]) -> list[tuple[str, bytes]]:
        """The expressions whose key prefix is listed, each with its full SHA-256 key."""
        prefixes = self._prefixes
        if not prefixes:
            return []
        buckets, shift, sha256, unpack = self._buckets, self._shift, _sha256, self._unpack
        found = []
        for expression in expressions:
            digest = sha256(expression.encode()).digest()
            (prefix,) = unpack(digest)
            bucket = prefix >> shift
            end = buckets[bucket + 1]
            at = bisect_left(prefixes, prefix, buckets[bucket], end)
            if at < end and prefixes[at] == prefix:
                found.append((expression, digest))
        return found

    def holds(self, expression: str) -> bool:
        """Whether *expression*'s key prefix is listed: `hits` for one expression, without the key."""
        prefixes = self._prefixes
        (prefix,) = self._unpack(_sha256(expression.encode()).digest())
        bucket = prefix >> self._shift
        end = self._buckets[bucket + 1]
        at = bisect_left(prefixes, prefix, self._buckets[bucket], end)
        return at < end and bool(prefixes[at] == prefix)


class ShortPrefixIndex(PrefixIndex):
    """The same, over 4-byte prefixes: for host markers, where a false hit only has a
    connection decrypted that need not be, so half the memory is worth it (with 2.5M
    marked hosts, about 1 unlisted connection in 300 is read needlessly)."""

    __slots__ = ()

    TYPECODE = "I"
    BITS = 32
    _unpack = staticmethod(struct.Struct(">I").unpack_from)
