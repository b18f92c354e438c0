from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from blocklists import Action, Entry, Store, StoreError, key_of
from blocklists.entry import host_marker, marker_of
from blocklists.store import MIGRATIONS, STORE_FILE, Event


def _entries(*expressions: str, action: Action = Action.BLOCK, reason: str = "") -> list[Entry]:
    return [Entry.listing(e, action, reason=reason) for e in expressions]


async def test_fresh_store_is_wal_with_a_schema_version(tmp_path: Path) -> None:
    async with Store.in_dir(tmp_path / "data"):
        pass
    db = sqlite3.connect(tmp_path / "data" / STORE_FILE)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


async def test_store_from_a_newer_linkwarn_is_refused(tmp_path: Path) -> None:
    path = tmp_path / STORE_FILE
    sqlite3.connect(path).execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(StoreError, match="upgrade linkwarn"):
        async with Store(path):
            pass


async def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / STORE_FILE
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a usable linkwarn store"):
        async with Store(path):
            pass
    assert path.read_bytes() == b"this is not sqlite" * 100


async def test_import_counts_added_updated_unchanged(store: Store) -> None:
    first = await store.import_entries("s", _entries("a.test/", "b.test/"))
    assert (first.added, first.updated, first.unchanged) == (2, 0, 0)
    again = await store.import_entries("s", _entries("a.test/", "b.test/", "c.test/"))
    assert (again.added, again.updated, again.unchanged) == (1, 0, 2)
    changed = await store.import_entries("s", _entries("a.test/", reason="new reason"))
    assert (changed.added, changed.updated, changed.unchanged) == (0, 1, 0)
    assert await store.count() == 3


async def test_replace_drops_what_the_source_no_longer_lists(store: Store) -> None:
    await store.import_entries("s", _entries("a.test/", "b.test/"))
    await store.import_entries("other", _entries("b.test/"))
    result = await store.import_entries("s", _entries("b.test/"), replace=True)
    assert result.removed == 1
    assert sorted(str(e.expression) for e in await store.entries()) == ["b.test/", "b.test/"]


async def test_failed_import_leaves_the_store_as_it_was(store: Store) -> None:
    await store.import_entries("s", _entries("a.test/"))

    def breaking() -> Iterator[Entry]:
        yield from _entries("b.test/", "c.test/")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        await store.import_entries("s", breaking())
    assert [e.expression for e in await store.entries()] == ["a.test/"]
    assert [s.name for s in await store.sources()] == ["s"]
    # The store is still usable afterwards.
    assert (await store.import_entries("s", _entries("d.test/"))).added == 1


async def test_lookup_returns_every_source(store: Store) -> None:
    await store.import_entries("one", _entries("a.test/", action=Action.BLOCK))
    await store.import_entries("two", _entries("a.test/", action=Action.ALLOW))
    found = await store.lookup([key_of("a.test/"), key_of("missing.test/")])
    assert list(found) == [key_of("a.test/")]
    assert sorted((e.source, e.action) for e in found[key_of("a.test/")]) == [
        ("one", Action.BLOCK), ("two", Action.ALLOW),
    ]  # fmt: skip


async def test_remove_by_key_and_by_source(store: Store) -> None:
    await store.import_entries("one", _entries("a.test/", "b.test/"))
    await store.import_entries("two", _entries("a.test/"))
    assert await store.remove([key_of("a.test/")], source="two") == 1
    assert await store.remove([key_of("a.test/")]) == 1
    assert await store.remove_source("one") == 1
    assert await store.count() == 0
    assert [s.name for s in await store.sources()] == ["two"]


async def test_key_prefixes_are_sorted(store: Store) -> None:
    expressions = [f"host{n}.test/" for n in range(300)]
    await store.import_entries("s", _entries(*expressions, "host7.test/page", "x.host7.test/"))
    data, markers = await store.key_prefixes()
    chunks = [data[i : i + 8] for i in range(0, len(data), 8)]
    assert chunks == sorted(key_of(e)[:8] for e in [*expressions, "host7.test/page", "x.host7.test/"])
    # One marker per host, however many entries name it; the index holds 4 bytes of each.
    hosts = [f"host{n}.test" for n in range(300)] + ["x.host7.test"]
    assert markers == b"".join(sorted(host_marker(h)[:4] for h in hosts))


