"""Metrics: counters move with what the proxy and people do; no label carries a URL, host or address."""

from __future__ import annotations

import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from blocklists import Action, Entry
from blocklists.store import Event, FeedState
from proxy_addon.metrics import Metrics, feed_names

from .support.hooks import NAVIGATE, Proxy, form_value, proxy_with

ENTRIES = [
    Entry.listing("leak.test/", Action.WARN, reason="Leaked mail", source="corp"),
    Entry.listing("mirror.test/", Action.BLOCK, source="corp"),
]
CLIENT = "10.9.8.7"


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the exposition, parsed by prometheus_client's own parser."""
    text = metrics.exposition().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape(proxy: Proxy) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    assert proxy.runtime.events is not None
    await proxy.runtime.metrics.refresh(proxy.runtime.store, proxy.runtime.events.queued)
    return samples(proxy.runtime.metrics)


async def test_counters_move_after_a_warning_a_proceed_and_a_report(tmp_path: Path) -> None:
    async with proxy_with(tmp_path, ENTRIES) as proxy:
        before = await scrape(proxy)
        assert value(before, "linkwarn_decisions_total", action="warn", kind="page") == 0
        assert value(before, "linkwarn_entries", source="corp") == 2

        page = await proxy.warning_page("https://leak.test/inbox", client=CLIENT)
        after_warning = await scrape(proxy)
        assert value(after_warning, "linkwarn_decisions_total", action="warn", kind="page") == 1
        assert value(after_warning, "linkwarn_warnings_shown_total", action="warn") == 1
        assert value(after_warning, "linkwarn_proceeds_total") == 0

        sent = await proxy.post_form(
            "/report", {"token": form_value(page, "/report"), "comment": "ok"}, client=CLIENT
        )
        assert sent.response is not None
        assert sent.response.status_code == 200
        await proxy.pass_cookie("https://leak.test/inbox", client=CLIENT, reason="")
        await proxy.request("http://mirror.test/logo.png", client=CLIENT)
        await proxy.request("https://unlisted.example/", headers=NAVIGATE, client=CLIENT)

        found = await scrape(proxy)
        assert value(found, "linkwarn_reports_total") == 1
        assert value(found, "linkwarn_proceeds_total") == 1
        assert (
            value(found, "linkwarn_warnings_shown_total", action="warn") == 2
        )  # the proceed opened it again
        assert value(found, "linkwarn_decisions_total", action="block", kind="subresource") == 1
        assert value(found, "linkwarn_events_total", kind="block") == 1
        assert (
            value(found, "linkwarn_warnings_shown_total", action="block") == 0
        )  # a refused image is no page
        # Every request looked the index up, the unlisted one included.
        assert value(found, "linkwarn_index_lookup_seconds_count") >= 6
        assert value(found, "linkwarn_store_bytes") > 0

        labels = {v for (_, pairs), _ in found.items() for _, v in pairs}
        for forbidden in (
            "leak.test",
            "mirror.test",
            "unlisted.example",
            "inbox",
            "://",
            CLIENT,
            "127.0.0.1",
        ):
            assert not any(forbidden in label for label in labels), forbidden


async def test_feeds_are_named_by_feed_id_never_by_url(tmp_path: Path) -> None:
    async with proxy_with(tmp_path, []) as proxy:
        store = proxy.runtime.store
        assert store is not None
        now = int(time.time())
        await store.save_feed_state(
            FeedState(url="https://feeds.example/corp/", feed_id="corp", version=7, generated_at=now - 60,
                      expires_at=now - 1, last_success=now - 60.0, last_attempt=now - 60.0)
        )  # fmt: skip
        await store.save_feed_state(
            FeedState(url="https://other.example/f/", last_attempt=now - 5.0, last_error="bad signature")
        )
        found = await scrape(proxy)
        assert value(found, "linkwarn_feed_version", feed="corp") == 7
        assert value(found, "linkwarn_feed_stale", feed="corp") == 1
        assert 59 <= value(found, "linkwarn_feed_age_seconds", feed="corp") < 120
        assert value(found, "linkwarn_feed_failing", feed="feed-2") == 1
        assert value(found, "linkwarn_feed_failing", feed="corp") == 0
        text = proxy.runtime.metrics.exposition().decode()
        assert "feeds.example" not in text
        assert "other.example" not in text


def test_feed_names_number_feeds_without_an_id() -> None:
    names = feed_names(["https://b.example/", "https://a.example/"], {"https://b.example/": "corp"})
    assert names == {"https://a.example/": "feed-1", "https://b.example/": "corp"}


def test_an_event_from_the_extension_counts_as_a_warning_shown() -> None:
    metrics = Metrics()
    metrics.recorded(Event(at=1.0, kind="warning", detail="extension"))
    metrics.recorded(Event(at=1.0, kind="block", detail="subresource"))
    metrics.recorded(Event(at=1.0, kind="something new"))
    found = samples(metrics)
    assert value(found, "linkwarn_warnings_shown_total", action="warn") == 1
    assert value(found, "linkwarn_warnings_shown_total", action="block") == 0
    assert value(found, "linkwarn_events_total", kind="other") == 1
