"""linkwarn report: the numbers, and the page in headless Chromium (nothing fetched, charts drawn)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from blocklists import Store
from blocklists.store import Event, FeedState
from proxy_addon.cli import main
from proxy_addon.report import summarize

DAY = 86400


def sample_events(now: float) -> list[Event]:
    events = []
    for day in range(7):
        at = now - day * DAY - 60
        for n in range(day + 1):
            events.append(
                Event(
                    at=at + n,
                    kind="warning",
                    client="user:alice",
                    action="warn",
                    expression="leak.example/",
                    url="https://leak.example/inbox",
                )
            )
        events.append(
            Event(at=at, kind="block", client="addr:10.0.0.2", action="block", expression="mirror.test/")
        )
        events.append(
            Event(
                at=at,
                kind="block",
                client="addr:10.0.0.2",
                action="block",
                expression="mirror.test/",
                detail="subresource",
            )
        )
        if day % 2 == 0:
            events.append(
                Event(
                    at=at + 5,
                    kind="proceed",
                    client="user:alice",
                    action="warn",
                    expression="leak.example/",
                    detail="reading it for the legal team",
                )
            )
    events.append(
        Event(at=now - 100, kind="proceed", client="user:bob", action="warn", expression="leak.example/")
    )
    events.append(
        Event(
            at=now - 90,
            kind="report",
            client="user:bob",
            action="warn",
            expression="paste.example/raw/salaries",
            detail="<script>alert(1)</script> is our wiki",
        )
    )
    events.append(Event(at=now - 30 * DAY, kind="warning", client="user:old", expression="old.example/"))
    return events


async def make_store(data_dir: Path, now: float) -> None:
    async with Store.in_dir(data_dir) as store:
        await store.add_events(sample_events(now))
        await store.save_feed_state(
            FeedState(
                url="https://feeds.corp.example/",
                feed_id="corp",
                version=12,
                generated_at=int(now - 7200),
                expires_at=int(now - 60),
                entries=1200,
                last_success=now - 7200,
                last_error="timed out",
            )
        )


def test_the_numbers() -> None:
    now = time.time()
    report = summarize(sample_events(now), [], now - 7 * DAY, now)
    assert len(report.days) in (7, 8)
    assert sum(d.warnings for d in report.days) == 28
    assert sum(d.blocks for d in report.days) == 7  # refused subresources are no pages
    assert report.totals["proceeds"] == 5
    assert report.top_entries[0] == {"entry": "leak.example/", "action": "warn", "hits": 28}
    assert report.top_entries[1]["hits"] == 14
    assert report.proceed_reasons == [
        {"reason": "reading it for the legal team", "count": 4},
        {"reason": "(no reason asked or given)", "count": 1},
    ]
    assert [r["entry"] for r in report.false_positive_reports] == ["paste.example/raw/salaries"]
    assert "old.example/" not in str(report.top_entries)  # a month ago: outside the period


def test_the_page_in_headless_chromium(tmp_path: Path) -> None:
    now = time.time()
    asyncio.run(make_store(tmp_path / "data", now))
    page_file = tmp_path / "report.html"
    out, err = io.StringIO(), io.StringIO()
    code = main(
        ["report", "--data-dir", str(tmp_path / "data"), "--since", "7d", "--html", str(page_file), "--json"],
        out,
        err,
    )
    assert code == 0, err.getvalue()
    numbers = json.loads(out.getvalue())
    assert numbers["totals"]["warnings_shown"] == 35
    assert numbers["feeds"][0]["stale"] is True
    shot_dir = Path(os.environ.get("LINKWARN_SCREENSHOT_DIR", tmp_path))
    _look_at(page_file, shot_dir / "report.png")


def _look_at(page_file: Path, screenshot: Path) -> None:
    executable = shutil.which("chromium")
    assert executable, "Debian's chromium is needed (.ci/run installs it)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable,
            headless=True,
            args=["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"],
        )
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 900})
            requested: list[str] = []
            page.on("request", lambda request: requested.append(request.url))
            dialogs: list[str] = []
            page.on("dialog", lambda dialog: dialogs.append(dialog.message))
            page.goto(page_file.as_uri())
            page.wait_for_load_state("networkidle")
            assert requested == [page_file.as_uri()]  # nothing but the file itself
            assert page.locator("figure.chart svg").count() == 2
            assert (
                page.locator("svg .bar, svg rect.rect").count() > 0 or page.locator("svg rect").count() > 10
            )
            assert page.locator("h2", has_text="Feed freshness").count() == 1
            assert page.locator("td.stale", has_text="STALE").count() == 1
            body = page.inner_text("body")
            assert "<script>alert(1)</script> is our wiki" in body  # shown as text, never run
            assert dialogs == []
            assert "reading it for the legal team" in body
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
