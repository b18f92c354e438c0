"""Render linkwarn's own pages: the warning, short messages, the CA page. Pure: text in, text out.

The pages live on linkwarn's own origin (see `proxy_addon.origin`). Every
value from a request, a list, an option or a person goes through
`html.escape`; the words come from the translation files in ``locales/``
(`texts_for` picks one by ``Accept-Language``). The page loads nothing from
anywhere, works without JavaScript (its one script only makes "Go back" use
the browser history), and is served with a Content-Security-Policy that allows
exactly its own inline style and script, by hash, form posts to its own origin
only, and no framing.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from html import escape
from importlib import resources
from urllib.parse import urlsplit

from proxy_addon.settings import Organisation

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "LANGUAGES",
    "CaPage",
    "SharePage",
    "SharedLink",
    "Texts",
    "WarningPage",
    "policy_for_proceed",
    "render_ca_page",
    "render_message",
    "render_share_warning",
    "render_warning",
    "texts_for",
]

PROCEED_PATH = "/proceed"
REPORT_PATH = "/report"
MAX_REASON = 500
MAX_COMMENT = 2000

_STYLE = """
:root { color-scheme: light; --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --accent: #b35900;
  --block: #b42318; --bg: #f6f8fa; --focus: #0b57d0; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
  font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width: 42rem; margin: 8vh auto; padding: 2rem 2.25rem; background: #fff;
  border: 1px solid var(--line); border-top: 6px solid var(--accent); border-radius: 10px; }
main.block { border-top-color: var(--block); }
h1 { font-size: 1.5rem; line-height: 1.25; margin: 0 0 .75rem; }
p { margin: .5rem 0; }
.lead { color: var(--muted); }
.help { padding: .75rem 1rem; border-left: 4px solid var(--line); background: var(--bg);
  white-space: pre-line; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .35rem 1rem; margin: 1.25rem 0;
  padding: 1rem; background: var(--bg); border-radius: 8px; }
dt { color: var(--muted); }
dd { margin: 0; overflow-wrap: anywhere; min-width: 0; }
code { font: .9em ui-monospace, SFMono-Regular, Menlo, monospace; overflow-wrap: anywhere; }
.actions { display: flex; flex-wrap: wrap; gap: .75rem; align-items: flex-end; margin: 1.5rem 0 1rem; }
.actions form { margin: 0; display: flex; flex-direction: column; gap: .5rem; }
.actions form.with-reason { flex: 1 1 16rem; }
a.button, button { font: inherit; padding: .6rem 1.1rem; border-radius: 6px; cursor: pointer;
  border: 1px solid var(--line); background: #fff; color: var(--ink); text-decoration: none;
  text-align: center; }
