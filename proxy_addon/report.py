"""What happened over a period, for IT to look at: ``linkwarn report --since 7d --html FILE`` (or ``--json``).

`summarize` turns the store's events and feed states into one `Report` of plain
numbers (pure: no I/O); `render_html` makes it one self-contained page, with
every value escaped, its style inline and its charts inline SVG drawn by pygal
(no script, no font, no image, nothing fetched); `Report.to_json` gives the
same numbers. Days are UTC days.
"""

from __future__ import annotations

import datetime
import html
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import pygal
from pygal.style import Style

from blocklists.store import Event, FeedState

__all__ = ["Report", "render_html", "summarize"]

TOP = 10
_DAY = 86_400


@dataclass(frozen=True, slots=True)
class Day:
    day: str  # YYYY-MM-DD (UTC)
    warnings: int = 0
    blocks: int = 0
    proceeds: int = 0
    reports: int = 0


@dataclass(frozen=True, slots=True)
class Feed:
    feed: str  # the feed's id, else its URL (IT's own address, never an employee's)
    version: int | None
    entries: int
    age_hours: float | None
    stale: bool
    last_success: str | None
    last_error: str | None


@dataclass(frozen=True, slots=True)
class Report:
    since: str
    until: str
    days: list[Day]
    totals: dict[str, int]
    top_entries: list[dict[str, Any]]
    proceed_reasons: list[dict[str, Any]]
    false_positive_reports: list[dict[str, Any]]
    share_attempts: int
    feeds: list[Feed] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _stamp(at: float) -> str:
    return datetime.datetime.fromtimestamp(at, datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _day(at: float) -> str:
    return datetime.datetime.fromtimestamp(at, datetime.UTC).strftime("%Y-%m-%d")


def _label(event: Event) -> str:
    if event.expression:
        return event.expression
    return f"sha256:{event.entry_key.hex()[:16]}…" if event.entry_key else "(no entry)"


def _shown(event: Event) -> bool:
    """A warning or block page a person saw (a refused subresource is not one)."""
    return event.kind == "warning" or (event.kind == "block" and event.detail != "subresource")


def summarize(events: Sequence[Event], feeds: Sequence[FeedState], since: float, until: float) -> Report:
    """The report's numbers for events between *since* and *until*."""
    first = int(since // _DAY) * _DAY
    day_names = [_day(at) for at in range(first, int(until) + 1, _DAY)]
    counts: dict[str, Counter[str]] = {name: Counter() for name in day_names}
    hits: Counter[str] = Counter()
    actions: dict[str, str] = {}
    reasons: Counter[str] = Counter()
    reports: list[dict[str, Any]] = []
    totals: Counter[str] = Counter()
    shares = 0
    for event in events:
        if not since <= event.at <= until:
            continue
        totals[event.kind] += 1
        bucket = counts.setdefault(_day(event.at), Counter())
        if event.kind in ("share-warned", "share-blocked"):
            shares += 1
        if _shown(event):
            bucket["warnings" if event.kind == "warning" else "blocks"] += 1
        if event.kind in ("warning", "block", "audit"):
            hits[_label(event)] += 1
            actions[_label(event)] = event.action or ""
        elif event.kind == "proceed":
            bucket["proceeds"] += 1
            reasons[(event.detail or "").strip() or "(no reason asked or given)"] += 1
        elif event.kind == "report":
            bucket["reports"] += 1
            reports.append(
                {
                    "at": _stamp(event.at),
                    "entry": _label(event),
                    "client": event.client,
                    "comment": event.detail or "",
                }
            )
    days = [
        Day(name, c["warnings"], c["blocks"], c["proceeds"], c["reports"])
        for name, c in sorted(counts.items())
    ]
    feed_rows = [
        Feed(
            feed=f.feed_id or f.url,
            version=f.version,
            entries=f.entries,
            age_hours=None if f.generated_at is None else round((until - f.generated_at) / 3600, 1),
            stale=f.stale(until),
            last_success=None if f.last_success is None else _stamp(f.last_success),
            last_error=f.last_error,
        )
        for f in feeds
    ]
    return Report(
        since=_stamp(since),
        until=_stamp(until),
        days=days,
        totals={
            "warnings_shown": sum(d.warnings + d.blocks for d in days),
            "proceeds": totals["proceed"],
            "reports": totals["report"],
            "audit_hits": totals["audit"],
            "refused": totals["refused"],
        },
        top_entries=[{"entry": e, "action": actions[e], "hits": n} for e, n in hits.most_common(TOP)],
        proceed_reasons=[{"reason": r, "count": n} for r, n in reasons.most_common(TOP)],
        false_positive_reports=reports[-50:],
        share_attempts=shares,
        feeds=feed_rows,
    )


# -- the page -------------------------------------------------------------------------

_STYLE = Style(
    background="white",
    plot_background="white",
    foreground="#333",
    foreground_strong="#111",
    foreground_subtle="#999",
    colors=("#c0392b", "#7f1d1d", "#2563eb", "#6b7280"),
    font_family="system-ui, sans-serif",
)
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"  # nothing can be fetched
_CSS = """
body { font: 15px/1.45 system-ui, sans-serif; color: #1f2937; margin: 2rem auto; max-width: 60rem;
       padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
.muted { color: #6b7280; } .figures { display: flex; gap: 1rem; flex-wrap: wrap; }
.figure { border: 1px solid #e5e7eb; border-radius: .5rem; padding: .6rem 1rem; min-width: 8rem; }
.figure b { display: block; font-size: 1.6rem; }
table { border-collapse: collapse; width: 100%; }
td, th { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid #e5e7eb; }
td.n { text-align: right; font-variant-numeric: tabular-nums; } .stale { color: #b91c1c; font-weight: 600; }
figure { margin: 0; } svg { max-width: 100%; height: auto; }
"""


def _chart(chart: Any) -> str:
    svg: str = chart.render(is_unicode=True)
    return f'<figure class="chart">{svg}</figure>'


def _days_chart(report: Report) -> str:
    chart = pygal.Bar(
        js=[], disable_xml_declaration=True, style=_STYLE, width=900, height=320, explicit_size=True,
        x_label_rotation=30 if len(report.days) > 10 else 0, legend_at_bottom=True, print_values=False,
        title="Warnings and proceeds per day (UTC)",
    )  # fmt: skip
    chart.x_labels = [d.day[5:] for d in report.days]
    chart.add("warnings shown", [d.warnings for d in report.days])
    chart.add("block pages shown", [d.blocks for d in report.days])
    chart.add("proceeds", [d.proceeds for d in report.days])
    chart.add("reports", [d.reports for d in report.days])
    return _chart(chart)


def _entries_chart(report: Report) -> str:
    if not report.top_entries:
        return '<p class="muted">No entry was hit in this period.</p>'
    chart = pygal.HorizontalBar(
        js=[], disable_xml_declaration=True, style=_STYLE, width=900,
        height=60 + 34 * len(report.top_entries), explicit_size=True, show_legend=False,
        title="Entries most hit", print_values=True,
    )  # fmt: skip
    rows = list(reversed(report.top_entries))
    chart.x_labels = [row["entry"] for row in rows]
    chart.add("hits", [row["hits"] for row in rows])
    return _chart(chart)


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]], numeric: Sequence[int] = ()) -> str:
    if not rows:
        return '<p class="muted">None in this period.</p>'
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{html.escape(str(v))}</td>' if i in numeric else f"<td>{html.escape(str(v))}</td>"
            for i, v in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(report: Report, title: str = "linkwarn report") -> str:
    """One self-contained page: inline style and SVG, nothing to fetch, every value escaped."""
    t = report.totals
    figures = "".join(
        f'<div class="figure"><b>{value}</b>{html.escape(name)}</div>'
        for name, value in (
            ("warning and block pages shown", t["warnings_shown"]),
            ("proceeds", t["proceeds"]),
            ("false-positive reports", t["reports"]),
            ("share attempts warned", report.share_attempts),
            ("audit hits", t["audit_hits"]),
        )
    )
    feeds = _table(
        ["feed", "version", "entries", "age (hours)", "fresh", "last success", "last error"],
        [
            (
                f.feed,
                "-" if f.version is None else f.version,
                f.entries,
                "-" if f.age_hours is None else f.age_hours,
                "STALE" if f.stale else "yes",
                f.last_success or "never",
                f.last_error or "",
            )
            for f in report.feeds
        ],
        numeric=(1, 2, 3),
    ).replace("<td>STALE</td>", '<td class="stale">STALE</td>')
    entries = _table(
        ["entry", "action", "hits"], [(e["entry"], e["action"], e["hits"]) for e in report.top_entries], (2,)
    )
    reasons = _table(["reason", "times"], [(r["reason"], r["count"]) for r in report.proceed_reasons], (1,))
    reports = _table(
        ["when", "entry", "who", "comment"],
        [(r["at"], r["entry"], r["client"], r["comment"]) for r in report.false_positive_reports],
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{_CSP}">
<title>{html.escape(title)}</title><style>{_CSS}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p class="muted">{html.escape(report.since)} to {html.escape(report.until)}</p>
<div class="figures">{figures}</div>
<h2>Per day</h2>
{_days_chart(report)}
<h2>Entries most hit</h2>
{_entries_chart(report)}
{entries}
<h2>Why people proceeded</h2>
{reasons}
<h2>False-positive reports</h2>
{reports}
<h2>Share attempts</h2>
<p>{report.share_attempts} attempts to post a listed link were warned about in this period.</p>
<h2>Feed freshness</h2>
{feeds}
</body></html>
"""