async def test_key_prefixes_are_read_in_chunks_across_sources(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("blocklists.store._PREFIX_CHUNK", 7)
    one = [f"host{n}.test/" for n in range(100)]
    two = [f"host{n}.test/" for n in range(50, 130)]  # 50 keys in both sources
    await store.import_entries("one", _entries(*one))
    await store.import_entries("two", _entries(*two))
    data, _ = await store.key_prefixes()
    chunks = [data[i : i + 8] for i in range(0, len(data), 8)]
    assert chunks == sorted(chunks)
    assert set(chunks) == {key_of(e)[:8] for e in one + two}


def test_prefixes_out_of_order_are_detected_and_sorted() -> None:
    from blocklists.store import _ascending, _sorted_prefixes

    prefixes = [key_of(f"host{n}.test/")[:8] for n in range(20)]
    assert _ascending(b"".join(sorted(prefixes)))
    assert not _ascending(b"".join(prefixes))
    assert _sorted_prefixes(b"".join(prefixes)) == b"".join(sorted(prefixes))


async def test_hashed_entry_keeps_no_plaintext(store: Store, tmp_path: Path) -> None:
    await store.import_entries("h", [Entry(key=key_of("secret-mirror.test/"), action=Action.BLOCK)])
    (entry,) = await store.entries()
    assert entry.expression is None
    raw = (tmp_path / STORE_FILE).read_bytes() + (tmp_path / (STORE_FILE + "-wal")).read_bytes()
    assert b"secret-mirror" not in raw


async def test_a_closed_store_says_so(tmp_path: Path) -> None:
    store = Store.in_dir(tmp_path)
    with pytest.raises(StoreError, match="not open"):
        await store.count()


async def test_concurrent_transactions_take_turns(store: Store) -> None:
    import asyncio

    from blocklists.store import Event

    async def slow_import() -> None:
        async with store.transaction() as tx:
            await tx.source_id("slow", "local", 0)
            await asyncio.sleep(0.05)  # an apply that awaits half-way, as a feed does
            raise RuntimeError("rolled back")

    async def events() -> None:
        await asyncio.sleep(0.01)
        await store.add_events([Event(at=1.0, kind="audit")])

    results = await asyncio.gather(slow_import(), events(), return_exceptions=True)
    assert isinstance(results[0], RuntimeError)
    assert results[1] is None
    assert [e.kind for e in await store.events()] == ["audit"]  # not swept into the rollback
    assert await store.sources() == []


async def test_a_rolled_back_transaction_is_never_visible_to_status_readers(tmp_path: Path) -> None:
    import asyncio

    from blocklists.store import FeedState
    from proxy_addon.status import status_report

    async with Store.in_dir(tmp_path) as store:
        await store.import_entries("kept", _entries("a.test/"))
        inside = asyncio.Event()
        seen: dict[str, object] = {}

        async def doomed() -> None:
            async with store.transaction() as tx:
                source_id = await tx.source_id("doomed", "feed", 0)
                await tx.replace_rows(source_id, [e.row() for e in _entries("b.test/", "c.test/")])
                await tx.save_feed_state(FeedState("https://feed.test/", version=9, entries=2))
                assert await tx.source_count("doomed") == 2  # the transaction sees its own rows
                inside.set()
                await asyncio.sleep(0.05)
                raise RuntimeError("self-test failed")

        async def status() -> None:
            await inside.wait()
            seen.update(await status_report(store, tmp_path, 0.0))
            seen["lookup"] = await store.lookup([key_of("b.test/")])
            seen["entries"] = len(await store.entries())

        results = await asyncio.gather(doomed(), status(), return_exceptions=True)
        assert isinstance(results[0], RuntimeError)
        assert seen["index_entries"] == 1
        assert seen["sources"] == {"kept": 1}
        assert seen["feeds"] == []
        assert seen["lookup"] == {}
        assert seen["entries"] == 1
        after = await status_report(store, tmp_path, 0.0)
        assert (after["index_entries"], after["sources"], after["feeds"]) == (1, {"kept": 1}, [])


async def test_an_older_store_is_upgraded_and_keeps_its_entries(tmp_path: Path) -> None:
    path = tmp_path / STORE_FILE
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(f"BEGIN; {MIGRATIONS[0]}; {MIGRATIONS[1]}; PRAGMA user_version = 2; COMMIT;")
    db.execute("INSERT INTO sources (id, name, created_at, updated_at) VALUES (1, 'old', 0, 0)")
    db.execute(
        "INSERT INTO entries (key, source_id, expression, action, added_at)"
        " VALUES (?, 1, 'old.test/', 'warn', 5)",
        (key_of("old.test/"),),
    )
    db.close()
    async with Store(path) as store:
        (entry,) = await store.entries()
        assert (entry.expression, entry.action, entry.added_at, entry.require_reason) == (
            "old.test/", Action.WARN, 5, False,
        )  # fmt: skip
        await store.import_entries("old", [Entry.listing("old.test/", Action.WARN, require_reason=True)])
        (entry,) = await store.entries()
        assert entry.require_reason is True
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


async def test_require_reason_is_kept_and_counts_as_a_change(store: Store) -> None:
    plain = Entry.listing("a.test/", Action.WARN, reason="r")
    strict = Entry.listing("a.test/", Action.WARN, reason="r", require_reason=True)
    await store.import_entries("s", [plain])
    result = await store.import_entries("s", [strict])
    assert (result.added, result.updated, result.unchanged) == (0, 1, 0)
    (found,) = (await store.lookup([key_of("a.test/")]))[key_of("a.test/")]
    assert found.require_reason is True
    assert found.row() == (*strict.row()[:6], found.added_at, None, True, marker_of("a.test/"))


async def test_data_version_changes_for_other_processes_commits_only(tmp_path: Path) -> None:
    import asyncio
    import sys

    async with Store.in_dir(tmp_path) as store:
        first = await store.data_version()
        await store.import_entries("own", _entries("own.test/"))
        await store.add_events([Event(at=1.0, kind="audit")])
        assert await store.data_version() == first  # its own writes do not wake it
        code = (
            "import asyncio, sys\n"
            "from pathlib import Path\n"
            "from blocklists import Action, Entry, Store\n"
            "async def main():\n"
            "    async with Store.in_dir(Path(sys.argv[1])) as other:\n"
            "        await other.import_entries('other', [Entry.listing('other.test/', Action.BLOCK)])\n"
            "asyncio.run(main())\n"
        )
        child = await asyncio.create_subprocess_exec(sys.executable, "-c", code, str(tmp_path))
        assert await asyncio.wait_for(child.wait(), timeout=60) == 0
        second = await store.data_version()
        assert second != first
        assert await store.data_version() == second  # stable until the next foreign commit
        assert [s.name for s in await store.sources()] == ["other", "own"]


async def test_data_version_does_not_wait_for_a_long_write(store: Store) -> None:
    import asyncio

    before = await store.data_version()
    started = asyncio.Event()

    async def long_write() -> None:
        async with store.transaction() as tx:
            await tx.source_id("slow", "local", 0)
            started.set()
            await asyncio.sleep(1.0)

    writing = asyncio.ensure_future(long_write())
    await started.wait()
    assert await asyncio.wait_for(store.data_version(), timeout=0.2) == before
    await writing


async def test_a_store_another_process_keeps_writing_is_a_store_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("blocklists.store.BUSY_TIMEOUT_MS", 100)
    async with Store.in_dir(tmp_path) as store:
        await store.import_entries("s", _entries("a.test/"))
        other = sqlite3.connect(tmp_path / STORE_FILE, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreError, match=r"cannot write to the store .*database is locked"):
            await store.import_entries("s", _entries("b.test/"))
        assert await store.count() == 1  # reads still answer
        other.execute("ROLLBACK")
        other.close()
        assert (await store.import_entries("s", _entries("b.test/"))).added == 1


async def test_a_new_store_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    import stat

    data_dir = tmp_path / "new"
    async with Store.in_dir(data_dir) as store:
        await store.import_entries("a", [Entry.listing("a.test/", Action.BLOCK)])
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in data_dir.iterdir()}
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert modes["linkwarn.sqlite3"] == 0o600
    assert all(mode == 0o600 for name, mode in modes.items() if name.startswith("linkwarn.sqlite3")), modes
