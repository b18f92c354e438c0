"""The interceptor: check each outbound request and answer a listed one.

mitmproxy loads it through ``mitmdump -s proxy_addon/addon.py`` or ``linkwarn run``.
For every request it canonicalizes the URL and looks its expressions up in the
in-memory index, without I/O; only on a hit does it read the store. A top-level
navigation to a ``block`` or ``warn`` entry gets the warning page, anything
else a short 403 whose ``X-Linkwarn`` header names the verdict. The answer is
set in the ``request`` hook, so with ``connection_strategy=lazy`` a listed host
is never contacted. The decision is recorded in ``flow.metadata["linkwarn"]``.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import re
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
from mitmproxy import ctx, exceptions, http

from blocklists import Action, Checker, InvalidURL, LinkwarnError, Store, Verdict, default_data_dir
from blocklists.checker import Prefiltered
from blocklists.entry import parse_duration
from blocklists.feed import FeedError
from blocklists.lists import Defaults, ListFormat, parse_list
from blocklists.store import Event
from blocklists.sync import FeedSubscription, FeedSyncer, parse_subscription
from proxy_addon.events import EventLog
from proxy_addon.interstitial import (
    CONTENT_SECURITY_POLICY,
    PROCEED_PATH,
    REPORT_PATH,
    WarningPage,
    render_message,
    render_warning,
)
from proxy_addon.tokens import MIN_SECRET_BYTES, ProceedToken, TokenError, load_or_create_secret, mint, verify

__all__ = ["METADATA_KEY", "PASS_COOKIE", "Linkwarn"]

logger = logging.getLogger(__name__)

METADATA_KEY = "linkwarn"
PASS_COOKIE = "linkwarn_pass"  # noqa: S105 - a cookie name, not a secret
SAMPLE_SOURCE = "sample"
REPORT_TOKEN_SECONDS = 24 * 3600
READY_TIMEOUT = 60.0
MAX_COMMENT = 2000
REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True, slots=True)
class Settings:
    """The options, validated: built in `configure`, replaced whole on change."""

    data_dir: Path
    fail_closed: bool
    proceed: bool
    proceed_seconds: int
    secret: bytes | None  # None: the data directory's own
    events_jsonl: Path | None
    sample: bool
    feeds: tuple[FeedSubscription, ...]
    feed_interval: int


def parse_settings(options: Any) -> Settings:
    """Turn mitmproxy options into `Settings`; raises ValueError naming the bad option."""
    try:
        seconds = parse_duration(options.linkwarn_proceed_ttl)
    except ValueError as exc:
        raise ValueError(f"linkwarn_proceed_ttl: {exc}") from None
    if seconds <= 0:
        raise ValueError("linkwarn_proceed_ttl must be longer than zero")
    try:
        feeds = tuple(parse_subscription(text) for text in options.linkwarn_feeds)
    except FeedError as exc:
        raise ValueError(f"linkwarn_feeds: {exc}") from None
    try:
        feed_interval = parse_duration(options.linkwarn_feed_interval)
    except ValueError as exc:
        raise ValueError(f"linkwarn_feed_interval: {exc}") from None
    if options.linkwarn_fail_mode not in ("open", "closed"):
        raise ValueError(f"linkwarn_fail_mode must be 'open' or 'closed', not {options.linkwarn_fail_mode!r}")
    secret = options.linkwarn_secret.encode() if options.linkwarn_secret else None
    if secret is not None and len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"linkwarn_secret must be at least {MIN_SECRET_BYTES} characters")
    return Settings(
        data_dir=Path(options.linkwarn_data_dir).expanduser()
        if options.linkwarn_data_dir
        else default_data_dir(),
        fail_closed=options.linkwarn_fail_mode == "closed",
        proceed=options.linkwarn_proceed,
        proceed_seconds=seconds,
        secret=secret,
        events_jsonl=Path(options.linkwarn_events_jsonl).expanduser()
        if options.linkwarn_events_jsonl
        else None,
        sample=options.linkwarn_sample,
        feeds=feeds,
        feed_interval=feed_interval,
    )


def is_navigation(request: http.Request) -> bool:
    """A top-level page load: by Sec-Fetch headers when the browser sends them, else by Accept."""
    dest = request.headers.get("sec-fetch-dest")
    if dest is not None:
        return bool(dest == "document" and request.headers.get("sec-fetch-mode", "navigate") == "navigate")
    return request.method in ("GET", "HEAD") and "text/html" in request.headers.get("accept", "")


def client_of(flow: http.HTTPFlow) -> str:
    """Who a proceed pass is bound to: the proxy-auth user when there is one, else the address."""
    auth = flow.metadata.get("proxyauth")
    if auth:
        return f"user:{auth[0]}"
    return f"addr:{flow.client_conn.peername[0]}" if flow.client_conn.peername else "addr:unknown"


def _origin(request: http.Request) -> str:
    default = 443 if request.scheme == "https" else 80
    port = "" if request.port == default else f":{request.port}"
    return f"{request.scheme}://{request.pretty_host}{port}"


def _same_origin_post(request: http.Request) -> bool:
    """Whether a form post came from the page's own origin.

    ``Sec-Fetch-Site`` cannot be set by a page, so when the browser sends it, it
    decides. (``Origin`` is no help there: under the page's no-referrer policy
    Chromium sends ``Origin: null`` even for its own same-origin form.) Without
    it, a present ``Origin`` must match; a client sending neither is not a
    browser, so no other site can be driving it.
    """
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return bool(site == "same-origin")
    origin = request.headers.get("origin")
    return origin is None or origin == _origin(request)


class Linkwarn:
    def __init__(self) -> None:
        self.settings: Settings | None = None
        self.store: Store | None = None
        self.checker: Checker | None = None
        self.events: EventLog | None = None
        self.secret = b""
        self.unavailable: str | None = None  # why the lists cannot be used, when they cannot
        self.ready = asyncio.Event()
        self._loading: asyncio.Task[None] | None = None
        self._feed_tasks: set[asyncio.Task[None]] = set()
        self._http: httpx.AsyncClient | None = None

    # -- lifecycle --------------------------------------------------------

    def load(self, loader: Any) -> None:
        loader.add_option(
            "linkwarn_data_dir", str, "",
            "Directory of linkwarn's store and proceed secret "
            "(default: $LINKWARN_DATA_DIR, else ~/.local/share/linkwarn).",
        )  # fmt: skip
        loader.add_option(
            "linkwarn_fail_mode", str, "open",
            "What to do when the lists cannot be used: 'open' lets traffic through and logs "
            "loudly; 'closed' answers every request with an error.",
            choices=("open", "closed"),
        )  # fmt: skip
        loader.add_option(
            "linkwarn_proceed", bool, True,
            "Offer 'Proceed anyway' on the warning page of 'warn' entries. "
            "Off: no way through anywhere.",
        )  # fmt: skip
        loader.add_option(
            "linkwarn_proceed_ttl", str, "15m",
            "How long a proceed pass lasts, as a duration (90s, 15m, 2h).",
        )  # fmt: skip
        loader.add_option(
            "linkwarn_secret", str, "",
            "Secret that signs proceed passes (16 characters or more). Give every proxy of a "
            "fleet the same one so they accept each other's passes. Default: a random secret "
            "kept in the data directory.",
        )  # fmt: skip
        loader.add_option(
            "linkwarn_events_jsonl", str, "",
            "Also append every event (warning, block, proceed, audit, report) as a JSON line "
            "to this file, for a log pipeline.",
        )  # fmt: skip
        loader.add_option(
            "linkwarn_feeds", Sequence[str], [],
            "Signed feeds to follow, each 'URL KEY [KEY...]' where KEY is the publisher's "
            "'ed25519:...' public key or a file holding it.",
        )  # fmt: skip
        loader.add_option(
            "linkwarn_feed_interval", str, "5m",
            "How often to poll each feed (never sooner than the feed's own minimum interval).",
        )  # fmt: skip
        loader.add_option(
            "linkwarn_sample", bool, True,
            "Load the bundled sample list (hosts under .example and .test) when the store has "
            "no lists at all.",
        )  # fmt: skip

    def configure(self, updated: set[str]) -> None:
        if not any(name.startswith("linkwarn_") for name in updated):
            return
        try:
            settings = parse_settings(ctx.options)
        except ValueError as exc:
            raise exceptions.OptionsError(str(exc)) from exc
        if (
            self.settings is not None
            and self.store is not None
            and settings.data_dir != self.settings.data_dir
        ):
            raise exceptions.OptionsError("linkwarn_data_dir cannot change while the proxy runs")
        self.settings = settings
        if self.store is not None:
            self._load_secret()

    def running(self) -> None:
        # Listening starts now. The store opens in the background (requests that
        # arrive before it wait for it), then answers requests itself while the
        # index is built, so none waits for a large list and none slips through.
        if self._loading is None:
            self._loading = asyncio.create_task(self._open(), name="linkwarn-open")

    async def done(self) -> None:
        tasks = [task for task in (self._loading, *self._feed_tasks) if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.aclose()
        if self.events is not None:
            await self.events.close()
        if self.store is not None:
            await self.store.close()

    async def _open(self) -> None:
        settings = self.settings or parse_settings(ctx.options)
        self.settings = settings
        try:
            store = Store.in_dir(settings.data_dir)
            await store.open()
            self.store = store
            self._load_secret()
            if settings.sample and not settings.feeds and not await store.sources():
                await self._import_sample(store)
            self.events = EventLog(store, settings.events_jsonl)
            self.events.start()
            # Requests are decided from here on: by the store until the index is built.
            self.checker = Checker(store)
            self.ready.set()
            started = time.perf_counter()
            index = await self.checker.reload()
            # Everything loaded so far lives as long as the process: keep the
            # collector from walking it again at every full collection.
            gc.collect()
            gc.freeze()
            logger.info(
                "linkwarn: %d entries ready in %.2f s from %s",
                len(index),
                time.perf_counter() - started,
                store.path,
            )
            self._start_feeds(store, settings)
        except Exception as exc:
            # Whatever went wrong, the fail mode decides what requests get.
            self.unavailable = str(exc) or type(exc).__name__
            mode = "closed: every request is refused" if settings.fail_closed else "open: NOTHING IS CHECKED"
            logger.exception("linkwarn: THE LISTS ARE UNAVAILABLE (%s); failing %s", self.unavailable, mode)
        finally:
            self.ready.set()

    def _start_feeds(self, store: Store, settings: Settings) -> None:
        if not settings.feeds:
            return
        self._http = httpx.AsyncClient(timeout=60, follow_redirects=True)
        for subscription in settings.feeds:
            syncer = FeedSyncer(store, subscription, self._http, self._reload, settings.feed_interval)
            task = asyncio.create_task(syncer.run(first_delay=0), name=f"linkwarn-feed {subscription.url}")
            self._feed_tasks.add(task)

    async def _reload(self, added: Sequence[bytes] | None) -> None:
        """A feed changed the store: merge its added keys into a new index, or rebuild; then swap."""
        assert self.checker is not None
        started = time.perf_counter()
        index = await self.checker.refresh(added)
        logger.info(
            "linkwarn: index rebuilt, %d entries, in %.2f s", len(index), time.perf_counter() - started
        )

    def _load_secret(self) -> None:
        assert self.settings is not None
        self.secret = self.settings.secret or load_or_create_secret(self.settings.data_dir)

    async def _import_sample(self, store: Store) -> None:
        text = resources.files("proxy_addon").joinpath("sample/sample-list.csv").read_text("utf-8")
        parsed = parse_list(
            text, source=SAMPLE_SOURCE, fmt=ListFormat.CSV, defaults=Defaults(), now=int(time.time())
        )
        await store.import_entries(SAMPLE_SOURCE, parsed.entries)
        logger.info(
            "linkwarn: the store was empty; loaded the bundled sample list (%d entries)", len(parsed.entries)
        )

    # -- hooks --------------------------------------------------------------

    async def http_connect(self, flow: http.HTTPFlow) -> None:
        """A CONNECT to a host that will not be intercepted: the host is all we ever see."""
        if flow.response or flow.error or not flow.live:
            return
        if not self._not_intercepted(flow.request.host, flow.request.port):
            return
        verdict = await self._decide(f"https://{flow.request.host}/", flow)
        if verdict is None or verdict.action not in (Action.BLOCK, Action.WARN):
            return
        self._record(flow, "refused", verdict, detail="CONNECT to a host that is not intercepted")
        flow.response = self._refusal(verdict, "CONNECT refused: the host is listed")

    # Both hooks below are plain functions for unlisted traffic: they canonicalize,
    # look up the index and return None. Only when something needs awaiting (a
    # prefix hit to confirm in the store, lists still loading, the warning page's
    # own forms) do they return a coroutine, which mitmproxy then awaits.

    def request(self, flow: http.HTTPFlow) -> Coroutine[Any, Any, None] | None:
        if flow.response or flow.error or not flow.live:
            return None
        request = flow.request
        pass_token = None
        if PASS_COOKIE in request.headers.get("cookie", ""):
            pass_token = request.cookies.get(PASS_COOKIE)
            request.cookies.pop(PASS_COOKIE, None)  # never forwarded upstream
        if request.path.startswith("/__linkwarn/"):
            return self._own_endpoint(flow)
        if not self.ready.is_set():
            return self._when_ready(flow, lambda: self._check_request(flow, pass_token))
        return self._check_request(flow, pass_token)

    def _check_request(self, flow: http.HTTPFlow, pass_token: str | None) -> Coroutine[Any, Any, None] | None:
        request = flow.request
        urls = [request.url]
        host_header = request.host_header
        if host_header and host_header.lower() not in (request.host, f"{request.host}:{request.port}"):
            urls.append(request.pretty_url)  # the Host header names another host: check it too
        candidates = [(url, found) for url in urls if (found := self._prefilter(url, flow)) is not None]
        if not candidates:
            return None  # the common case: nothing listed, nothing awaited, nothing logged
        return self._answer_candidates(flow, candidates, pass_token)

    async def _answer_candidates(
        self, flow: http.HTTPFlow, candidates: list[tuple[str, Prefiltered]], pass_token: str | None
    ) -> None:
        for url, found in candidates:
            verdict = await self._confirm(url, found, flow)
            if verdict is not None and verdict.entry is not None:
                self._answer(flow, verdict, pass_token)
                return

    def response(self, flow: http.HTTPFlow) -> Coroutine[Any, Any, None] | None:
        """A redirect to a listed URL (short links) gets the answer that URL would get."""
        response = flow.response
        if response is None or not flow.live or response.status_code not in REDIRECT_CODES:
            return None
        location = response.headers.get("location")
        if not location or flow.metadata.get(METADATA_KEY, {}).get("answered"):
            return None
        target = urljoin(flow.request.url, location)
        if urlsplit(target).scheme not in ("http", "https"):
            return None
        found = self._prefilter(target, flow)
        return None if found is None else self._answer_redirect(flow, target, found)

    async def _answer_redirect(self, flow: http.HTTPFlow, target: str, found: Prefiltered) -> None:
        verdict = await self._confirm(target, found, flow)
        if verdict is not None and verdict.action in (Action.BLOCK, Action.WARN):
            self._answer(flow, verdict, None, redirect_from=flow.request.url)

    # -- decisions ----------------------------------------------------------

    async def _when_ready(
        self, flow: http.HTTPFlow, then: Callable[[], Coroutine[Any, Any, None] | None]
    ) -> None:
        """Hold a request that arrived while the lists load, then decide it."""
        if await self._wait_ready(flow):
            pending = then()
            if pending is not None:
                await pending

    async def _wait_ready(self, flow: http.HTTPFlow) -> bool:
        if not self.ready.is_set():
            try:
                await asyncio.wait_for(self.ready.wait(), READY_TIMEOUT)
            except TimeoutError:
                self._unavailable(flow, "the lists are still loading")
                return False
        return True

    def _prefilter(self, url: str, flow: http.HTTPFlow) -> Prefiltered | None:
        """The index lookup for *url*: None when nothing can match. No I/O, no await."""
        checker = self.checker
        if checker is None:
            self._unavailable(flow, self.unavailable or "the lists are not loaded")
            return None
        try:
            found = checker.prefilter(url)
        except InvalidURL:
            return None
        return found if found[2] else None

    async def _confirm(self, url: str, found: Prefiltered, flow: http.HTTPFlow) -> Verdict | None:
        """Confirm prefix hits against the store; None when the store fails."""
        assert self.checker is not None
        try:
            return await self.checker.confirm(url, found)
        except (LinkwarnError, OSError) as exc:
            logger.exception("linkwarn: the store failed while confirming a listed URL")
            self._unavailable(flow, str(exc))
            return None

    async def _decide(self, url: str, flow: http.HTTPFlow) -> Verdict | None:
        """The whole decision for *url*, waiting for the lists if need be (CONNECT, forms)."""
        if not await self._wait_ready(flow):
            return None
        found = self._prefilter(url, flow)
        return None if found is None else await self._confirm(url, found, flow)

    def _unavailable(self, flow: http.HTTPFlow, why: str) -> None:
        assert self.settings is not None
        if not self.settings.fail_closed:
            logger.error("linkwarn: failing open (%s): %s passes unchecked", why, flow.request.pretty_host)
            return
        message = f"linkwarn cannot check this request ({why}), and is set to fail closed."
        if is_navigation(flow.request):
            flow.response = self._page(503, render_message("linkwarn is unavailable", message, kind="block"))
        else:
            flow.response = http.Response.make(
                503, message + "\n", {"content-type": "text/plain; charset=utf-8"}
            )
        flow.response.headers["x-linkwarn"] = "unavailable"
        flow.metadata[METADATA_KEY] = {"answered": True, "unavailable": why}

    def _answer(
        self, flow: http.HTTPFlow, verdict: Verdict, pass_token: str | None, redirect_from: str | None = None
    ) -> None:
        entry = verdict.entry
        assert entry is not None
        assert verdict.winner is not None
        flow.metadata[METADATA_KEY] = {
            "action": str(entry.action),
            "entry": entry.label,
            "source": entry.source,
            "canonical": verdict.canonical.url,
        }
        if entry.action is Action.ALLOW:
            return
        if entry.action is Action.AUDIT:
            self._record(flow, "audit", verdict)
            return
        if (
            entry.action is Action.WARN
            and pass_token is not None
            and self._pass_valid(flow, pass_token, verdict)
        ):
            flow.metadata[METADATA_KEY]["proceeded"] = True
            return
        flow.metadata[METADATA_KEY]["answered"] = True
        request = flow.request
        if request.headers.get("upgrade", "").lower() == "websocket":
            self._record(flow, "refused", verdict, detail="WebSocket upgrade")
            flow.response = self._refusal(verdict, "WebSocket refused: the URL is listed")
            return
        if not is_navigation(request):
            self._record(flow, "block", verdict, detail="subresource")
            flow.response = self._refusal(verdict, "refused: the URL is listed")
            return
        kind = "warning" if entry.action is Action.WARN else "block"
        self._record(flow, kind, verdict, detail=f"redirect from {redirect_from}" if redirect_from else None)
        logger.info("linkwarn: %s page for %s (%s)", kind, entry.label, entry.source)
        flow.response = self._page(403, render_warning(self._warning_page(flow, verdict)))
        flow.response.headers["x-linkwarn"] = f"{entry.action}; entry={entry.label}"

    def _warning_page(self, flow: http.HTTPFlow, verdict: Verdict) -> WarningPage:
        assert self.settings is not None
        assert verdict.entry is not None
        assert verdict.winner is not None
        entry = verdict.entry
        now = int(time.time())
        client = client_of(flow)
        proceed = None
        if entry.action is Action.WARN and self.settings.proceed:
            proceed = mint(self.secret, ProceedToken(client, entry.key, now + self.settings.proceed_seconds))
        return WarningPage(
            url=verdict.url,
            canonical=verdict.canonical.url,
            action=str(entry.action),
            entry_label=entry.expression or "a hashed entry",
            reason=entry.reason,
            source=entry.source,
            category=entry.category,
            incident=entry.incident,
            steps=verdict.canonical.steps,
            expressions=verdict.expressions,
            matched_expression=verdict.winner.expression,
            explanation=tuple(verdict.explain()),
            proceed_token=proceed,
            report_token=mint(self.secret, ProceedToken(client, entry.key, now + REPORT_TOKEN_SECONDS)),
            back_url=flow.request.headers.get("referer"),
            proceed_minutes=max(1, self.settings.proceed_seconds // 60),
        )

    def _pass_valid(self, flow: http.HTTPFlow, token: str, verdict: Verdict) -> bool:
        assert self.settings is not None
        assert verdict.entry is not None
        if not self.settings.proceed:
            return False
        try:
            granted = verify(self.secret, token, client=client_of(flow), now=time.time())
        except TokenError as exc:
            logger.info("linkwarn: ignoring a proceed pass: %s", exc)
            return False
        return granted.entry_key == verdict.entry.key

    # -- the warning page's own endpoints -------------------------------------

    async def _own_endpoint(self, flow: http.HTTPFlow) -> None:
        """Proceed and report posts: answered here, never forwarded upstream."""
        request = flow.request
        path = request.path.split("?", 1)[0]
        flow.metadata[METADATA_KEY] = {"answered": True, "endpoint": path}
        if path not in (PROCEED_PATH, REPORT_PATH):
            flow.response = http.Response.make(404, "no such linkwarn page\n", {"content-type": "text/plain"})
            return
        if request.method != "POST":
            flow.response = http.Response.make(
                405, "POST only\n", {"content-type": "text/plain", "allow": "POST"}
            )
            return
        if not _same_origin_post(request):
            self._refuse_post(flow, "This form was sent from another site, so it was not accepted.")
            return
        form = request.urlencoded_form
        target = form.get("url", "")
        try:
            token = verify(self.secret, form.get("token", ""), client=client_of(flow), now=time.time())
        except TokenError as exc:
            self._refuse_post(
                flow, f"This link's pass is not valid ({exc}). Open the link again to get a new one."
            )
            return
        verdict = await self._decide(target, flow) if target else None
        if verdict is None or verdict.entry is None or verdict.entry.key != token.entry_key:
            self._refuse_post(flow, "This pass does not cover that address.")
            return
        if urlsplit(target).hostname != request.pretty_host.lower():
            self._refuse_post(flow, "This pass is for another site.")
            return
        if path == REPORT_PATH:
            comment = form.get("comment", "")[:MAX_COMMENT]
            self._record(flow, "report", verdict, detail=comment)
            flow.response = self._page(
                200,
                render_message(
                    "Thank you, your report was sent",
                    "IT will review whether this address is listed by mistake.",
                ),
            )
            return
        assert self.settings is not None
        if not self.settings.proceed or verdict.entry.action is not Action.WARN:
            self._refuse_post(flow, "There is no way through to this address.")
            return
        expires = int(time.time()) + self.settings.proceed_seconds
        pass_token = mint(self.secret, ProceedToken(client_of(flow), token.entry_key, expires))
        self._record(flow, "proceed", verdict)
        logger.info("linkwarn: %s proceeded to %s", client_of(flow), verdict.entry.label)
        secure = "; Secure" if request.scheme == "https" else ""
        flow.response = http.Response.make(
            303,
            b"",
            {
                "location": target,
                "set-cookie": f"{PASS_COOKIE}={pass_token}; Path=/; Max-Age={self.settings.proceed_seconds}; "
                f"HttpOnly; SameSite=Lax{secure}",
                "cache-control": "no-store",
            },
        )

    def _refuse_post(self, flow: http.HTTPFlow, message: str) -> None:
        logger.info("linkwarn: refused a warning-page form: %s", message)
        flow.response = self._page(403, render_message("Not accepted", message, kind="block"))

    # -- answers --------------------------------------------------------------

    @staticmethod
    def _page(status: int, html: str) -> http.Response:
        return http.Response.make(
            status,
            html,
            {
                "content-type": "text/html; charset=utf-8",
                "content-security-policy": CONTENT_SECURITY_POLICY,
                "cache-control": "no-store",
                "x-content-type-options": "nosniff",
                "referrer-policy": "no-referrer",
            },
        )

    @staticmethod
    def _refusal(verdict: Verdict, message: str) -> http.Response:
        entry = verdict.entry
        assert entry is not None
        text = f"linkwarn: {message}: {entry.label}" + (f" ({entry.reason})" if entry.reason else "") + "\n"
        return http.Response.make(
            403,
            text,
            {
                "content-type": "text/plain; charset=utf-8",
                "x-linkwarn": f"{entry.action}; entry={entry.label}",
                "cache-control": "no-store",
                "x-content-type-options": "nosniff",
            },
        )

    def _record(self, flow: http.HTTPFlow, kind: str, verdict: Verdict, detail: str | None = None) -> None:
        entry = verdict.entry
        if self.events is None or entry is None:
            return
        referer = flow.request.headers.get("referer")
        self.events.record(
            Event(
                at=time.time(),
                kind=kind,
                client=client_of(flow),
                action=str(entry.action),
                entry_key=entry.key,
                expression=entry.expression,
                source=entry.source,
                url=verdict.canonical.url,
                referrer_host=urlsplit(referer).hostname if referer else None,
                detail=detail,
            )
        )

    def _not_intercepted(self, host: str, port: int) -> bool:
        """Whether mitmproxy will pass this host's TLS through untouched (ignore_hosts/allow_hosts)."""
        address = f"{host}:{port}"
        allow = ctx.options.allow_hosts
        if allow and not any(re.search(rex, address, re.IGNORECASE) for rex in allow):
            return True
        return any(re.search(rex, address, re.IGNORECASE) for rex in ctx.options.ignore_hosts)
