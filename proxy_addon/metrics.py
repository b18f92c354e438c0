"""Prometheus metrics of one proxy: what it decided, what people did, and how its lists stand.

Counters move on the request path, one increment per decided request (a hit),
never an await; the index lookup's latency is one histogram observation. What
the store knows (entries by source, each feed's version, age, staleness and
errors, the store's size) is read when Prometheus scrapes (`refresh`, awaited by
the ``/metrics`` endpoint in `proxy_addon.health`), not on the request path.

No label carries a URL, a host or a client: actions, request kinds and event
kinds are small fixed sets, a feed is named by its feed id (or its position in
the configuration before its first sync), a source by its name, with a feed's
source shown as ``feed:<feed id>``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from blocklists import Action
from proxy_addon.policy import RequestKind
from proxy_addon.status import store_bytes

if TYPE_CHECKING:
    from blocklists import Store
    from blocklists.store import Event

__all__ = ["KINDS", "Metrics", "kind_label"]

KINDS = ("page", "subresource", "websocket", "connect", "share")
_KIND_OF = {
    RequestKind.NAVIGATION: "page",
    RequestKind.SUBRESOURCE: "subresource",
    RequestKind.WEBSOCKET: "websocket",
    RequestKind.CONNECT: "connect",
}
EVENT_KINDS = ("warning", "block", "proceed", "audit", "report", "refused",
               "share-warned", "share-blocked", "share-sent-anyway", "share-audit")  # fmt: skip
LOOKUP_BUCKETS = (5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 1e-2)


def kind_label(kind: RequestKind | str) -> str:
    """The ``kind`` label of a request kind: page, subresource, websocket, connect or share."""
    return _KIND_OF.get(kind, kind) if isinstance(kind, RequestKind) else kind


@dataclass(frozen=True, slots=True)
class FeedFigures:
    name: str
    version: int | None
    generated_at: int | None
    expires_at: int | None
    last_success: float | None
    failing: bool


@dataclass(slots=True)
class ScanFigures:
    """What the share scan has cost: plain numbers that the request path adds to (no lock, no
    label lookup: the scan asks about every request), turned into counters at a scrape."""

    seconds: float = 0.0  # spent in the scan: deciding whether to scan a request, and scanning it
    posts: int = 0  # posts whose body was searched for links


@dataclass(slots=True)
class StoreFigures:
    """What the store said at the last scrape."""

    entries_by_source: dict[str, int] = field(default_factory=dict)
    feeds: list[FeedFigures] = field(default_factory=list)
    store_bytes: int = 0
    queue_depth: int = 0


def feed_names(urls: Iterable[str], ids: dict[str, str | None]) -> dict[str, str]:
    """A label for each feed URL: its feed id, else ``feed-N`` by position. Never the URL."""
    names: dict[str, str] = {}
    for number, url in enumerate(sorted(urls), 1):
        names[url] = ids.get(url) or f"feed-{number}"
    return names


class _StoreCollector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        figures, now = self.metrics.figures, time.time()
        entries = GaugeMetricFamily("linkwarn_entries", "Entries in the store, by source", labels=["source"])
        for source, count in sorted(figures.entries_by_source.items()):
            entries.add_metric([source], count)
        yield entries
        version = GaugeMetricFamily(
            "linkwarn_feed_version", "Version of each feed last applied", labels=["feed"]
        )
        age = GaugeMetricFamily(
            "linkwarn_feed_age_seconds",
            "Seconds since the applied version of each feed was made",
            labels=["feed"],
        )
        stale = GaugeMetricFamily(
            "linkwarn_feed_stale",
            "1 when the applied version of the feed is past its expiry",
            labels=["feed"],
        )
        failing = GaugeMetricFamily(
            "linkwarn_feed_failing", "1 when the feed's last sync attempt failed", labels=["feed"]
        )
        success = GaugeMetricFamily(
            "linkwarn_feed_last_success_timestamp_seconds", "When the feed last synced", labels=["feed"]
        )
        for feed in figures.feeds:
            if feed.version is not None:
                version.add_metric([feed.name], feed.version)
            if feed.generated_at is not None:
                age.add_metric([feed.name], max(0.0, now - feed.generated_at))
            stale.add_metric([feed.name], 1 if feed.expires_at is not None and feed.expires_at <= now else 0)
            failing.add_metric([feed.name], 1 if feed.failing else 0)
            if feed.last_success is not None:
                success.add_metric([feed.name], feed.last_success)
        yield from (version, age, stale, failing, success)
        scan = self.metrics.scan
        yield CounterMetricFamily(
            "linkwarn_share_scan_seconds",
            "Seconds spent by the share scan: asking of each request whether its body is scanned, and "
            "searching the posts that are (on the event loop, or in a thread for a large body)",
            value=scan.seconds,
        )
        yield CounterMetricFamily(
            "linkwarn_share_scanned_posts", "Posts whose body was searched for links", value=scan.posts
        )
        yield GaugeMetricFamily(
            "linkwarn_event_queue_depth",
            "Events waiting to be written to the store",
            value=figures.queue_depth,
        )
        yield GaugeMetricFamily(
            "linkwarn_store_bytes",
            "Size of the store's files (database and write-ahead log)",
            value=figures.store_bytes,
        )


class Metrics:
    """The metrics of one `Runtime`, in a registry of their own (several runtimes never clash)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.figures = StoreFigures()
        self.scan = ScanFigures()
        r = self.registry
        self.decisions = Counter(
            "linkwarn_decisions",
            "Requests that matched an entry, by the winning entry's action and the kind of request",
            ["action", "kind"],
            registry=r,
        )
        self.events = Counter("linkwarn_events", "Events recorded, by kind", ["kind"], registry=r)
        self.warnings_shown = Counter(
            "linkwarn_warnings_shown",
            "Warning and block pages shown to a person, by action",
            ["action"],
            registry=r,
        )
        self.proceeds = Counter("linkwarn_proceeds", "People who proceeded past a warning", registry=r)
        self.reports = Counter("linkwarn_reports", "False-positive reports received", registry=r)
        self.lookups = Histogram(
            "linkwarn_index_lookup_seconds",
            "Time of one index lookup (canonicalize, expressions, prefix search); its count is the lookups",
            buckets=LOOKUP_BUCKETS,
            registry=r,
        )
        self.tls_connections = Counter(
            "linkwarn_tls_connections",
            "TLS connections by how they were handled: decrypted (an entry could match the host, a share "
            "site, or full interception), passed (relayed untouched), closed (passed, then closed when the "
            "lists changed)",
            ["handling"],
            registry=r,
        )
        for handling in ("decrypted", "passed", "closed"):
            self.tls_connections.labels(handling)
        self.syslog_lost = Counter(
            "linkwarn_syslog_dropped", "Events not sent to syslog because its queue was full", registry=r
        )
        for action in Action:
            for kind in KINDS:
                self.decisions.labels(action.value, kind)
        for name in EVENT_KINDS:
            self.events.labels(name)
        for action in (Action.WARN, Action.BLOCK):
            self.warnings_shown.labels(action.value)
        r.register(_StoreCollector(self))

    # -- the request path: increments only ----------------------------------------

    def decided(self, action: Action | str, kind: RequestKind | str) -> None:
        """A request matched an entry of *action*: counted by action and kind of request."""
        self.decisions.labels(str(action), kind_label(kind)).inc()

    def recorded(self, event: Event) -> None:
        """An event was recorded (by the proxy, its own origin or the extension's API)."""
        kind = event.kind if event.kind in EVENT_KINDS else "other"
        self.events.labels(kind).inc()
        if kind == "warning" or (kind == "block" and event.detail != "subresource"):
            self.warnings_shown.labels("warn" if kind == "warning" else "block").inc()
        elif kind == "proceed":
            self.proceeds.inc()
        elif kind == "report":
            self.reports.inc()

    # -- at scrape time ------------------------------------------------------------------

    async def refresh(self, store: Store | None, queue_depth: int) -> None:
        """Read what the store knows, for the next `exposition`."""
        figures = StoreFigures(queue_depth=queue_depth)
        if store is not None:
            states = await store.feed_states()
            names = feed_names((s.url for s in states), {s.url: s.feed_id for s in states})
            figures.feeds = [
                FeedFigures(
                    names[s.url],
                    s.version,
                    s.generated_at,
                    s.expires_at,
                    s.last_success,
                    s.last_error is not None
                    and (s.last_success is None or (s.last_attempt or 0) > s.last_success),
                )
                for s in states
            ]
            for source in await store.sources():
                name = source.name
                if name.startswith("feed:"):
                    name = "feed:" + names.get(name[5:], "unknown")
                figures.entries_by_source[name] = source.entries
            figures.store_bytes = store_bytes(store.path)
        self.figures = figures

    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return generate_latest(self.registry)
