"""Keep the store in step with signed feeds, and never be harmed by a bad one.

One `FeedSyncer` per subscribed feed. A sync asks for the manifest with
``If-None-Match``; checks its signature against the pinned keys, its feed id,
that its version does not go back, and its expiry; downloads the chain of
diffs from the applied version (or else the snapshot, which a child process
decodes: see `staging`) and checks every SHA-256; applies it in ONE
transaction in which the feed's self-tests run on the result before it is
committed; and only then asks for a new index. Any
failure leaves the last good list in place and is recorded as the feed's last
error. A list past its expiry is still applied, and reported as stale.

`FeedSyncer.run` polls with jitter, never sooner than the manifest's minimum
interval, and backs off exponentially on errors, up to a day.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .entry import EntryRow
from .feed import (
    MANIFEST,
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
FIRST_BACKOFF = 30.0
MAX_BACKOFF = 24 * 3600.0


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
        on_change: Callable[[Sequence[bytes] | None], Awaitable[object]] | None = None,
        poll_interval: float = DEFAULT_POLL,
    ) -> None:
        self.store = store
        self.subscription = subscription
        self.client = client
        self.on_change = on_change
        self.poll_interval = poll_interval
        self._added: list[bytes] = []

    async def sync_once(self, progress: Progress | None = None) -> SyncOutcome:
        """One sync. Never raises for a bad feed: the outcome and the store say what happened."""
        url = self.subscription.url
        now = time.time()
        state = await self.store.feed_state(url) or FeedState(url)
        try:
            outcome, state = await self._sync(state, now, progress)
        except (FeedError, httpx.HTTPError, OSError) as exc:
            error = _describe(exc)
            await self.store.save_feed_state(replace(state, last_attempt=now, last_error=error))
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
            # After diffs, the keys they added; after a snapshot, None: rebuild everything.
            await self.on_change(self._added if outcome.result == "diffs" else None)
        return outcome

    async def _sync(
        self, state: FeedState, now: float, progress: Progress | None
    ) -> tuple[SyncOutcome, FeedState]:
        sub = self.subscription
        headers = {"if-none-match": state.etag} if state.etag and state.version is not None else {}
        response = await self.client.get(sub.manifest_url, headers=headers)
        attempt = replace(state, last_attempt=now)
        if response.status_code == 304:
            done = replace(attempt, last_success=now, last_error=None)
            await self.store.save_feed_state(done)
            return self._outcome("unchanged", done, now), done
        if response.status_code != 200:
            raise FeedError(f"{MANIFEST}: HTTP {response.status_code}")
        manifest = verify_manifest(response.content, sub.keys)
        if state.feed_id is not None and manifest.feed_id != state.feed_id:
            raise FeedError(f"feed id {manifest.feed_id} is not the feed {state.feed_id} this proxy follows")
        etag = response.headers.get("etag")
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
            data, manifest.snapshot.name, self.store.path.parent / "staging"
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
            upserts, removals = await asyncio.to_thread(decode_diff, data, ref.name)
            for row in upserts:
                merged[row[0]] = row
            for key in removals:
                merged[key] = None
        self._added = [key for key, row in merged.items() if row is not None]
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

    async def _download(self, ref: FileRef, progress: Progress | None) -> list[bytes]:
        """The file in the chunks it arrived in: never joined, so no 40 MB copy on the loop."""
        url = self.subscription.file_url(ref.name)
        advance = progress(ref.name, ref.size) if progress else None
        chunks = []
        received = 0
        async with self.client.stream("GET", url) as response:
            if response.status_code != 200:
                raise FeedError(f"{ref.name}: HTTP {response.status_code}")
            async for chunk in response.aiter_bytes():
                chunks.append(chunk)
                received += len(chunk)
                if advance:
                    advance(len(chunk))
                if received > ref.size:
                    break  # more than the manifest promised: check() reports it
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
    """Seconds until the next sync: the poll interval (never under the feed's minimum)
    after a success; after errors, 30 s doubling with each one, up to a day."""
    if failures:
        return float(min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** (failures - 1))) * jitter
    return max(poll_interval, min_interval) * jitter


def _describe(exc: BaseException) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out: {type(exc).__name__}"
    if isinstance(exc, httpx.HTTPError):
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return str(exc) or type(exc).__name__
