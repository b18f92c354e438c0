from __future__ import annotations

import gc
import sys
from array import array

import pytest

from blocklists import PrefixIndex, key_of


def test_hits_report_listed_expressions_with_full_keys() -> None:
    index = PrefixIndex.from_keys([key_of("a.test/"), key_of("b.test/x")])
    hits = index.hits(["c.test/", "b.test/x", "a.test/"])
    assert hits == [("b.test/x", key_of("b.test/x")), ("a.test/", key_of("a.test/"))]


def test_empty_index_hits_nothing() -> None:
    assert PrefixIndex.empty().hits(["a.test/"]) == []
    assert len(PrefixIndex.empty()) == 0


def test_from_prefix_bytes_reads_big_endian_sorted_prefixes() -> None:
    keys = sorted(key_of(f"h{n}.test/") for n in range(100))
    index = PrefixIndex.from_prefix_bytes(b"".join(k[:8] for k in keys))
    assert len(index) == 100
    assert [e for e, _ in index.hits(["h7.test/", "h100.test/"])] == ["h7.test/"]


def test_from_prefix_bytes_refuses_a_partial_prefix() -> None:
    with pytest.raises(ValueError, match="not a whole number of prefixes"):
        PrefixIndex.from_prefix_bytes(b"\x00" * 12)


def test_index_is_compact_and_gives_the_collector_nothing_to_walk() -> None:
    index = PrefixIndex.from_keys(key_of(f"h{n}.test/") for n in range(100_000))
    assert index.nbytes / len(index) < 11  # prefixes (8) + bucket table (1-2)
    # Its only reference is its type: the collector never walks 100,000 items.
    assert gc.get_referents(index._prefixes) == [type(index._prefixes)]
    assert sys.getsizeof(index._prefixes) >= 8 * 100_000


def test_with_keys_merges_into_a_new_index() -> None:
    base = PrefixIndex.from_keys(key_of(f"h{n}.test/") for n in range(1000))
    grown = base.with_keys([key_of("new.test/"), key_of("h5.test/"), key_of("other.test/x")])
    assert len(grown) == 1002  # h5 was there already
    probes = ["new.test/", "other.test/x", "h5.test/", "h999.test/", "no.test/"]
    assert [e for e, _ in grown.hits(probes)] == probes[:4]
    assert [e for e, _ in base.hits(["new.test/"])] == []  # the original is untouched
    assert list(grown._prefixes) == sorted(grown._prefixes)


def test_a_short_prefix_index_holds_four_bytes_and_merges_like_the_long_one() -> None:
    from blocklists.index import ShortPrefixIndex

    keys = [key_of(f"h{n}.test") for n in range(50)]
    index = ShortPrefixIndex.from_keys(keys[:40])
    assert index.nbytes < PrefixIndex.from_keys(keys[:40]).nbytes
    assert [e for e, _ in index.hits(["h3.test", "h45.test"])] == ["h3.test"]
    merged = index.with_prefixes(keys[40:])
    assert isinstance(merged, ShortPrefixIndex)
    assert [e for e, _ in merged.hits(["h3.test", "h45.test", "other.test"])] == ["h3.test", "h45.test"]
    with pytest.raises(TypeError, match="array\\('I'\\)"):
        ShortPrefixIndex(array("Q"))
