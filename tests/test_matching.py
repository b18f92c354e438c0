from __future__ import annotations

import time
from typing import Any

import pytest

from blocklists import Action, Checker, Entry, Store, key_of

from .conftest import load_vectors


async def _checker(store: Store, entries: list[Entry]) -> Checker:
    by_source: dict[str, list[Entry]] = {}
    for entry in entries:
        by_source.setdefault(entry.source, []).append(entry)
    for source, items in by_source.items():
        await store.import_entries(source, items)
    checker = Checker(store)
    await checker.reload()
    return checker


@pytest.mark.parametrize("case", load_vectors("precedence.json"), ids=lambda c: c["name"])
async def test_precedence_vector(store: Store, case: dict[str, Any]) -> None:
    # Each entry in its own source, so that one expression can carry two actions.
    entries = [
        Entry.listing(expression, Action(action), source=f"list{n}")
        for n, (expression, action) in enumerate(case["entries"])
    ]
    verdict = await (await _checker(store, entries)).check(case["url"])
    if case["winner"] is None:
        assert verdict.entry is None
    else:
        assert verdict.entry is not None
        assert [verdict.entry.expression, str(verdict.entry.action)] == case["winner"]


async def test_expired_entry_never_matches_but_is_traced(store: Store) -> None:
    now = time.time()
    checker = await _checker(
        store,
        [
            Entry.listing("leak.test/", Action.BLOCK, source="a", expires_at=int(now) - 1),
            Entry.listing("leak.test/", Action.AUDIT, source="b", expires_at=int(now) + 3600),
        ],
    )
    verdict = await checker.check("http://leak.test/", now=now)
    assert verdict.action is Action.AUDIT
    assert [m.entry.source for m in verdict.expired] == ["a"]
    assert "expired" in verdict.explain()[-1]
    later = await checker.check("http://leak.test/", now=now + 7200)
    assert later.entry is None


async def test_prefix_hit_is_confirmed_against_the_full_key(store: Store) -> None:
    # An index that holds the prefix of an expression whose full key is not stored:
    # the prefix hits, the store says no, and nothing matches.
    await store.import_entries("a", [Entry.listing("other.test/", Action.BLOCK)])
    checker = Checker(store)
    await checker.reload()
    from blocklists import PrefixIndex

    forged = bytearray(key_of("leak.test/"))
    forged[-1] ^= 0xFF  # same first 8 bytes, different key
    checker.index = PrefixIndex.from_keys([bytes(forged), key_of("other.test/")])
    canonical, expressions, hits = checker.prefilter("http://leak.test/")
    assert [expression for expression, _ in hits] == ["leak.test/"]
    verdict = await checker.confirm("http://leak.test/", (canonical, expressions, hits))
    assert verdict.entry is None


async def test_explanation_says_why_the_winner_won(store: Store) -> None:
    checker = await _checker(
        store,
        [
            Entry.listing("leak.test/", Action.BLOCK, source="feed"),
            Entry.listing("leak.test/dump/", Action.ALLOW, source="local"),
            Entry.listing("leak.test/dump/", Action.WARN, source="other"),
        ],
    )
    verdict = await checker.check("http://leak.test/dump/file")
    lines = verdict.explain()
    assert lines[0].startswith("leak.test/dump/ (allow) matched: everything under /dump/")
    assert "allow beats warn at equal specificity" in lines[1]
    assert "more specific than leak.test/ (block, feed)" in lines[2]


async def test_hashed_entry_matches_without_plaintext(store: Store) -> None:
    checker = await _checker(store, [Entry(key=key_of("leak.test/"), action=Action.WARN, source="h")])
    verdict = await checker.check("https://www.leak.test/x")
    assert verdict.entry is not None
    assert verdict.entry.expression is None
    assert verdict.entry.label == "sha256:" + key_of("leak.test/").hex()


async def test_before_the_index_is_built_the_store_decides(store: Store) -> None:
    await store.import_entries("a", [Entry.listing("leak.test/", Action.BLOCK)])
    checker = Checker(store)  # no reload: no index yet
    assert checker.index is None
    assert (await checker.check("https://www.leak.test/x")).action is Action.BLOCK
    assert (await checker.check("https://clean.test/")).entry is None
