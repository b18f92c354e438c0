"""Keep the store in step with signed feeds, and never be harmed by a bad one.

One `FeedSyncer` per subscribed feed. A sync asks for the manifest with
``If-None-Match``; reads at most `feed.MAX_MANIFEST` raw bytes of it (never
decoded by the HTTP client: ``Accept-Encoding: identity``, and a
``Content-Encoding`` the server adds anyway is not undone, so a compression
bomb is just a manifest too long or badly signed); checks its signature on
those bytes against the pinned keys before any JSON is parsed, then its feed id,
that its version does not go back, and its expiry; downloads the chain of
diffs from the applied version (or else the snapshot, which a child process
decodes: see `staging`), each read to at most the size the signed manifest
states and decompressed to at most the size it says it unpacks to, and checks
every SHA-256; applies it in ONE
transaction in which the feed's self-tests run on the result before it is
committed; and only then asks for a new index. Any
failure leaves the last good list in place and is recorded as the feed's last
error. A list past its expiry is still applied, and reported as stale.

Every download has a deadline for the whole file, `DOWNLOAD_DEADLINE` (60 s)
by default: a server that trickles bytes fails the sync within it, however
often a byte arrives. Every failure, whatever its kind, is recorded as the
feed's last error (so ``linkwarn status`` never calls a feed fresh after a
failed sync) and the loop goes on.

`FeedSyncer.run` polls with jitter, never sooner than `MIN_POLL` (30 s) nor
the manifest's minimum interval (itself honoured up to a day), and backs off
exponentially on errors, up to a day.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import random
import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .entry import EntryRow
from .errors import LinkwarnError
from .feed import (
    MANIFEST,
    MAX_MANIFEST,
    FeedError,
    FileRef,
    Manifest,
    decode_diff,
    parse_public_key,
    self_test_matches,
    verify_manifest,
)
from .staging import staged_snapshot
from .store import FeedState, Store, Transaction

__all__ = ["FeedSubscription", "FeedSyncer", "SyncOutcome", "next_delay", "pair_feeds", "parse_subscription"]

# httpx's first request imports anyio's asyncio backend: 30-100 ms holding the
# GIL, which a proxy syncing while it serves would spend stalled. Import it with
# this module (at startup) instead. Only a head start: if anyio moves it, httpx
# imports whatever it needs itself.
with contextlib.suppress(ImportError):
    importlib.import_module("anyio._backends._asyncio")

logger = logging.getLogger(__name__)

DEFAULT_POLL = 300.0
MIN_POLL = 30.0  # never poll more often, whatever the option or the feed says
FIRST_BACKOFF = 30.0
MAX_BACKOFF = 24 * 3600.0
DOWNLOAD_DEADLINE = 60.0  # seconds for one whole file, however slowly its bytes arrive
_IDENTITY = {"accept-encoding": "identity"}


@dataclass(frozen=True, slots=True)
class FeedSubscription:
    url: str
    keys: tuple[Ed25519PublicKey, ...]

    @property
    def source(self) -> str:
        return f"feed:{self.url}"

    @property
    def manifest_url(self) -> str:
        return self.url if self.url.endswith(".json") else self.url.rstrip("/") + "/" + MANIFEST

    def file_url(self, name: str) -> str:
        return self.manifest_url.rsplit("/", 1)[0] + "/" + name


def parse_subscription(text: str) -> FeedSubscription:
    """``URL KEY [KEY...]``, each KEY ``ed25519:<base64>`` or a file holding one. Raises FeedError."""
    url, *keys = text.split()
    if not url.startswith(("http://", "https://")):
        raise FeedError(f"feed URL {url!r} must start with http:// or https://")
    if not keys:
        raise FeedError(f"feed {url} has no pinned key: give its publisher's public key")
    return FeedSubscription(url, tuple(parse_public_key(key) for key in keys))


def pair_feeds(urls: Sequence[str], keys: Sequence[str]) -> list[str]:
    """--feed/--feed-key as given on a command line, as ``URL KEY`` subscriptions.

    Keys pair with feeds in order; one key serves every feed. Raises FeedError.
    """
    if not urls:
        if keys:
            raise FeedError("--feed-key without --feed")
        return []
    if len(keys) == 1:
        keys = list(keys) * len(urls)
    if len(keys) != len(urls):
        raise FeedError(f"{len(urls)} --feed but {len(keys)} --feed-key: give one key, or one per feed")
    return [f"{url} {key}" for url, key in zip(urls, keys, strict=True)]


@dataclass(frozen=True, slots=True)
class SyncOutcome:
    url: str
    result: str  # "snapshot", "diffs", "refreshed", "unchanged" or "failed"
    version: int | None
    entries: int
    stale: bool
    error: str | None = None
    min_interval: int = 0

    @property
    def changed(self) -> bool:
        return self.result in ("snapshot", "diffs")


Progress = Callable[[str, int], Callable[[int], None]]  # (file name, size) -> advance(bytes)


class FeedSyncer:
    def __init__(
        self,
        store: Store,
        subscription: FeedSubscription,
        client: httpx.AsyncClient,
        on_change: Callable[[Sequence[EntryRow] | None], Awaitable[object]] | None = None,
        poll_interval: float = DEFAULT_POLL,
        deadline: float = DOWNLOAD_DEADLINE,
    ) -> None:
        self.store = store
        self.subscription = subscription
        self.client = client
        self.on_change = on_change
        self.poll_interval = max(poll_interval, MIN_POLL)
        self.deadline = deadline
        self._added: list[EntryRow] = []

    async def sync_once(self, progress: Progress | None = None) -> SyncOutcome:
        """One sync. Never raises for a bad feed: the outcome and the store say what happened."""
        url = self.subscription.url
        now = time.time()
        state = await self.store.feed_state(url) or FeedState(url)
        try:
            outcome, state = await self._sync(state, now, progress)
        except Exception as exc:  # every failure is recorded: the last good list stays, status says so
            error = _describe(exc)
            if not isinstance(exc, FeedError | httpx.HTTPError | OSError):
                logger.exception("linkwarn: feed %s: unexpected error during sync", url)
            try:
                await self.store.save_feed_state(replace(state, last_attempt=now, last_error=error))
            except (LinkwarnError, OSError, sqlite3.Error):
                logger.exception("linkwarn: feed %s: recording the failed sync failed too", url)
            logger.warning(
                "linkwarn: feed %s: sync failed, keeping version %s: %s", url, state.version, error
            )
            return SyncOutcome(url, "failed", state.version, state.entries, state.stale(now), error)
        stale = " (STALE: past its expiry)" if outcome.stale else ""
        logger.info(
            "linkwarn: feed %s: %s, version %s, %d entries%s",
            url, outcome.result, outcome.version, outcome.entries, stale,
        )  # fmt: skip
        if outcome.changed and self.on_change is not None:
            # After diffs, the rows they added; after a snapshot, None: rebuild everything.
            await self.on_change(self._added if outcome.result == "diffs" else None)
        return outcome

    async def _sync(
        self, state: FeedState, now: float, progress: Progress | None
    ) -> tuple[SyncOutcome, FeedState]:
        sub = self.subscription
        headers = {"if-none-match": state.etag} if state.etag and state.version is not None else {}
        status, etag, body = await self._fetch_manifest(headers)
        attempt = replace(state, last_attempt=now)
        if status == 304:
            done = replace(attempt, last_success=now, last_error=None)
            await self.store.save_feed_state(done)
            return self._outcome("unchanged", done, now), done
        manifest = verify_manifest(body, sub.keys)
        if state.feed_id is not None and manifest.feed_id != state.feed_id:
            raise FeedError(f"feed id {manifest.feed_id} is not the feed {state.feed_id} this proxy follows")
        fresh = replace(
            attempt,
            feed_id=manifest.feed_id,
            generated_at=manifest.generated_at,
            expires_at=manifest.expires_at,
            etag=etag,
            last_success=now,
            last_error=None,
        )
        if state.version is not None:
            if manifest.version < state.version:
                raise FeedError(f"rollback refused: version {manifest.version} is older than {state.version}")
            if manifest.version == state.version:
                if manifest.generated_at < (state.generated_at or 0):
                    raise FeedError("rollback refused: an older signing of the applied version")
                await self.store.save_feed_state(fresh)
                result = "refreshed" if manifest.generated_at > (state.generated_at or 0) else "unchanged"
                return self._outcome(result, fresh, now, manifest), fresh
        fresh = replace(fresh, version=manifest.version)
        chain = manifest.chain(state.version) if state.version is not None else None
        if chain:
            try:
                count = await self._apply_diffs(manifest, chain, fresh, progress)
                done = replace(fresh, entries=count)
                return self._outcome("diffs", done, now, manifest), done
            except FeedError as exc:
                logger.info("linkwarn: feed %s: diffs unusable (%s); fetching the snapshot", sub.url, exc)
        data = await self._download(manifest.snapshot, progress)
        async with staged_snapshot(
            data, manifest.snapshot.name, self.store.path.parent / "staging", manifest.snapshot.unpacked
        ) as staged:
            count = await self.store.apply_feed(
                sub.source,
                snapshot=staged,
                check=self._checker(manifest, expect_entries=manifest.entries),
                state=fresh,
            )
        done = replace(fresh, entries=count)
        return self._outcome("snapshot", done, now, manifest), done

    async def _apply_diffs(
        self, manifest: Manifest, chain: Sequence[FileRef], state: FeedState, progress: Progress | None
    ) -> int:
        merged: dict[bytes, EntryRow | None] = {}
        for ref in chain:
            data = await self._download(ref, progress)
            upserts, removals = await asyncio.to_thread(decode_diff, data, ref.name, ref.unpacked)
            for row in upserts:
                merged[row[0]] = row
            for key in removals:
                merged[key] = None
        self._added = [row for row in merged.values() if row is not None]
        return await self.store.apply_feed(
            self.subscription.source,
            upserts=[row for row in merged.values() if row is not None],
            removals=[key for key, row in merged.items() if row is None],
            check=self._checker(manifest, expect_entries=manifest.entries),
            state=state,
        )

    def _checker(
        self, manifest: Manifest, expect_entries: int | None = None
    ) -> Callable[[Transaction], Awaitable[None]]:
        """Runs inside the apply transaction: raising rolls the whole version back."""
        source = self.subscription.source

        async def check(tx: Transaction) -> None:
            if expect_entries is not None:
                count = await tx.source_count(source)
                if count != expect_entries:
                    raise FeedError(f"after the update the list has {count} entries, not {expect_entries}")
            for test in manifest.self_tests:
                found = await tx.lookup([key for _, key in test.lookup_keys()])
                if self_test_matches(test, found, time.time()) != test.expect_match:
                    raise FeedError(f"self-test failed: {test.describe()}")

        return check

    async def _fetch_manifest(self, headers: dict[str, str]) -> tuple[int, str | None, bytes]:
        """The manifest's status, ETag and raw bytes (at most MAX_MANIFEST), within the deadline."""
        url = self.subscription.manifest_url
        chunks = await self._get(url, MANIFEST, MAX_MANIFEST, {**headers, **_IDENTITY}, None)
        status, etag, data = chunks
        if status not in (200, 304):
            raise FeedError(f"{MANIFEST}: HTTP {status}")
        return status, etag, b"".join(data)

    async def _get(
        self,
        url: str,
        name: str,
        limit: int,
        headers: dict[str, str],
        advance: Callable[[int], None] | None,
    ) -> tuple[int, str | None, list[bytes]]:
        """GET *url*: its status, ETag and raw body in chunks, refused past *limit* bytes or the deadline."""
        chunks: list[bytes] = []
        received = 0
        try:
            async with asyncio.timeout(self.deadline):
                async with self.client.stream("GET", url, headers=headers) as response:
                    if response.status_code != 200:
                        return response.status_code, response.headers.get("etag"), []
                    length = response.headers.get("content-length", "")
                    if length.isdecimal() and int(length) > limit:
                        raise FeedError(f"{name}: the server sends {length} bytes, more than {limit}")
                    async for chunk in response.aiter_raw():
                        received += len(chunk)
                        if received > limit:
                            raise FeedError(f"{name}: more than the {limit} bytes allowed")
                        chunks.append(chunk)
                        if advance:
                            advance(len(chunk))
                    return 200, response.headers.get("etag"), chunks
        except TimeoutError:
            raise FeedError(
                f"{name}: not received within {self.deadline:g} s ({received} bytes arrived): "
                "the server is too slow or trickling"
            ) from None

    async def _download(self, ref: FileRef, progress: Progress | None) -> list[bytes]:
        """The file in the chunks it arrived in: never joined, so no 40 MB copy on the loop.

        Raw bytes, at most the size the manifest states: they are what its SHA-256 covers.
        """
        url = self.subscription.file_url(ref.name)
        advance = progress(ref.name, ref.size) if progress else None
        status, _, chunks = await self._get(url, ref.name, ref.size, dict(_IDENTITY), advance)
        if status != 200:
            raise FeedError(f"{ref.name}: HTTP {status}")
        await asyncio.to_thread(ref.check, chunks)  # hashing 40 MB would stall the loop
        return chunks

    def _outcome(
        self, result: str, state: FeedState, now: float, manifest: Manifest | None = None
    ) -> SyncOutcome:
        return SyncOutcome(
            state.url, result, state.version, state.entries, state.stale(now),
            min_interval=manifest.min_interval if manifest else 0,
        )  # fmt: skip

    async def run(self, first_delay: float | None = None) -> None:
        """Sync forever: poll with jitter, honour the feed's minimum interval, back off on errors."""
        delay = random.uniform(0, 5) if first_delay is None else first_delay  # noqa: S311 - jitter, not a secret
        failures = 0
        min_interval = 0
        while True:
            await asyncio.sleep(delay)
            try:
                outcome = await self.sync_once()
            except Exception:
                logger.exception("linkwarn: feed %s: unexpected error during sync", self.subscription.url)
                outcome = SyncOutcome(self.subscription.url, "failed", None, 0, False, "unexpected error")
            failures = failures + 1 if outcome.error is not None else 0
            min_interval = outcome.min_interval or min_interval
            delay = next_delay(failures, self.poll_interval, min_interval, random.uniform(0.9, 1.1))  # noqa: S311


def next_delay(failures: int, poll_interval: float, min_interval: float, jitter: float) -> float:
    """Seconds until the next sync: the poll interval (never under `MIN_POLL` nor the feed's
    minimum, which counts up to a day) after a success; after errors, 30 s doubling with each
    one, up to a day."""
    if failures:
        return float(min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** min(failures - 1, 32))) * jitter
    return max(poll_interval, min(min_interval, MAX_BACKOFF), MIN_POLL) * jitter


def _describe(exc: BaseException) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out: {type(exc).__name__}"
    if isinstance(exc, httpx.HTTPError):
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if not isinstance(exc, FeedError | OSError):
        return f"unexpected error: {type(exc).__name__}: {exc}"[:1000]
    return str(exc) or type(exc).__name__
