"""The index's prefixes as the browser extension mirrors them: full sets, and diffs between versions.

The extension holds what the proxy's `Checker` decides with: the first 8
bytes of every entry's key (its `PrefixIndex`), the first 4 bytes of each host
marker its `HostIndex` holds, and how many entries have no marker. With them
it decides offline, as the proxy would, that a URL is not listed, hashed
entries included, and asks the proxy only about a prefix hit.

A version is named by its ETag: SHA-256 of its full set's bytes, so the
extension checks what it built (from a full set or by applying diffs) against
the name it was given. `PrefixVersions` keeps the current version and the
diffs of the last few changes (the versions it was asked about), so an
extension that has any of them gets a diff; any other gets the full set.

Wire forms (big-endian; arrays ascending, without repeats; extension/lib/prefixes.js reads them)::

    full  "LWP1" keys:u32 markers:u32 unmarked:u32 | keys x 8 bytes | markers x 4 bytes
    diff  "LWD1" keys_added:u32 keys_removed:u32 markers_added:u32 markers_removed:u32 unmarked:u32
          | the four arrays in that order

Bounds: a full set is 16 bytes + 8 per entry + 4 per marker: with 1M entries
of which 500k need a marker (path and hashed entries), 10 MB. Kept here: a
reference to the index last served (the live one, once asked again: nothing
extra), and at most `MAX_DIFFS` diffs holding at most a quarter of the set's
size in prefixes together (at 1M entries, 2 MB). A diff bigger than that is
not kept: the full set is then the cheaper answer.

Pure: no I/O. Building a version encodes and hashes its set (about 30 ms at
1M entries); callers run `update` and `answer` in a worker thread.
"""

from __future__ import annotations

import hashlib
import re
import struct
import sys
from array import array
from collections import deque
from dataclasses import dataclass

from .index import PrefixIndex, ShortPrefixIndex

__all__ = [
    "ETAG",
    "MAX_DIFFS",
    "Diff",
    "PrefixVersions",
    "Version",
    "difference",
    "encode_diff",
    "encode_full",
]

MAX_DIFFS = 8
ETAG = re.compile(r'"[0-9a-f]{32}"')
_FULL = b"LWP1"
_DIFF = b"LWD1"
_BLOCK = 4096  # items compared at once where the sets agree


@dataclass(frozen=True, slots=True)
class Version:
    """One state of the indexes, as served: what it was made from and its ETag."""

    keys: PrefixIndex
    markers: ShortPrefixIndex
    unmarked: int
    etag: str


@dataclass(frozen=True, slots=True)
class Diff:
    """What changed from one version to the next: prefixes added and removed, and the new unmarked count."""

    keys_added: array[int]
    keys_removed: array[int]
    markers_added: array[int]
    markers_removed: array[int]
    unmarked: int

    @property
    def size(self) -> int:
        return (
            len(self.keys_added)
            + len(self.keys_removed)
            + len(self.markers_added)
            + len(self.markers_removed)
        )


def encode_full(keys: PrefixIndex, markers: ShortPrefixIndex, unmarked: int) -> bytes:
    """The full set's bytes."""
    header = _FULL + struct.pack(">III", len(keys), len(markers), unmarked)
    return header + keys.prefix_bytes() + markers.prefix_bytes()


def _big_endian(values: array[int]) -> bytes:
    swapped = array(values.typecode, values)
    if sys.byteorder == "little":
        swapped.byteswap()
    return swapped.tobytes()


def encode_diff(diff: Diff) -> bytes:
    """A diff's bytes."""
    counts = (
        len(diff.keys_added),
        len(diff.keys_removed),
        len(diff.markers_added),
        len(diff.markers_removed),
    )
    parts = [_DIFF, struct.pack(">IIIII", *counts, diff.unmarked)]
    parts.extend(
        _big_endian(a) for a in (diff.keys_added, diff.keys_removed, diff.markers_added, diff.markers_removed)
    )
    return b"".join(parts)


