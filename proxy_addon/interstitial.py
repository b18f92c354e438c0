"""Render the warning page and the proxy's other small answers. Pure: text in, text out.

Every value from a request, a list or a person goes through `html.escape`; the
page loads nothing from anywhere, works without JavaScript (its one script
only makes "Go back" use the browser history), and is served with a
Content-Security-Policy that allows exactly its own inline style and script,
by hash, and form posts to its own origin.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from html import escape
from urllib.parse import urlsplit

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "PROCEED_PATH",
    "REPORT_PATH",
    "WarningPage",
    "render_message",
    "render_warning",
]

PROCEED_PATH = "/__linkwarn/proceed"
REPORT_PATH = "/__linkwarn/report"

_STYLE = """
:root { color-scheme: light; --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --accent: #b35900;
  --block: #b42318; --bg: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
  font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width: 42rem; margin: 8vh auto; padding: 2rem 2.25rem; background: #fff;
  border: 1px solid var(--line); border-top: 6px solid var(--accent); border-radius: 10px; }
main.block { border-top-color: var(--block); }
h1 { font-size: 1.5rem; line-height: 1.25; margin: 0 0 .75rem; }
p { margin: .5rem 0; }
.lead { color: var(--muted); }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .35rem 1rem; margin: 1.25rem 0;
  padding: 1rem; background: var(--bg); border-radius: 8px; }
dt { color: var(--muted); }
dd { margin: 0; overflow-wrap: anywhere; }
code { font: .9em ui-monospace, SFMono-Regular, Menlo, monospace; overflow-wrap: anywhere; }
.actions { display: flex; flex-wrap: wrap; gap: .75rem; align-items: center; margin: 1.5rem 0 1rem; }
.actions form { margin: 0; }
a.button, button { font: inherit; padding: .6rem 1.1rem; border-radius: 6px; cursor: pointer;
  border: 1px solid var(--line); background: #fff; color: var(--ink); text-decoration: none; }
a.primary { background: #1f6feb; border-color: #1f6feb; color: #fff; }
details { margin-top: 1rem; border-top: 1px solid var(--line); padding-top: .75rem; }
summary { cursor: pointer; color: var(--muted); }
ol, ul { padding-left: 1.25rem; }
textarea { width: 100%; min-height: 4.5rem; font: inherit; padding: .5rem; border: 1px solid var(--line);
  border-radius: 6px; }
footer { margin-top: 1.5rem; color: var(--muted); font-size: .85rem; }
"""

_SCRIPT = (
    "document.getElementById('back').addEventListener('click',function(e){"
    "if(history.length>1){e.preventDefault();history.back();}});"
)


def _hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src {_hash(_STYLE)}; script-src {_hash(_SCRIPT)}; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


@dataclass(frozen=True, slots=True)
class WarningPage:
    """Everything the warning page shows. Nothing here is trusted: all of it is escaped."""

    url: str
    canonical: str
    action: str  # "block" or "warn"
    entry_label: str
    reason: str = ""
    source: str = ""
    category: str = ""
    incident: str = ""
    steps: tuple[str, ...] = ()
    expressions: tuple[str, ...] = ()
    matched_expression: str = ""
    explanation: tuple[str, ...] = ()
    proceed_token: str | None = None  # None: no way through
    report_token: str = ""
    back_url: str | None = None
    proceed_minutes: int = 15


def _safe_link(url: str | None) -> str:
    """A Go-back target: an http(s) URL, or a blank page."""
    if url and urlsplit(url).scheme in ("http", "https"):
        return url
    return "about:blank"


def _items(values: tuple[str, ...], tag: str = "li") -> str:
    return "".join(f"<{tag}><code>{escape(v)}</code></{tag}>" for v in values)


def _document(title: str, body: str, kind: str) -> str:
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f'<body><main class="{escape(kind)}">{body}'
        "<footer>linkwarn, your organisation's link protection.</footer></main>"
        f"<script>{_SCRIPT}</script></body></html>\n"
    )


def render_warning(page: WarningPage) -> str:
    blocked = page.action == "block"
    title = "This page is blocked" if blocked else "Warning: this link leads to leaked material"
    lead = (
        "Your organisation lists this address as a copy of stolen material. "
        "Opening it, or passing the link on, spreads what was stolen and can harm the people in it."
    )
    rows = [("Address", f"<code>{escape(page.url)}</code>")]
    if page.reason:
        rows.append(("Why", escape(page.reason)))
    if page.incident:
        rows.append(("Incident", escape(page.incident)))
    if page.category:
        rows.append(("Category", escape(page.category)))
    rows.append(("Listed as", f"<code>{escape(page.entry_label)}</code>"))
    if page.source:
        rows.append(("List", escape(page.source)))
    facts = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in rows)

    actions = [f'<a id="back" class="button primary" href="{escape(_safe_link(page.back_url))}">Go back</a>']
    if page.proceed_token is not None and not blocked:
        actions.append(
            f'<form method="post" action="{PROCEED_PATH}">'
            f'<input type="hidden" name="token" value="{escape(page.proceed_token)}">'
            f'<input type="hidden" name="url" value="{escape(page.url)}">'
            f'<button type="submit" id="proceed">Proceed anyway ({page.proceed_minutes} minutes)</button>'
            "</form>"
        )
    report = (
        f'<details id="report"><summary>Report a mistake</summary>'
        f'<form method="post" action="{REPORT_PATH}">'
        f'<input type="hidden" name="token" value="{escape(page.report_token)}">'
        f'<input type="hidden" name="url" value="{escape(page.url)}">'
        '<p><label for="comment">If this address is not leaked material, tell IT why (optional):</label></p>'
        '<textarea id="comment" name="comment" maxlength="2000"></textarea>'
        '<p><button type="submit" id="send-report">Send report</button></p></form></details>'
    )
    details = (
        "<details><summary>Details</summary>"
        f"<p>Requested: <code>{escape(page.url)}</code></p>"
        f"<p>Canonical form: <code>{escape(page.canonical)}</code></p>"
        + (f"<p>Canonicalization:</p><ol>{_items(page.steps)}</ol>" if page.steps else "")
        + f"<p>Expressions looked up:</p><ul>{_items(page.expressions)}</ul>"
        + f"<p>Matched: <code>{escape(page.matched_expression)}</code></p>"
        + (f"<ul>{''.join(f'<li>{escape(line)}</li>' for line in page.explanation)}</ul>")
        + "</details>"
    )
    body = (
        f"<h1>{escape(title)}</h1><p class=lead>{escape(lead)}</p><dl>{facts}</dl>"
        f'<div class="actions">{"".join(actions)}</div>{report}{details}'
    )
    return _document(title, body, page.action)


def render_message(title: str, message: str, back_url: str | None = None, kind: str = "warn") -> str:
    """A short page: a report received, a pass refused, the proxy unavailable."""
    body = (
        f"<h1>{escape(title)}</h1><p>{escape(message)}</p>"
        f'<div class="actions"><a id="back" class="button primary" href="{escape(_safe_link(back_url))}">'
        "Go back</a></div>"
    )
    return _document(title, body, kind)
