"""The local store: entries, their sources, feeds' states and events, in one SQLite file.

Two connections, and the store's shape keeps them apart. Every read goes to
the *reader*, which sees committed data only: a lookup, a status report or a
list never sees a transaction that is still open (and may yet be rolled
back), and never queues behind a long write such as a feed being applied.
The *writer* is reached only through `Store.transaction`, which yields a
`Transaction`: the write-side queries callers need, inside one transaction
that commits on success and rolls back on any error, so an import that fails
half-way leaves the store exactly as it was. Transactions take turns. (One
question goes to the writer outside a transaction, and only while it is idle:
`Store.data_version`, because only the connection a process writes through
can tell its own commits from other processes'.)

The schema version lives in ``PRAGMA user_version``; `MIGRATIONS` brings an
older file up to date, and a file from a newer linkwarn is refused rather
than guessed at. The store writes `EntryRow` tuples (see `rows`); it knows
nothing of the feed format.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
import time
from array import array
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import astuple, dataclass, fields, replace
from itertools import islice
from operator import itemgetter, le
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiosqlite

from .entry import Action, Entry, EntryRow, marker_of
from .errors import StoreError
from .rows import ROWS_PER_INSERT, STAGED_TABLE, VALUE_COLUMNS, grouped

__all__ = [
    "MIGRATIONS",
    "STORE_FILE",
    "Event",
    "FeedState",
    "ImportResult",
    "SourceInfo",
    "Store",
    "Transaction",
    "default_data_dir",
]

STORE_FILE = "linkwarn.sqlite3"

MIGRATIONS: tuple[str, ...] = (
    # 1: entries keyed by SHA-256 of their expression, per source; events.
    """
    CREATE TABLE sources (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL DEFAULT 'local' CHECK (kind IN ('local', 'feed')),
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE TABLE entries (
        key BLOB NOT NULL CHECK (length(key) = 32),
        source_id INTEGER NOT NULL REFERENCES sources (id) ON DELETE CASCADE,
        expression TEXT,
        action TEXT NOT NULL CHECK (action IN ('block', 'warn', 'audit', 'allow')),
        reason TEXT NOT NULL DEFAULT '',
        category TEXT NOT NULL DEFAULT '',
        incident TEXT NOT NULL DEFAULT '',
        added_at INTEGER NOT NULL,
        expires_at INTEGER,
        PRIMARY KEY (key, source_id)
    ) WITHOUT ROWID;
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        at REAL NOT NULL,
        kind TEXT NOT NULL,
        client TEXT NOT NULL DEFAULT '',
        action TEXT,
        entry_key BLOB,
        expression TEXT,
        source TEXT,
        url TEXT,
        referrer_host TEXT,
        detail TEXT
    );
    CREATE INDEX events_by_time ON events (at);
    """,
    # 2: the state of each subscribed feed, so a restart resumes where it was.
    """
    CREATE TABLE feeds (
        url TEXT PRIMARY KEY,
        feed_id TEXT,
        version INTEGER,
        generated_at INTEGER,
        expires_at INTEGER,
        etag TEXT,
        entries INTEGER NOT NULL DEFAULT 0,
        last_attempt REAL,
        last_success REAL,
        last_error TEXT
    );
    """,
    # 3: an entry may require a typed reason from whoever proceeds past its warning.
    """
    ALTER TABLE entries ADD COLUMN require_reason INTEGER NOT NULL DEFAULT 0
        CHECK (require_reason IN (0, 1));
    """,
    # 4: each entry's host marker (`entry.host_marker`): which TLS connections must be decrypted.
    """
    ALTER TABLE entries ADD COLUMN marker BLOB CHECK (marker IS NULL OR length(marker) = 8);
    UPDATE entries SET marker = linkwarn_marker(expression) WHERE expression IS NOT NULL;
    """,
)


def default_data_dir() -> Path:
    """``$LINKWARN_DATA_DIR``, else ``$XDG_DATA_HOME/linkwarn``, else ``~/.local/share/linkwarn``."""
    explicit = os.environ.get("LINKWARN_DATA_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or "~/.local/share"
    return Path(base).expanduser() / "linkwarn"


@dataclass(frozen=True, slots=True)
class ImportResult:
    added: int
    updated: int
    unchanged: int
    removed: int = 0


@dataclass(frozen=True, slots=True)
class SourceInfo:
    name: str
    kind: str
    entries: int
    updated_at: int


@dataclass(frozen=True, slots=True)
class Event:
    """Something linkwarn did about a listed URL: never written for unlisted traffic."""

    at: float
    kind: str  # warning, block, proceed, audit, report, refused, ...
    client: str = ""
    action: str | None = None
    entry_key: bytes | None = None
    expression: str | None = None
    source: str | None = None
    url: str | None = None  # canonical
    referrer_host: str | None = None
    detail: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "kind": self.kind,
            "client": self.client,
            "action": self.action,
            "entry_key": None if self.entry_key is None else self.entry_key.hex(),
            "expression": self.expression,
            "source": self.source,
            "url": self.url,
            "referrer_host": self.referrer_host,
            "detail": self.detail,
        }


_EVENT_COLUMNS = "at, kind, client, action, entry_key, expression, source, url, referrer_host, detail"
_ENTRY_COLUMNS = (
    "e.key, e.action, e.expression, e.reason, e.category, e.incident, s.name, e.added_at, e.expires_at,"
    " s.kind, e.require_reason, e.marker"
)
_ENTRY_QUERY = f"SELECT {_ENTRY_COLUMNS} FROM entries e JOIN sources s ON s.id = e.source_id"  # noqa: S608
# Bulk writes in key order touch each B-tree page once; in random order they
# thrash the page cache (measured: 1M rows in 4 s sorted, 29 s unsorted).
CACHE_KIB = 64 * 1024
BUSY_TIMEOUT_MS = 5000  # how long a write waits for another process's to end
_BATCH = 500  # keys per IN (...) query, under SQLite's variable limit


def _entry(row: Any) -> Entry:
    key, action, expression, reason, category, incident, source, added_at, expires_at, kind, why, marker = row
    return Entry(
        key=bytes(key),
        action=Action(action),
        expression=expression,
        reason=reason,
        category=category,
        incident=incident,
        source=source,
        added_at=added_at,
        expires_at=expires_at,
        local=kind == "local",
        require_reason=bool(why),
        marker=None if marker is None else bytes(marker),
    )


def _marker_or_none(expression: str | None) -> bytes | None:
    return None if expression is None else marker_of(expression)


def _in_key_order(rows: Sequence[EntryRow]) -> Sequence[EntryRow]:
    """*rows* in key order. A feed already sends them so: then checking (in Python,
    which lets other threads run) beats sorting (one C call that holds the GIL)."""
    previous = b""
    for row in rows:
        if row[0] < previous:
            return sorted(rows)
        previous = row[0]
    return rows


def _sorted_by_key(rows: Iterable[EntryRow]) -> list[EntryRow]:
    return sorted(rows, key=itemgetter(0))


def _sorted_rows(entries: Iterable[Entry]) -> list[EntryRow]:
    rows = [e.row() for e in entries]
    rows.sort(key=itemgetter(0))
    return rows


_PREFIX_CHUNK = 65536  # prefixes per query when the index is read


def _read_key_prefixes(path: Path) -> tuple[bytes, bytes]:
    """The first 8 bytes of every key, and the first 4 of every host marker; each sorted.

    Keys: one sequential scan of committed data (the table is stored in key
    order). SQLite hex-encodes a chunk at a time, without the GIL, and Python
    decodes the text: no Python object per key, so the event loop barely
    notices a million of them being read. Markers: SQLite sorts and
    deduplicates them in one query, without the GIL too.
    """
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        parts: list[bytes] = []
        after = b""
        while True:
            text, last = db.execute(
                "SELECT group_concat(hex(substr(key, 1, 8)), ''), max(key)"
                " FROM (SELECT key FROM entries WHERE key > ? ORDER BY key LIMIT ?)",
                (after, _PREFIX_CHUNK),
            ).fetchone()
            if last is None:
                break
            parts.append(_in_order(bytes.fromhex(text)))
            after = last
        # Every entry's marker, a host entry's ("host/") too: a host is then screened by one
        # lookup in one index (`HostIndex.reads`), not by its marker and its host entry's key.
        (markers,) = db.execute(
            "SELECT group_concat(hex(m), '') FROM (SELECT DISTINCT substr(marker, 1, 4) AS m FROM entries"
            " WHERE marker IS NOT NULL ORDER BY m)"
        ).fetchone()
        return b"".join(parts), _in_order(bytes.fromhex(markers or ""), width=4)
    finally:
        db.close()


def _in_order(chunk: bytes, width: int = 8) -> bytes:
    # SQLite before 3.44 does not promise group_concat's order; it keeps it in
    # practice, and an index out of order would miss entries: check.
    return chunk if _ascending(chunk, width) else _sorted_prefixes(chunk, width)


def _ascending(prefixes: bytes, width: int = 8) -> bool:
    values = array("Q" if width == 8 else "I", prefixes)
    if sys.byteorder == "little":
        values.byteswap()
    return all(map(le, values, islice(values, 1, None)))


def _sorted_prefixes(prefixes: bytes, width: int = 8) -> bytes:
    return b"".join(sorted(prefixes[at : at + width] for at in range(0, len(prefixes), width)))


_UPSERT_TAIL = (
    " ON CONFLICT (key, source_id) DO UPDATE SET"
    " expression = coalesce(excluded.expression, expression), action = excluded.action,"
    " reason = excluded.reason, category = excluded.category, incident = excluded.incident,"
    " expires_at = excluded.expires_at, require_reason = excluded.require_reason,"
    " marker = coalesce(excluded.marker, marker)"
    " WHERE action IS NOT excluded.action OR reason IS NOT excluded.reason"
    " OR category IS NOT excluded.category OR incident IS NOT excluded.incident"
    " OR expires_at IS NOT excluded.expires_at OR require_reason IS NOT excluded.require_reason"
    " OR (expression IS NULL AND excluded.expression IS NOT NULL)"
    " OR (marker IS NULL AND excluded.marker IS NOT NULL)"
)


async def _lookup(db: aiosqlite.Connection, keys: Sequence[bytes]) -> dict[bytes, list[Entry]]:
    found: dict[bytes, list[Entry]] = {}
    for start in range(0, len(keys), _BATCH):
        chunk = keys[start : start + _BATCH]
        marks = ",".join("?" * len(chunk))
        async with db.execute(f"{_ENTRY_QUERY} WHERE e.key IN ({marks})", chunk) as cursor:
            for row in await cursor.fetchall():
                entry = _entry(row)
                found.setdefault(entry.key, []).append(entry)
    return found


async def _one(db: aiosqlite.Connection, query: str, params: Sequence[object] = ()) -> Any:
    async with db.execute(query, params) as cursor:
        row = await cursor.fetchone()
    return None if row is None else row[0]


class Transaction:
    """The writer connection inside one open transaction: the write-side queries callers need.

    What it reads includes what the transaction has written and not yet
    committed; nobody else sees that until the commit. Get one from
    `Store.transaction`; it is useless once that block ends.
    """

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    async def lookup(self, keys: Sequence[bytes]) -> dict[bytes, list[Entry]]:
        """Like `Store.lookup`, but seeing this transaction's own changes (a feed's self-tests)."""
        return await _lookup(self._db, keys)

    async def source_count(self, name: str) -> int:
        """How many entries the source *name* has, as this transaction leaves it."""
        return int(
            await _one(
                self._db,
                "SELECT count(*) FROM entries WHERE source_id = (SELECT id FROM sources WHERE name = ?)",
                (name,),
            )
        )

    async def source_id(self, name: str, kind: str, now: int) -> int:
        """The id of source *name*, made if new; its update time becomes *now*."""
        await self._db.execute(
            "INSERT INTO sources (name, kind, created_at, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET updated_at = excluded.updated_at",
            (name, kind, now, now),
        )
        return int(await _one(self._db, "SELECT id FROM sources WHERE name = ?", (name,)))

    async def existing_source_id(self, name: str) -> int | None:
        found = await _one(self._db, "SELECT id FROM sources WHERE name = ?", (name,))
        return None if found is None else int(found)

    async def count(self, source_id: int) -> int:
        return int(await _one(self._db, "SELECT count(*) FROM entries WHERE source_id = ?", (source_id,)))

    async def upsert_rows(self, source_id: int, rows: Iterable[EntryRow]) -> None:
        """Add *rows* (in key order) under *source_id*; a row already there is updated if it differs."""
        head = f"INSERT INTO entries (key, source_id, {VALUE_COLUMNS}) VALUES "  # noqa: S608
        await self._write_rows(head, _UPSERT_TAIL, source_id, rows)

    async def replace_rows(self, source_id: int, rows: Iterable[EntryRow]) -> None:
        """Write *rows* (in key order) under *source_id*, replacing any with the same key."""
        head = f"INSERT OR REPLACE INTO entries (key, source_id, {VALUE_COLUMNS}) VALUES "  # noqa: S608
        await self._write_rows(head, "", source_id, rows)

    async def _write_rows(self, head: str, tail: str, source_id: int, rows: Iterable[EntryRow]) -> None:
        one = "(?, " + str(int(source_id)) + ", " + ", ".join("?" * (VALUE_COLUMNS.count(",") + 1)) + ")"
        rest: list[EntryRow] = []
        await self._db.executemany(head + ",".join([one] * ROWS_PER_INSERT) + tail, grouped(rows, rest))
        await self._db.executemany(head + one + tail, rest)

    async def copy_staged(self, source_id: int) -> None:
        """Make *source_id*'s entries exactly the staged ones (the file attached as ``staging``)."""
        await self._db.execute("DELETE FROM entries WHERE source_id = ?", (source_id,))
        # One statement, one sqlite3_step: a million rows copied without the GIL.
        # Staged in key order (see CACHE_KIB); the table's CHECKs apply again.
        await self._db.execute(
            f"INSERT INTO entries (key, source_id, {VALUE_COLUMNS})"  # noqa: S608
            f" SELECT key, ?, {VALUE_COLUMNS} FROM staging.{STAGED_TABLE} ORDER BY rowid",
            (source_id,),
        )

    async def delete_keys(self, keys: Sequence[bytes], source_id: int | None = None) -> int:
        """Remove entries by key, from one source or (None) all; returns how many rows went."""
        removed = 0
        for start in range(0, len(keys), _BATCH):
            chunk = keys[start : start + _BATCH]
            marks = ",".join("?" * len(chunk))
            query = f"DELETE FROM entries WHERE key IN ({marks})"  # noqa: S608
            params: tuple[object, ...] = tuple(chunk)
            if source_id is not None:
                query += " AND source_id = ?"
                params = (*chunk, source_id)
            cursor = await self._db.execute(query, params)
            removed += cursor.rowcount
        return removed

    async def delete_absent(self, source_id: int, keys: Iterable[bytes]) -> int:
        """Remove the entries of *source_id* whose key is not in *keys*; returns how many went."""
        await self._db.execute("CREATE TEMP TABLE IF NOT EXISTS keep (key BLOB PRIMARY KEY)")
        await self._db.execute("DELETE FROM keep")
        await self._db.executemany("INSERT OR IGNORE INTO keep (key) VALUES (?)", ((key,) for key in keys))
        cursor = await self._db.execute(
            "DELETE FROM entries WHERE source_id = ? AND key NOT IN (SELECT key FROM keep)", (source_id,)
        )
        await self._db.execute("DELETE FROM keep")
        return cursor.rowcount

    async def delete_source(self, name: str) -> int:
        """Remove a source and all its entries; returns how many entries went."""
        cursor = await self._db.execute(
            "DELETE FROM entries WHERE source_id = (SELECT id FROM sources WHERE name = ?)", (name,)
        )
        await self._db.execute("DELETE FROM sources WHERE name = ?", (name,))
        return cursor.rowcount

    async def add_events(self, events: Sequence[Event]) -> None:
        await self._db.executemany(
            f"INSERT INTO events ({_EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
            [
                (e.at, e.kind, e.client, e.action, e.entry_key, e.expression, e.source, e.url,
                 e.referrer_host, e.detail)
                for e in events
            ],
        )  # fmt: skip

    async def delete_events_before(self, at: float, limit: int) -> int:
        """Delete up to *limit* of the events older than *at*, oldest first; returns how many."""
        cursor = await self._db.execute(
            "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE at < ? ORDER BY at LIMIT ?)",
            (at, limit),
        )
        return cursor.rowcount

    async def save_feed_state(self, state: FeedState) -> None:
        values = astuple(state)
        await self._db.execute(
            f"INSERT INTO feeds ({_FEED_COLUMNS}) VALUES ({','.join('?' * len(values))})"  # noqa: S608
            f" ON CONFLICT (url) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in _FEED_FIELDS[1:])}",
            values,
        )

    @property
    def total_changes(self) -> int:
        """Rows inserted, updated or deleted by the writer so far (for counting what a step did)."""
        return self._db.total_changes


