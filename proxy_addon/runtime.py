"""The running state of one linkwarn proxy: store, checker, event log, secret, background tasks.

One `Runtime` is made per process and handed to every part that needs it:
the `Linkwarn` addon (requests), the own origin (pages and forms) and the
local API (the extension). None of them reads another's attributes, and none
depends on which was configured first: the settings arrive here, once
validated, and everything else is derived from them.

`start` opens the store in the background: requests that arrive first wait
for it (`wait_ready`), then the store itself answers while the index is built,
so none waits for a large list and none slips through. Background work (the
event writer, feed syncs, following other processes' writes) is started with
`spawn`, which keeps each task's reference, logs its failure and cancels it in
`close`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import httpx

from blocklists import Canonical, Checker, LinkwarnError, Store, Verdict
from blocklists.checker import Prefiltered
from blocklists.entry import EntryRow
from blocklists.lists import Defaults, ListFormat, parse_list
from blocklists.sync import FeedSyncer
from proxy_addon.events import EventLog
from proxy_addon.held import HeldPosts
from proxy_addon.limits import RateLimiter
from proxy_addon.metrics import Metrics
from proxy_addon.settings import SECRET_ENV, Settings
from proxy_addon.syslog import SyslogExport
from proxy_addon.tokens import SecretError, load_or_create_secret, secret_from_text

__all__ = ["ConnectionCounts", "ListsUnavailable", "Runtime"]

logger = logging.getLogger(__name__)

SAMPLE_SOURCE = "sample"
READY_TIMEOUT = 60.0
FOLLOW_INTERVAL = 0.25
MAX_USED_CODES = 100_000
MAX_SCANNED = 1_000_000  # plaintext entries read to find the ones ignore_hosts keeps from being checked


class ListsUnavailable(LinkwarnError):
    """The lists cannot be used (not loaded, the store failing): the fail mode decides."""


@dataclass(slots=True)
class ConnectionCounts:
    """TLS connections so far: passed through untouched, decrypted, and passed ones closed later.

    Counts only: no host of a passed-through connection is kept or logged.
    """

    passed: int = 0
    decrypted: int = 0
    closed: int = 0

    def as_json(self) -> dict[str, int]:
        return {
            "passed_through": self.passed,
            "decrypted": self.decrypted,
            "closed_on_list_change": self.closed,
        }


class Runtime:
    def __init__(self) -> None:
        self.settings: Settings | None = None
        self.store: Store | None = None
        self.checker: Checker | None = None
        self.events: EventLog | None = None
        self.secret = b""
        self.unavailable: str | None = None  # why the lists cannot be used, when they cannot
        self.ready = asyncio.Event()  # set once requests can be decided (or the fail mode applies)
        self.index_ready = asyncio.Event()  # set once the first index is built
        self.started_at = time.time()
        self.report_limits = RateLimiter(10, 3600)
        self.api_limits = RateLimiter(120, 60)  # the local API's events and reports, per client a minute
        self.held_posts = HeldPosts()  # posts held back for their links (`proxy_addon.share`)
        self.metrics = Metrics()  # counted on the request path, read by the metrics listener
        self.connections = ConnectionCounts()  # TLS connections passed through and decrypted
        # Called (no arguments, no awaiting) whenever what must be read may have changed:
        # an index swapped in, new settings.
        self.on_lists_changed: list[Callable[[], None]] = []
        # Hosts with path entries that mitmproxy is told not to intercept: their tunnels are closed.
        self.uncheckable_hosts: frozenset[str] = frozenset()
        self._used_codes: dict[str, float] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._opening: asyncio.Task[None] | None = None
        self._http: httpx.AsyncClient | None = None

    # -- settings and lifecycle -----------------------------------------------

    def configure(self, settings: Settings) -> None:
        """Take validated settings; raises ValueError for a change that cannot apply while running."""
        if (
            self.settings is not None
            and self.store is not None
            and settings.data_dir != self.settings.data_dir
        ):
            raise ValueError("linkwarn_data_dir cannot change while the proxy runs")
        if self.store is not None:
            self.secret = self._load_secret(settings)  # may raise: the change is then rolled back
        previous, self.settings = self.settings, settings
        self._lists_changed()
        self.report_limits.limit = settings.reports_per_hour
        untouched = (settings.ignore_hosts, settings.allow_hosts)
        if self.index_ready.is_set() and (
            previous is None or untouched != (previous.ignore_hosts, previous.allow_hosts)
        ):
            self.spawn(self._find_uncheckable(), "linkwarn-uncheckable")

    def _lists_changed(self) -> None:
        for listener in self.on_lists_changed:
            try:
                listener()
            except Exception:
                logger.exception("linkwarn: a listener to list changes failed")

    def require_settings(self) -> Settings:
        if self.settings is None:
            raise ListsUnavailable("linkwarn is not configured")
        return self.settings

    def spawn(self, coroutine: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Run *coroutine* in the background, keeping its reference until it ends."""
        task = asyncio.get_running_loop().create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("linkwarn: background task %s failed", task.get_name(), exc_info=task.exception())

    def start(self) -> None:
        if self._opening is None:
            self._opening = self.spawn(self._open(), "linkwarn-open")

    async def opened(self) -> None:
        """Wait until the store is open and the first index built (or opening failed)."""
        if self._opening is not None:
            await asyncio.shield(self._opening)

    async def close(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        if self.events is not None:
            await self.events.close()
        if self.store is not None:
            await self.store.close()

    async def _open(self) -> None:
        settings = self.require_settings()
        try:
            await asyncio.to_thread(settings.data_dir.mkdir, mode=0o700, parents=True, exist_ok=True)
            store = Store.in_dir(settings.data_dir)
            await store.open()
            self.store = store
            self.secret = self._load_secret(settings)
            if settings.sample and not settings.feeds and not await store.sources():
                await self._import_sample(store)
            self.events = EventLog(
                store,
                settings.events_jsonl,
                syslog=self._syslog(settings),
                metrics=self.metrics,
                retention_days=settings.events_days,
            )
            self.events.start()
            # Requests are decided from here on: by the store until the index is built.
            self.checker = Checker(store)
            self.ready.set()
            started = time.perf_counter()
            index = await self.checker.reload()
            self.index_ready.set()
            self._lists_changed()
            logger.info(
                "linkwarn: %d entries ready in %.2f s from %s",
                len(index),
                time.perf_counter() - started,
                store.path,
            )
            self._start_feeds(store, settings)
            self.spawn(self._follow_store(store), "linkwarn-follow-store")
            await self._find_uncheckable()
        except Exception as exc:
            # Whatever went wrong, the fail mode decides what requests get.
            self.unavailable = str(exc) or type(exc).__name__
            mode = "closed: every request is refused" if settings.fail_closed else "open: NOTHING IS CHECKED"
            logger.exception("linkwarn: THE LISTS ARE UNAVAILABLE (%s); failing %s", self.unavailable, mode)
        finally:
            self.ready.set()

    def _load_secret(self, settings: Settings) -> bytes:
        """The secret that signs tokens: the option, the file, $LINKWARN_SECRET, or the data dir's own."""
        try:
            if settings.secret_text:
                return secret_from_text(settings.secret_text, "linkwarn_secret")
            if settings.secret_file is not None:
                try:
                    text = settings.secret_file.read_text("utf-8")
                except (OSError, UnicodeDecodeError) as exc:
                    raise SecretError(f"linkwarn_secret_file {settings.secret_file}: {exc}") from None
                return secret_from_text(text, f"the secret in {settings.secret_file}")
            if os.environ.get(SECRET_ENV):
                return secret_from_text(os.environ[SECRET_ENV], f"${SECRET_ENV}")
            return load_or_create_secret(settings.data_dir)
        except SecretError as exc:
            raise ValueError(str(exc)) from None

    def _start_feeds(self, store: Store, settings: Settings) -> None:
        if not settings.feeds:
            return
        self._http = httpx.AsyncClient(timeout=60, follow_redirects=True)
        for subscription in settings.feeds:
            syncer = FeedSyncer(store, subscription, self._http, self._reload, settings.feed_interval)
            self.spawn(syncer.run(first_delay=0), f"linkwarn-feed {subscription.url}")

    async def _reload(self, added: Sequence[EntryRow] | None) -> None:
        """The store changed: merge *added* rows into new indexes, or rebuild (None); then swap."""
        assert self.checker is not None
        started = time.perf_counter()
        index = await self.checker.refresh(added)
        self._lists_changed()
        if self.store is not None:
            await self.store.release_memory()  # the pages a feed's apply left in SQLite's cache
        logger.info(
            "linkwarn: index rebuilt, %d entries, in %.2f s", len(index), time.perf_counter() - started
        )

    async def _find_uncheckable(self) -> None:
        """Say which entries cannot be enforced because mitmproxy relays their hosts untouched.

        A tunnel mitmproxy does not intercept shows only its host: host and domain
        entries are enforced by closing such tunnels (`proxy_addon.tunnels`), but a
        path entry cannot be told from the rest of its host. Their hosts' tunnels
        are closed whole, and the entries are named in the log.
        """
        settings, store = self.settings, self.store
        if settings is None or store is None or not (settings.ignore_hosts or settings.allow_hosts):
            self.uncheckable_hosts = frozenset()
            return
        entries = await store.plaintext_entries(MAX_SCANNED, time.time())
        hosts, named = set(), []
        for entry in entries:
            host, _, path = (entry.expression or "").partition("/")
            if path and entry.action.value != "allow" and settings.passes_untouched(host):
                hosts.add(host)
                named.append(entry.expression or "")
        self.uncheckable_hosts = frozenset(hosts)
        if named:
            shown = ", ".join(named[:20]) + (f" and {len(named) - 20} more" if len(named) > 20 else "")
            logger.warning(
                "linkwarn: %d path entries cannot be checked in tunnels that ignore_hosts/allow_hosts pass "
                "through untouched: %s. Tunnels to their hosts are closed instead.",
                len(named),
                shown,
            )

    async def _follow_store(self, store: Store) -> None:
        """When another process writes the store (``linkwarn import``, ``remove``), rebuild the index."""
        seen = await store.data_version()
        while True:
            await asyncio.sleep(FOLLOW_INTERVAL)
            try:
                version = await store.data_version()
                if version != seen:
                    seen = version
                    await self._reload(None)
            except (LinkwarnError, OSError):
                logger.exception("linkwarn: following the store's changes failed; will retry")

    async def _import_sample(self, store: Store) -> None:
        text = resources.files("proxy_addon").joinpath("sample/sample-list.csv").read_text("utf-8")
        parsed = parse_list(
            text, source=SAMPLE_SOURCE, fmt=ListFormat.CSV, defaults=Defaults(), now=int(time.time())
        )
        await store.import_entries(SAMPLE_SOURCE, parsed.entries)
        logger.info(
            "linkwarn: the store was empty; loaded the bundled sample list (%d entries)", len(parsed.entries)
        )

    # -- decisions ------------------------------------------------------------

    async def wait_ready(self) -> None:
        """Wait for the lists to open; raises ListsUnavailable when they do not in time."""
        if not self.ready.is_set():
            try:
                await asyncio.wait_for(self.ready.wait(), READY_TIMEOUT)
            except TimeoutError:
                raise ListsUnavailable("the lists are still loading") from None

    def lookup(self, url: str) -> Prefiltered:
        """The index lookup for *url*: its canonical form, expressions and prefix hits. No I/O.

        A URL that cannot be canonicalized whole is looked up on what can be read
        (``canonical.partial``). Raises InvalidURL when not even a host can be
        read, and ListsUnavailable when the lists cannot be used.
        """
        checker = self.checker
        if checker is None:
            raise ListsUnavailable(self.unavailable or "the lists are not loaded")
        started = time.perf_counter()
        found = checker.prefilter(url)
        self.metrics.lookups.observe(time.perf_counter() - started)
        return found

    def _syslog(self, settings: Settings) -> SyslogExport | None:
        if settings.events_syslog is None:
            return None
        return SyslogExport(settings.events_syslog, on_drop=self.metrics.syslog_lost.inc)

    def prefilter(self, url: str) -> Prefiltered | None:
        """Like `lookup`, but None when nothing can match."""
        found = self.lookup(url)
        return found if found[2] else None

    async def confirm(self, url: str, found: Prefiltered) -> Verdict:
        """Confirm prefix hits against the store; raises ListsUnavailable when the store fails."""
        assert self.checker is not None
        try:
            return await self.checker.confirm(url, found)
        except (LinkwarnError, OSError) as exc:
            logger.exception("linkwarn: the store failed while confirming a listed URL")
            raise ListsUnavailable(f"the store failed: {exc}") from None

    async def decide(self, url: str) -> Verdict | None:
        """The whole decision for *url*, waiting for the lists if need be; None when nothing is listed.

        Raises InvalidURL and ListsUnavailable as `prefilter` does.
        """
        await self.wait_ready()
        found = self.prefilter(url)
        return None if found is None else await self.confirm(url, found)

    async def check(self, url: str) -> tuple[Canonical, Verdict | None]:
        """The canonical URL and the decision, for the API; raises InvalidURL and ListsUnavailable."""
        found = self.lookup(url)
        if not found[2]:
            return found[0], None
        return found[0], await self.confirm(url, found)

    # -- one-time codes -----------------------------------------------------------

    def use_code(self, nonce: str, expires_at: float, now: float) -> bool:
        """Mark a one-time code's nonce used; False when it already was."""
        if nonce in self._used_codes:
            return False
        if len(self._used_codes) >= MAX_USED_CODES:
            self._used_codes = {n: at for n, at in self._used_codes.items() if at > now}
            if len(self._used_codes) >= MAX_USED_CODES:
                return False  # flooded: refuse rather than forget a used code
        self._used_codes[nonce] = expires_at
        return True
