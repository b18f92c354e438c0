"""The in-memory index the request path consults: sorted 64-bit key prefixes.

One `array` of unsigned 64-bit integers, the first 8 bytes of each entry's
SHA-256 key in ascending order: 8 bytes per entry and a single object, so the
garbage collector never walks it. A lookup hashes each expression and bisects.
A prefix hit only says "maybe": the caller confirms it against the full key in
the store. An index is never changed after it is built; a new one replaces it.
"""

from __future__ import annotations

import hashlib
import sys
from array import array
from bisect import bisect_left
from collections.abc import Iterable

__all__ = ["PrefixIndex"]

PREFIX_BYTES = 8


class PrefixIndex:
    __slots__ = ("_prefixes",)

    def __init__(self, prefixes: array[int]) -> None:
        if prefixes.typecode != "Q":
            raise TypeError("a PrefixIndex holds an array('Q')")
        self._prefixes = prefixes

    @classmethod
    def empty(cls) -> PrefixIndex:
        return cls(array("Q"))

    @classmethod
    def from_prefix_bytes(cls, data: bytes) -> PrefixIndex:
        """From concatenated big-endian 8-byte prefixes, already in ascending order."""
        if len(data) % PREFIX_BYTES:
            raise ValueError(f"prefix data of {len(data)} bytes is not a whole number of prefixes")
        prefixes = array("Q")
        prefixes.frombytes(data)
        if sys.byteorder == "little":
            prefixes.byteswap()
        return cls(prefixes)

    @classmethod
    def from_keys(cls, keys: Iterable[bytes]) -> PrefixIndex:
        """From full keys in any order (for tests and small lists)."""
        return cls(array("Q", sorted({int.from_bytes(key[:PREFIX_BYTES]) for key in keys})))

    def __len__(self) -> int:
        return len(self._prefixes)

    @property
    def nbytes(self) -> int:
        """Memory held by the index: the array's buffer and the two objects around it."""
        # sys.getsizeof(array) counts its buffer (allocated, not just used).
        return sys.getsizeof(self._prefixes) + sys.getsizeof(self)

    def hits(self, expressions: Iterable[str]) -> list[tuple[str, bytes]]:
        """The expressions whose key prefix is listed, each with its full SHA-256 key."""
        prefixes = self._prefixes
        size = len(prefixes)
        if not size:
            return []
        found = []
        for expression in expressions:
            digest = hashlib.sha256(expression.encode()).digest()
            prefix = int.from_bytes(digest[:PREFIX_BYTES])
            at = bisect_left(prefixes, prefix)
            if at < size and prefixes[at] == prefix:
                found.append((expression, digest))
        return found