def _create_private(path: Path) -> None:
    """Create the store's directory (0700) and file (0600) if they are new: readable by their owner only.

    SQLite makes its ``-wal`` and ``-shm`` files with the database file's mode.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


class Store:
    """The SQLite store. Use as ``async with Store(path) as store:``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()
        self._data_version = 0

    @classmethod
    def in_dir(cls, data_dir: Path) -> Self:
        return cls(data_dir / STORE_FILE)

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def open(self) -> None:
        try:
            await asyncio.to_thread(_create_private, self.path)
            db = await aiosqlite.connect(self.path, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the store {self.path}: {exc}") from exc
        try:
            await db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            await db.execute("PRAGMA journal_mode = WAL")
            await db.execute("PRAGMA synchronous = NORMAL")
            await db.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
            # Foreign keys are declared but not enforced: entries only ever get a
            # source id from Transaction.source_id, and enforcement costs 15 % of a bulk insert.
            # Migration 4 derives markers from the expressions already stored.
            await db.create_function("linkwarn_marker", 1, _marker_or_none, deterministic=True)
            await self._migrate(db)
            self._data_version = int(await _one(db, "PRAGMA data_version"))
        except sqlite3.DatabaseError as exc:
            await db.close()
            raise StoreError(f"{self.path} is not a usable linkwarn store: {exc}") from exc
        except StoreError:
            await db.close()
            raise
        self._writer = db
        reader = await aiosqlite.connect(self.path, isolation_level=None)
        await reader.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        await reader.execute("PRAGMA query_only = ON")
        self._reader = reader

    async def close(self) -> None:
        for db in (self._reader, self._writer):
            if db is not None:
                await db.close()
        self._writer = self._reader = None

    def _read(self) -> aiosqlite.Connection:
        """The read-only connection: committed data only. Every read goes here."""
        if self._reader is None:
            raise StoreError("the store is not open")
        return self._reader

    async def _migrate(self, db: aiosqlite.Connection) -> None:
        version = int(await _one(db, "PRAGMA user_version") or 0)
        if version > len(MIGRATIONS):
            raise StoreError(
                f"{self.path} has schema version {version}; this linkwarn knows up to "
                f"{len(MIGRATIONS)}: upgrade linkwarn"
            )
        for number, script in enumerate(MIGRATIONS[version:], version + 1):
            # executescript commits first; the version bump is in the same script.
            await db.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")

    @asynccontextmanager
    async def transaction(self, attach: Path | None = None) -> AsyncIterator[Transaction]:
        """One write transaction: committed on success, rolled back on any error.

        Transactions take turns: the writer connection is shared (events, imports,
        feeds), and one that awaits half-way must not let another's statements in.
        With *attach*, that SQLite file is readable as schema ``staging`` meanwhile.
        """
        async with self._write_lock:
            if self._writer is None:
                raise StoreError("the store is not open")
            db = self._writer
            if attach is not None:
                await db.execute("ATTACH DATABASE ? AS staging", (str(attach),))
            try:
                try:
                    await db.execute("BEGIN IMMEDIATE")
                except sqlite3.OperationalError as exc:  # another process kept writing past the timeout
                    raise StoreError(f"cannot write to the store {self.path}: {exc}") from exc
                try:
                    yield Transaction(db)
                except BaseException:
                    await db.rollback()
                    raise
                await db.commit()
            finally:
                if attach is not None:
                    await db.execute("DETACH DATABASE staging")

    async def data_version(self) -> int:
        """A number that changes whenever another process has committed to the store file.

        SQLite's ``PRAGMA data_version`` on the writer connection: it changes
        when a commit by any other connection to the file (another
        ``linkwarn import``, ``remove``, ``sync`` or proxy, or another `Store`
        object on the same file in this process) becomes visible, and never
        for this object's own commits, which all go through that connection
        (events included), so a process does not wake itself up. Compare two
        values for equality only; the number itself means nothing.

        It never queues behind a write: while this store's own transaction is
        open, no other process can commit (SQLite has one writer), so the last
        value read is still true and is returned at once. A commit another
        process made just before that transaction began shows in the first call
        after it ends.
        """
        if self._writer is None:
            raise StoreError("the store is not open")
        if not self._write_lock.locked():
            async with self._write_lock:
                self._data_version = int(await _one(self._writer, "PRAGMA data_version"))
        return self._data_version

    async def import_entries(
        self,
        source: str,
        entries: Iterable[Entry],
        *,
        kind: str = "local",
        replace: bool = False,
    ) -> ImportResult:
        """Add or update *entries* under *source*; with *replace*, drop the source's others."""
        # Built and sorted in a worker thread: a million entries must not stall
        # the event loop of a running proxy.
        rows = await asyncio.to_thread(_sorted_rows, entries)
        return await self._import(source, rows, kind, replace)

    async def import_rows(
        self,
        source: str,
        rows: Iterable[EntryRow],
        *,
        kind: str = "local",
        replace: bool = False,
    ) -> ImportResult:
        """`import_entries` for rows (`Entry.row`, `ParsedList.rows`): no object per entry."""
        return await self._import(source, await asyncio.to_thread(_sorted_by_key, rows), kind, replace)

    async def _import(self, source: str, rows: list[EntryRow], kind: str, replace: bool) -> ImportResult:
        now = int(time.time())
        async with self.transaction() as tx:
            source_id = await tx.source_id(source, kind, now)
            before = await tx.count(source_id)
            changes_before = tx.total_changes
            if before:
                await tx.upsert_rows(source_id, rows)
            else:
                await tx.replace_rows(source_id, rows)  # nothing to compare with: plain inserts
            written = tx.total_changes - changes_before
            after = await tx.count(source_id)
            added = after - before
            removed = 0
            if replace:
                # Entries of this source that the new list no longer has.
                removed = await tx.delete_absent(source_id, [row[0] for row in rows])
            return ImportResult(added, written - added, len(rows) - written, removed)

    async def remove(self, keys: Sequence[bytes], source: str | None = None) -> int:
        """Remove entries by key, from one source or all; returns how many rows went."""
        async with self.transaction() as tx:
            if source is None:
                return await tx.delete_keys(keys)
            source_id = await tx.existing_source_id(source)
            return 0 if source_id is None else await tx.delete_keys(keys, source_id)

    async def remove_source(self, name: str) -> int:
        """Remove a source and all its entries; returns how many entries went."""
        async with self.transaction() as tx:
            return await tx.delete_source(name)

    async def sources(self) -> list[SourceInfo]:
        async with self._read().execute(
            "SELECT s.name, s.kind, count(e.key), s.updated_at FROM sources s"
            " LEFT JOIN entries e ON e.source_id = s.id GROUP BY s.id ORDER BY s.name"
        ) as cursor:
            return [SourceInfo(*row) for row in await cursor.fetchall()]

    async def count(self) -> int:
        return int(await _one(self._read(), "SELECT count(*) FROM entries") or 0)

    async def unmarked_count(self) -> int:
        """Entries whose host nobody knows (hashed, no marker), allow entries aside.

        The proxy cannot tell which TLS connections such an entry could match,
        so while there is one it reads them all.
        """
        return int(
            await _one(
                self._read(),
                "SELECT count(*) FROM entries"
                " WHERE marker IS NULL AND expression IS NULL AND action != 'allow'",
            )
            or 0
        )

    async def event_summary(self) -> tuple[int, float | None]:
        """How many events are stored, and when the oldest was."""
        async with self._read().execute("SELECT count(*), min(at) FROM events") as cursor:
            row = await cursor.fetchone()
        return (0, None) if row is None else (int(row[0]), row[1])

    async def release_memory(self) -> None:
        """Hand back what SQLite caches beyond what it needs now (``PRAGMA shrink_memory``)."""
        for db in (self._reader, self._writer):
            if db is not None and not (db is self._writer and self._write_lock.locked()):
                await db.execute("PRAGMA shrink_memory")

    async def entries(self, source: str | None = None, limit: int | None = None) -> list[Entry]:
        query = _ENTRY_QUERY
        params: list[object] = []
        if source is not None:
            query += " WHERE s.name = ?"
            params.append(source)
        query += " ORDER BY s.name, e.expression, e.key"
        if limit is not None:
            query += " LIMIT ?"
            params.append(limit)
        async with self._read().execute(query, params) as cursor:
            return [_entry(row) for row in await cursor.fetchall()]

    async def plaintext_entries(self, limit: int, now: float) -> list[Entry]:
        """Up to *limit* live entries that name their expression, local ones first.

        What a browser can enforce by itself (its rule engine needs the address,
        so hashed entries never qualify); audit entries only log, so they are left out.
        """
        async with self._read().execute(
            f"{_ENTRY_QUERY} WHERE e.expression IS NOT NULL AND e.action != 'audit'"
            " AND (e.expires_at IS NULL OR e.expires_at > ?)"
            " ORDER BY s.kind = 'local' DESC, e.key LIMIT ?",
            (int(now), limit),
        ) as cursor:
            return [_entry(row) for row in await cursor.fetchall()]

    async def lookup(self, keys: Sequence[bytes]) -> dict[bytes, list[Entry]]:
        """Every entry, from every source, whose full key is one of *keys* (committed data)."""
        return await _lookup(self._read(), keys)

    async def key_prefixes(self) -> tuple[bytes, bytes]:
        """What the indexes are built from: every key's first 8 bytes, and 4 of every host marker.

        Each sorted and concatenated; read in a worker thread, over a
        connection of its own, as hex text that SQLite builds a chunk at a
        time (see `_read_key_prefixes`).
        """
        if self._writer is None:
            raise StoreError("the store is not open")
        return await asyncio.to_thread(_read_key_prefixes, self.path)

    async def add_events(self, events: Sequence[Event]) -> None:
        """Write a batch of events in one transaction."""
        if not events:
            return
        async with self.transaction() as tx:
            await tx.add_events(events)

    async def events(
        self, since: float | None = None, kind: str | None = None, limit: int | None = None
    ) -> list[Event]:
        """Events in time order, oldest first; the newest *limit* when limited."""
        query = f"SELECT {_EVENT_COLUMNS} FROM events WHERE at >= ?"  # noqa: S608
        params: list[object] = [since or 0]
        if kind is not None:
            query += " AND kind = ?"
            params.append(kind)
        query += " ORDER BY at DESC, id DESC"
        if limit is not None:
            query += " LIMIT ?"
            params.append(limit)
        async with self._read().execute(query, params) as cursor:
            rows = await cursor.fetchall()
        return [
            Event(
                at,
                kind_,
                client,
                action,
                None if key is None else bytes(key),
                expression,
                source,
                url,
                ref,
                detail,
            )
            for at, kind_, client, action, key, expression, source, url, ref, detail in reversed(list(rows))
        ]

    # -- feeds ------------------------------------------------------------------

    async def feed_state(self, url: str) -> FeedState | None:
        async with self._read().execute(f"SELECT {_FEED_COLUMNS} FROM feeds WHERE url = ?", (url,)) as cursor:  # noqa: S608
            row = await cursor.fetchone()
        return None if row is None else FeedState(*row)

    async def feed_states(self) -> list[FeedState]:
        async with self._read().execute(f"SELECT {_FEED_COLUMNS} FROM feeds ORDER BY url") as cursor:  # noqa: S608
            return [FeedState(*row) for row in await cursor.fetchall()]

    async def save_feed_state(self, state: FeedState) -> None:
        """Record a feed's state in a transaction of its own (`Transaction.save_feed_state` inside one)."""
        async with self.transaction() as tx:
            await tx.save_feed_state(state)

    async def apply_feed(
        self,
        source: str,
        *,
        snapshot: Path | None = None,
        upserts: Sequence[EntryRow] = (),
        removals: Iterable[bytes] = (),
        check: Callable[[Transaction], Awaitable[None]] | None = None,
        state: FeedState | None = None,
    ) -> int:
        """Apply a feed version to *source* in ONE transaction; returns the source's entry count.

        With *snapshot* (a staging file from `staging.staged_snapshot`), the
        source becomes exactly its entries; otherwise the diff (*upserts*,
        *removals*) is applied. *check* runs inside the transaction, seeing the
        result before anyone else does, and raises to roll everything back;
        *state* is recorded in the same transaction.
        """
        now = int(time.time())
        async with self.transaction(attach=snapshot) as tx:
            source_id = await tx.source_id(source, "feed", now)
            if snapshot is not None:
                await tx.copy_staged(source_id)
            else:
                await tx.delete_keys(sorted(removals), source_id)
                await tx.replace_rows(source_id, await asyncio.to_thread(_in_key_order, upserts))
            if check is not None:
                await check(tx)
            count = await tx.count(source_id)
            if state is not None:
                await tx.save_feed_state(replace(state, entries=count))
            return count


@dataclass(frozen=True, slots=True)
class FeedState:
    """Where a subscribed feed stands: what was last applied, and how the last attempt went."""

    url: str
    feed_id: str | None = None
    version: int | None = None
    generated_at: int | None = None
    expires_at: int | None = None
    etag: str | None = None
    entries: int = 0
    last_attempt: float | None = None
    last_success: float | None = None
    last_error: str | None = None

    def stale(self, now: float) -> bool:
        """Past the expiry its publisher set: still applied, never reported as fresh."""
        return self.expires_at is not None and self.expires_at <= now


_FEED_FIELDS = tuple(f.name for f in fields(FeedState))
_FEED_COLUMNS = ", ".join(_FEED_FIELDS)