a.primary { background: #1f6feb; border-color: #1f6feb; color: #fff; }
a:focus-visible, button:focus-visible, textarea:focus-visible, summary:focus-visible {
  outline: 3px solid var(--focus); outline-offset: 2px; }
details { margin-top: 1rem; border-top: 1px solid var(--line); padding-top: .75rem; }
summary { cursor: pointer; color: var(--muted); }
ol, ul { padding-left: 1.25rem; }
label { display: block; }
textarea { width: 100%; min-height: 4.5rem; font: inherit; padding: .5rem; border: 1px solid var(--line);
  border-radius: 6px; }
footer { margin-top: 1.5rem; color: var(--muted); font-size: .85rem; }
@media (max-width: 40rem) {
  main { margin: 0; border-radius: 0; border-left: 0; border-right: 0; padding: 1.25rem 1rem; }
  dl { grid-template-columns: 1fr; }
  dt { font-weight: 600; }
  .actions { flex-direction: column; align-items: stretch; }
  .actions form { flex: none; }
}
"""

_SCRIPT = (
    "var b=document.getElementById('back');if(b){b.addEventListener('click',function(e){"
    "if(history.length>1){e.preventDefault();history.back();}});}"
)


def _hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src {_hash(_STYLE)}; script-src {_hash(_SCRIPT)}; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
_ORIGIN = re.compile(r"^https?://(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(:\d{1,5})?$")


def policy_for_proceed(url: str) -> str:
    """The warning page's policy when its Proceed form may lead on to *url*'s origin.

    ``form-action`` applies to the redirects a form's answer makes too, so the
    Proceed redirect to the listed site must be named. Anything that is not a
    plain origin is left out (Proceed then fails closed in the browser).
    """
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}".lower()
    if not _ORIGIN.match(origin):
        return CONTENT_SECURITY_POLICY
    return CONTENT_SECURITY_POLICY.replace("form-action 'self'", f"form-action 'self' {origin}")


@dataclass(frozen=True, slots=True)
class Texts:
    """One language's words for the pages."""

    language: str  # "en", "de"
    words: Mapping[str, str]

    def __call__(self, key: str, **values: object) -> str:
        """The escaped text for *key*, with *values* escaped into its placeholders."""
        template = escape(self.words[key], quote=False)
        return template.format(**{name: escape(str(value)) for name, value in values.items()})


@cache
def _catalog() -> dict[str, Texts]:
    folder = resources.files("proxy_addon").joinpath("locales")
    found = {}
    for item in folder.iterdir():
        if item.name.endswith(".json"):
            language = item.name.removesuffix(".json")
            found[language] = Texts(language, json.loads(item.read_text("utf-8")))
    return found


LANGUAGES: tuple[str, ...] = tuple(sorted(_catalog()))
_LANGUAGE_RANGE = re.compile(
    r"^\s*([A-Za-z]{1,8})(?:-[A-Za-z0-9]{1,8})*\s*(?:;\s*q\s*=\s*([01](?:\.\d{0,3})?))?\s*$"
)


def texts_for(accept_language: str | None) -> Texts:
    """The translation best matching an ``Accept-Language`` header; English when none fits."""
    catalog = _catalog()
    best, best_q = "en", 0.0
    for position, part in enumerate((accept_language or "")[:512].split(",")[:32]):
        match = _LANGUAGE_RANGE.match(part)
        if match is None:
            continue
        language = match.group(1).lower()
        q = float(match.group(2)) if match.group(2) else 1.0
        q -= position * 1e-6  # at equal q, the earlier range wins
        if language in catalog and q > best_q:
            best, best_q = language, q
    return catalog[best]


@dataclass(frozen=True, slots=True)
class WarningPage:
    """Everything the warning page shows. Nothing here is trusted: all of it is escaped."""

    url: str
    canonical: str
    action: str  # "block" or "warn"
    entry_label: str  # "" for a hashed entry
    reason: str = ""
    source: str = ""
    category: str = ""
    incident: str = ""
    steps: tuple[str, ...] = ()
    expressions: tuple[str, ...] = ()
    matched_expression: str = ""
    explanation: tuple[str, ...] = ()
    proceed_token: str | None = None  # None: no way through
    reason_required: bool = False
    report_token: str = ""
    back_url: str | None = None
    proceed_seconds: int = 900
    truncated: bool = False
    organisation: Organisation = field(default_factory=Organisation)


def _duration(seconds: int, t: Texts) -> str:
    """A duration in the page's language, in the largest whole unit: 90 seconds, 15 minutes, 2 hours."""
    if seconds % 3600 == 0:
        return t.words["unit_hours"].format(n=seconds // 3600)
    if seconds % 60 == 0:
        return t.words["unit_minutes"].format(n=seconds // 60)
    return t.words["unit_seconds"].format(n=seconds)


def _safe_link(url: str | None) -> str:
    """A Go-back target: an http(s) URL, or a blank page."""
    if url and urlsplit(url).scheme in ("http", "https"):
        return url
    return "about:blank"


def _items(values: tuple[str, ...], tag: str = "li") -> str:
    return "".join(f"<{tag}><code>{escape(v)}</code></{tag}>" for v in values)


def _organisation(org: Organisation, t: Texts) -> str:
    parts = []
    if org.help_text:
        parts.append(f'<p class="help">{escape(org.help_text)}</p>')
    link = org.contact_link
    if link is not None:
        parts.append(f'<p id="contact">{t("contact")} <a href="{escape(link)}">{escape(org.contact)}</a></p>')
    return "".join(parts)


def _document(title: str, body: str, kind: str, t: Texts, org: Organisation) -> str:
    footer = t("footer_org", org=org.name) if org.name else t("footer")
    return (
        "<!doctype html>\n"
        f'<html lang="{escape(t.language)}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>{_STYLE}</style></head>"
        f'<body><main class="{escape(kind)}">{body}'
        f"<footer>{footer}</footer></main>"
        f"<script>{_SCRIPT}</script></body></html>\n"
    )


def render_warning(page: WarningPage, t: Texts) -> str:
    blocked = page.action == "block"
    title = t("block_title") if blocked else t("warn_title")
    rows = [(t("fact_address"), f"<code>{escape(page.url)}</code>")]
    if page.reason:
        rows.append((t("fact_why"), escape(page.reason)))
    if page.incident:
        rows.append((t("fact_incident"), escape(page.incident)))
    if page.category:
        rows.append((t("fact_category"), escape(page.category)))
    rows.append((t("fact_listed_as"), f"<code>{escape(page.entry_label)}</code>" if page.entry_label
                 else t("hashed_entry")))  # fmt: skip
    if page.source:
        rows.append((t("fact_list"), escape(page.source)))
    facts = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in rows)

    actions = [
        f'<a id="back" class="button primary" href="{escape(_safe_link(page.back_url))}">{t("go_back")}</a>'
    ]
    if page.proceed_token is not None and not blocked:
        duration = _duration(page.proceed_seconds, t)
        reason = (
            f'<label for="reason">{t("reason_label")}</label>'
            f'<textarea id="reason" name="reason" required maxlength="{MAX_REASON}"></textarea>'
            if page.reason_required
            else ""
        )
        actions.append(
            f'<form method="post" action="{PROCEED_PATH}"{" class=with-reason" if reason else ""}>'
            f'<input type="hidden" name="token" value="{escape(page.proceed_token)}">{reason}'
            f'<button type="submit" id="proceed">{t("proceed", duration=duration)}</button>'
            "</form>"
        )
    report = (
        f'<details id="report"><summary>{t("report_summary")}</summary>'
        f'<form method="post" action="{REPORT_PATH}">'
        f'<input type="hidden" name="token" value="{escape(page.report_token)}">'
        f'<p><label for="comment">{t("report_label")}</label></p>'
        f'<textarea id="comment" name="comment" maxlength="{MAX_COMMENT}"></textarea>'
        f'<p><button type="submit" id="send-report">{t("report_send")}</button></p></form></details>'
        if page.report_token
        else ""
    )
    details = (
        f"<details><summary>{t('details')}</summary>"
        f"<p>{t('details_requested')} <code>{escape(page.url)}</code></p>"
        + (f"<p>{t('truncated')}</p>" if page.truncated else "")
        + (f"<p>{t('details_canonical')} <code>{escape(page.canonical)}</code></p>" if page.canonical else "")
        + (f"<p>{t('details_steps')}</p><ol>{_items(page.steps)}</ol>" if page.steps else "")
        + (
            f"<p>{t('details_expressions')}</p><ul>{_items(page.expressions)}</ul>"
            if page.expressions
            else ""
        )
        + (
            f"<p>{t('details_matched')} <code>{escape(page.matched_expression)}</code></p>"
            if page.matched_expression
            else ""
        )
        + (f"<ul>{''.join(f'<li>{escape(line)}</li>' for line in page.explanation)}</ul>")
        + "</details>"
    )
    body = (
        f"<h1>{title}</h1><p class=lead>{t('lead')}</p><dl>{facts}</dl>"
        f"{_organisation(page.organisation, t)}"
        f'<div class="actions">{"".join(actions)}</div>{report}{details}'
    )
    return _document(title, body, page.action, t, page.organisation)


def render_message(
    t: Texts,
    title_key: str,
    message_key: str,
    values: Mapping[str, object] | None = None,
    *,
    back_url: str | None = None,
    kind: str = "warn",
    organisation: Organisation | None = None,
) -> str:
    """A short page: a report received, a form refused, the proxy unavailable."""
    org = organisation or Organisation()
    body = (
        f"<h1>{t(title_key)}</h1><p>{t(message_key, **(values or {}))}</p>{_organisation(org, t)}"
        f'<div class="actions"><a id="back" class="button primary" href="{escape(_safe_link(back_url))}">'
        f"{t('go_back')}</a></div>"
    )
    return _document(t(title_key), body, kind, t, org)


@dataclass(frozen=True, slots=True)
class SharedLink:
    canonical: str
    entry_label: str  # "" for a hashed entry
    action: str
    reason: str = ""
    source: str = ""


@dataclass(frozen=True, slots=True)
class SharePage:
    """The share warning: a post held back for the listed links it carries. All of it is escaped."""

    target: str  # where the post was going
    action: str  # the strictest: "block" or "warn"
    links: tuple[SharedLink, ...]
    send_token: str | None = None  # None: no way to send it
    back_url: str | None = None
    organisation: Organisation = field(default_factory=Organisation)


def render_share_warning(page: SharePage, t: Texts) -> str:
    blocked = page.action == "block"
    title = t("share_block_title") if blocked else t("share_warn_title")
    items = "".join(
        f"<li><code>{escape(link.canonical)}</code>"
        + (f" ({escape(link.reason)})" if link.reason else "")
        + f"<br><small>{t('fact_listed_as')} "
        + (f"<code>{escape(link.entry_label)}</code>" if link.entry_label else t("hashed_entry"))
        + (f", {t('fact_list')}: {escape(link.source)}" if link.source else "")
        + "</small></li>"
        for link in page.links
    )
    actions = [
        f'<a id="back" class="button primary" href="{escape(_safe_link(page.back_url))}">{t("go_back")}</a>'
    ]
    if page.send_token is not None and not blocked:
        actions.append(
            '<form method="post" action="/share/send">'
            f'<input type="hidden" name="token" value="{escape(page.send_token)}">'
            f'<button type="submit" id="send-anyway">{t("share_send")}</button></form>'
        )
    body = (
        f"<h1>{title}</h1><p class=lead>{t('share_lead')}</p>"
        f"<dl><dt>{t('share_target')}</dt><dd><code>{escape(page.target)}</code></dd>"
        f'<dt>{t("share_links")}</dt><dd><ul id="links">{items}</ul></dd></dl>'
        f"<p>{t('share_kept')}</p>{_organisation(page.organisation, t)}"
        f'<div class="actions">{"".join(actions)}</div>'
    )
    return _document(title, body, page.action, t, page.organisation)


@dataclass(frozen=True, slots=True)
class CaPage:
    fingerprint: str | None  # SHA-256 of the CA certificate, hex with colons; None: no certificate
    secure: bool  # the page itself came over https through the proxy
    organisation: Organisation = field(default_factory=Organisation)


def render_ca_page(page: CaPage, t: Texts) -> str:
    """The own origin's front page: the CA certificate and how to trust it, per platform."""
    if page.fingerprint is None:
        download = f"<p>{t('ca_missing')}</p>"
    else:
        download = (
            '<div class="actions">'
            f'<a id="download-pem" class="button primary" href="/cert/pem" download="linkwarn-ca.pem">'
            f"{t('ca_download_pem')}</a>"
            f'<a id="download-cer" class="button" href="/cert/cer" download="linkwarn-ca.cer">'
            f"{t('ca_download_cer')}</a></div>"
            f'<p>{t("ca_fingerprint")}</p><p><code id="fingerprint">{escape(page.fingerprint)}</code></p>'
        )
    steps = "".join(
        f"<li>{t(key)}</li>"
        for key in ("ca_windows", "ca_macos", "ca_linux", "ca_firefox", "ca_ios", "ca_android")
    )
    body = (
        f"<h1>{t('ca_title')}</h1><p class=lead>{t('ca_lead')}</p><p id=selective>{t('ca_selective')}</p>"
        + (f'<p id="trusted">{t("ca_trusted")}</p>' if page.secure else "")
        + download
        + f"<ul>{steps}</ul>{_organisation(page.organisation, t)}"
    )
    return _document(t("ca_title"), body, "warn", t, page.organisation)