def difference(old: array[int], new: array[int], limit: int) -> tuple[array[int], array[int]] | None:
    """(added, removed) from sorted *old* to sorted *new*; None when more than *limit* items changed.

    Runs where both agree are compared a block at a time, so a small change to
    a large set costs a few memory comparisons, not a Python step per prefix.
    """
    added, removed = array(new.typecode), array(old.typecode)
    i = j = 0
    while i < len(old) and j < len(new):
        if old[i : i + _BLOCK] == new[j : j + _BLOCK]:
            i += _BLOCK
            j += _BLOCK
            continue
        for _ in range(_BLOCK):
            if i == len(old) or j == len(new):
                break
            a, b = old[i], new[j]
            if a == b:
                i += 1
                j += 1
            elif a < b:
                removed.append(a)
                i += 1
            else:
                added.append(b)
                j += 1
        if len(added) + len(removed) > limit:
            return None
    added.extend(new[j:])
    removed.extend(old[i:])
    return (added, removed) if len(added) + len(removed) <= limit else None


def _compose(diffs: list[Diff]) -> Diff:
    """One diff doing what *diffs* do one after the other."""
    keys_added: set[int] = set()
    keys_removed: set[int] = set()
    markers_added: set[int] = set()
    markers_removed: set[int] = set()
    for diff in diffs:
        for gone, came, added, removed in (
            (diff.keys_removed, diff.keys_added, keys_added, keys_removed),
            (diff.markers_removed, diff.markers_added, markers_added, markers_removed),
        ):
            for value in gone:
                if value in added:
                    added.discard(value)
                else:
                    removed.add(value)
            for value in came:
                if value in removed:
                    removed.discard(value)
                else:
                    added.add(value)
    return Diff(
        array("Q", sorted(keys_added)),
        array("Q", sorted(keys_removed)),
        array("I", sorted(markers_added)),
        array("I", sorted(markers_removed)),
        diffs[-1].unmarked,
    )


class PrefixVersions:
    """The version last served and the diffs that led to it (see the module docstring)."""

    def __init__(self, max_diffs: int = MAX_DIFFS) -> None:
        self.current: Version | None = None
        self.max_diffs = max_diffs
        self._diffs: deque[tuple[str, Diff]] = deque()  # (the ETag it applies to, the diff to the next)

    def update(self, keys: PrefixIndex, markers: ShortPrefixIndex, unmarked: int) -> Version:
        """The version for these indexes: the current one when they are what it was made from, else new."""
        current = self.current
        if (
            current is not None
            and current.keys is keys
            and current.markers is markers
            and current.unmarked == unmarked
        ):
            return current
        etag = '"' + hashlib.sha256(encode_full(keys, markers, unmarked)).hexdigest()[:32] + '"'
        version = Version(keys, markers, unmarked, etag)
        if current is not None and current.etag == etag:
            version = Version(keys, markers, unmarked, etag)  # rebuilt, but the same prefixes
        elif current is not None:
            cap = max(_BLOCK, len(keys) // 4)
            found_keys = difference(current.keys.prefixes, keys.prefixes, cap)
            found_markers = difference(current.markers.prefixes, markers.prefixes, cap)
            if found_keys is None or found_markers is None:
                self._diffs.clear()  # too much changed: the full set is the answer
            else:
                self._diffs.append((current.etag, Diff(*found_keys, *found_markers, unmarked)))
                while len(self._diffs) > self.max_diffs or sum(d.size for _, d in self._diffs) > cap:
                    self._diffs.popleft()
        self.current = version
        return version

    def knows(self, etag: str) -> bool:
        """Whether a diff from *etag* to the current version can be given."""
        return any(start == etag for start, _ in self._diffs)

    def answer(self, since: str | None) -> tuple[bytes, bool]:
        """The bytes to send to an extension that has *since* (None: nothing), and whether they are a diff."""
        current = self.current
        if current is None:
            raise ValueError("no version yet: call update first")
        starts = [start for start, _ in self._diffs]
        if since is None or since not in starts:
            return encode_full(current.keys, current.markers, current.unmarked), False
        diffs = [diff for _, diff in list(self._diffs)[starts.index(since) :]]
        return encode_diff(_compose(diffs)), True
