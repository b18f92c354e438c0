from __future__ import annotations

import hashlib
import random
from array import array

from hypothesis import given
from hypothesis import strategies as st

from blocklists.index import PrefixIndex, ShortPrefixIndex
from blocklists.prefixes import MAX_DIFFS, PrefixVersions, difference, encode_full

values = st.sets(st.integers(0, 2**64 - 1), max_size=60).map(sorted)


@given(values, values)
def test_difference_is_what_sets_say(old: list[int], new: list[int]) -> None:
    found = difference(array("Q", old), array("Q", new), limit=10**6)
    assert found is not None
    added, removed = found
    assert list(added) == sorted(set(new) - set(old))
    assert list(removed) == sorted(set(old) - set(new))


def test_difference_of_a_large_set_with_a_few_changes() -> None:
    rng = random.Random(7)
    old = sorted(rng.sample(range(2**40), 200_000))
    new = sorted({*old[:-3], 1, 2**40 + 5} - {old[1000], old[150_000]})
    added, removed = difference(array("Q", old), array("Q", new), limit=100)  # type: ignore[misc]
    assert list(added) == sorted(set(new) - set(old))
    assert list(removed) == sorted(set(old) - set(new))
    assert difference(array("Q", old), array("Q", new), limit=2) is None  # too big: not worth a diff


def _indexes(keys: set[int], markers: set[int]) -> tuple[PrefixIndex, ShortPrefixIndex]:
    return PrefixIndex(array("Q", sorted(keys))), ShortPrefixIndex(array("I", sorted(markers)))


def test_versions_keep_a_bounded_history_of_diffs() -> None:
    versions = PrefixVersions()
    keys, markers = set(range(0, 100_000, 3)), {5, 6}
    seen = []
    for step in range(MAX_DIFFS + 3):
        keys = (keys - {step * 3}) | {10**9 + step}
        version = versions.update(*_indexes(keys, markers), unmarked=step)
        seen.append(version.etag)
        body = encode_full(version.keys, version.markers, version.unmarked)
        assert version.etag == '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    assert not versions.knows(seen[0])  # more than MAX_DIFFS back: forgotten
    assert versions.knows(seen[-1 - MAX_DIFFS])
    assert not versions.knows(seen[-1])  # the current version needs no diff
    assert versions.answer(seen[0])[1] is False
    assert versions.answer(seen[-2])[1] is True


def test_the_same_indexes_make_the_same_version() -> None:
    versions = PrefixVersions()
    keys, markers = _indexes({1, 2, 3}, {4})
    first = versions.update(keys, markers, 0)
    assert versions.update(keys, markers, 0) is first
    rebuilt = versions.update(*_indexes({1, 2, 3}, {4}), unmarked=0)  # rebuilt with the same prefixes
    assert rebuilt.etag == first.etag
    assert not versions.knows(first.etag)
    assert versions.update(keys, markers, 1).etag != first.etag  # the unmarked count is part of it


def test_a_change_too_big_for_a_diff_forgets_the_history() -> None:
    versions = PrefixVersions()
    small = versions.update(*_indexes(set(range(10_000)), set()), unmarked=0)
    versions.update(*_indexes(set(range(10_000, 20_000)), set()), unmarked=0)
    assert not versions.knows(small.etag)
    assert versions.answer(small.etag)[1] is False
