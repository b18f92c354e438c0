"""The interceptor: check each outbound request and answer a listed one.

mitmproxy loads it through ``mitmdump -s proxy_addon/addon.py`` or ``linkwarn run``.
For every request it canonicalizes the URL under each name the request carries
and looks the expressions up in the in-memory index, without I/O; only on a hit
does it read the store. What a hit means for the request is `policy.answer`'s
to say: a top-level navigation to a ``block`` or ``warn`` entry is redirected to
the warning page on linkwarn's own origin (`proxy_addon.origin`), anything else
gets a short 403 whose ``X-Linkwarn`` header names the verdict. The decision is
made in ``requestheaders``, before any byte of the request goes upstream (with
``connection_strategy=lazy`` a listed host is never contacted), and recorded as
one `Decision` in ``flow.metadata["linkwarn"]``.

A person's Proceed reaches the listed origin as a one-time code in the URL,
which this addon consumes: it answers with an ``HttpOnly`` pass cookie and a
redirect to the clean URL, and strips pass cookies from every request it
forwards, so the listed site never sees either.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Coroutine
from typing import Any
from urllib.parse import urlsplit

from mitmproxy import connection, ctx, exceptions, http, tls
from mitmproxy.proxy import layer, layers

from blocklists import Action, InvalidURL, Verdict
from blocklists.checker import Prefiltered
from blocklists.store import Event
from proxy_addon.answers import (
    METADATA_KEY,
    Decision,
    client_of,
    event_for,
    may_stream,
    page_response,
    redirect_response,
    refusal_response,
    request_kind,
)
from proxy_addon.events import EventKind
from proxy_addon.interstitial import render_message, texts_for
from proxy_addon.names import host_name, next_hops, request_urls
from proxy_addon.origin import CODE_PARAM, SHARE_CODE_PARAM, OwnOrigin
from proxy_addon.passes import Passes, strip_code, take_passes
from proxy_addon.policy import BEHAVIOUR, Answer, RequestKind, answer, may_proceed
from proxy_addon.runtime import ListsUnavailable, Runtime
from proxy_addon.selective import Selective
from proxy_addon.settings import add_options, parse_settings
from proxy_addon.share import ShareGuard
from proxy_addon.tokens import Purpose, TokenError, verify
from proxy_addon.tunnels import guard

__all__ = ["METADATA_KEY", "Linkwarn"]

logger = logging.getLogger(__name__)

MITMPROXY_OPTIONS = frozenset({"confdir", "ignore_hosts", "allow_hosts"})  # read into the settings too
_SEVERITY = {Answer.FORWARD: 0, Answer.AUDIT: 1, Answer.PAGE: 2, Answer.REFUSE: 2}


def respond(flow: http.HTTPFlow, response: http.Response) -> None:
    """Answer the request in place of its server; nothing of it is forwarded.

    mitmproxy cannot answer a request whose body it streams, and streams a large
    one while reading it even after an addon has answered, so such a request is
    cut off instead (the connection, or the HTTP/2 stream): not a byte goes up.
    """
    if may_stream(flow.request):
        logger.info("linkwarn: cut off a streamed upload to %s", flow.request.pretty_host)
        flow.kill()
        return
    flow.request.stream = False
    flow.response = response


class Linkwarn:
    """The mitmproxy addon: hooks, and little else. The state is the `Runtime`'s."""

    def __init__(self, runtime: Runtime | None = None) -> None:
        self.runtime = runtime if runtime is not None else Runtime()
        self.origin = OwnOrigin(self.runtime)
        self.share = ShareGuard(self.runtime)
        self.passes = Passes(self.runtime)
        self.selective = Selective(self.runtime)

    # -- lifecycle --------------------------------------------------------

    def load(self, loader: Any) -> None:
        add_options(loader)

    def configure(self, updated: set[str]) -> None:
        if not any(name.startswith("linkwarn_") or name in MITMPROXY_OPTIONS for name in updated):
            return
        try:
            self.runtime.configure(parse_settings(ctx.options))
        except ValueError as exc:
            raise exceptions.OptionsError(str(exc)) from exc

    def running(self) -> None:
        # Listening starts now; the store opens in the background (see `Runtime.start`).
        self.runtime.start()

    async def done(self) -> None:
        await self.runtime.close()

    # -- hooks --------------------------------------------------------------
    #
    # The hooks are plain functions for unlisted traffic: they canonicalize, look
    # up the index and return None. Only when something needs awaiting (a prefix
    # hit to confirm in the store, lists still loading, the own origin's pages)
    # do they return a coroutine, which mitmproxy then awaits.

    def requestheaders(self, flow: http.HTTPFlow) -> Coroutine[Any, Any, None] | None:
        if flow.response or flow.error or not flow.live:
            return None
        request = flow.request
        if self.origin.serves(request):
            request.stream = False  # its forms are read whole, and nothing is ever forwarded
            flow.metadata[METADATA_KEY] = Decision(own_origin=True, answered=True)
            return None  # answered in `request`, once the body is in
        passes = take_passes(request)
        self.share.watch_stream(flow)  # a body mitmproxy will stream is read as it passes
        if CODE_PARAM in request.path:
            return self._with_code(flow, passes)
        if SHARE_CODE_PARAM in request.path:
            return self._with_share_code(flow, passes)
        if not self.runtime.ready.is_set():
            return self._when_ready(flow, passes)
        return self._check(flow, passes)

    def request(self, flow: http.HTTPFlow) -> Coroutine[Any, Any, None] | None:
        if flow.response or flow.error or not flow.live:
            return None
        decision = flow.metadata.get(METADATA_KEY)
        if isinstance(decision, Decision) and decision.own_origin:
            return self.origin.answer(flow)
        held = self.share.resend.pop(flow.id, None)
        if held is not None:
            flow.request.raw_content = held  # Send anyway: the post as it was held, byte for byte
            return None
        return self.share.scan(flow)

    def tls_clienthello(self, data: tls.ClientHelloData) -> None:
        """Decrypt only what must be read: every other TLS connection passes as an untouched tunnel."""
        self.selective.tls_clienthello(data)

    def client_disconnected(self, client: connection.Client) -> None:
        self.selective.client_disconnected(client)

    def next_layer(self, nextlayer: layer.NextLayer) -> Coroutine[Any, Any, None] | None:
        """A tunnel mitmproxy would relay untouched (ignored, or raw TCP) to a listed host is closed."""
        if not isinstance(nextlayer.layer, layers.TCPLayer | layers.UDPLayer):
            return None
        return self._guard_tunnel(nextlayer)

    def response(self, flow: http.HTTPFlow) -> Coroutine[Any, Any, None] | None:
        """A redirect (Location, Refresh) to a listed URL gets the answer that URL would get."""
        response = flow.response
        if response is None or not flow.live:
            return None
        decision = flow.metadata.get(METADATA_KEY)
        if isinstance(decision, Decision) and decision.answered:
            return None  # linkwarn's own answer
        if "location" not in response.headers and "refresh" not in response.headers:
            return None
        candidates = []
        for target in next_hops(flow):
            found = self._prefilter(target, flow)
            if found is not None:
                candidates.append((target, found))
        return self._answer_redirect(flow, candidates) if candidates else None

    # -- deciding ------------------------------------------------------------------

    def _check(self, flow: http.HTTPFlow, passes: list[str]) -> Coroutine[Any, Any, None] | None:
        """Every name of the request looked up in the index; the store only on a hit."""
        candidates: list[tuple[str, Prefiltered]] = []
        doubt = None
        for url in request_urls(flow):
            try:
                found = self.runtime.lookup(url)
            except InvalidURL as exc:
                doubt = f"the address cannot be read ({exc})"
                continue
            except ListsUnavailable as exc:
                self._unavailable(flow, str(exc))
                return None
            if found[2]:
                candidates.append((url, found))
            elif found[0].partial:
                doubt = "only the host and the start of the path of this address could be read"
        if candidates:
            return self._answer_candidates(flow, candidates, passes, doubt)
        if doubt is not None:
            self._doubt(flow, doubt)
        return None  # the common case: nothing listed, nothing awaited, nothing logged

    async def _when_ready(self, flow: http.HTTPFlow, passes: list[str]) -> None:
        """Hold a request that arrived while the lists load, then decide it."""
        try:
            await self.runtime.wait_ready()
        except ListsUnavailable as exc:
            self._unavailable(flow, str(exc))
            return
        pending = self._check(flow, passes)
        if pending is not None:
            await pending

    def _prefilter(self, url: str, flow: http.HTTPFlow) -> Prefiltered | None:
        """The index lookup for *url*: None when nothing can match (or it has no host). No I/O."""
        try:
            return self.runtime.prefilter(url)
        except InvalidURL:
            return None
        except ListsUnavailable as exc:
            self._unavailable(flow, str(exc))
            return None

    async def _confirm(self, url: str, found: Prefiltered, flow: http.HTTPFlow) -> Verdict | None:
        try:
            return await self.runtime.confirm(url, found)
        except ListsUnavailable as exc:
            self._unavailable(flow, str(exc))
            return None

    async def _answer_candidates(
        self,
        flow: http.HTTPFlow,
        candidates: list[tuple[str, Prefiltered]],
        passes: list[str],
        doubt: str | None = None,
    ) -> None:
        """Confirm every name's hits; the strictest answer among them is the request's."""
        kind = request_kind(flow.request)
        settings = self.runtime.require_settings()
        chosen: tuple[Answer, Verdict] | None = None
        for url, found in candidates:
            verdict = await self._confirm(url, found, flow)
            if flow.response is not None:
                return  # failing closed
            if verdict is None or verdict.entry is None:
                continue
            has_pass = self.passes.holds(flow, passes, verdict.entry)
            outcome = answer(verdict.entry.action, kind, has_pass=has_pass, proceed_allowed=settings.proceed)
            if chosen is None or _SEVERITY[outcome] > _SEVERITY[chosen[0]]:
                chosen = (outcome, verdict)
        if chosen is not None and (chosen[0] is not Answer.FORWARD or doubt is None):
            self._answer(flow, chosen[1], chosen[0], kind)
        elif doubt is not None:
            self._doubt(flow, doubt)

    async def _answer_redirect(self, flow: http.HTTPFlow, candidates: list[tuple[str, Prefiltered]]) -> None:
        kind = request_kind(flow.request)
        for target, found in candidates:
            verdict = await self._confirm(target, found, flow)
            if verdict is None or verdict.entry is None:
                continue
            outcome = answer(verdict.entry.action, kind, has_pass=False, proceed_allowed=False)
            if outcome in (Answer.PAGE, Answer.REFUSE):
                self._answer(flow, verdict, outcome, kind, redirect_from=flow.request.url)
                return

    def _answer(
        self,
        flow: http.HTTPFlow,
        verdict: Verdict,
        outcome: Answer,
        kind: RequestKind,
        redirect_from: str | None = None,
    ) -> None:
        entry = verdict.entry
        assert entry is not None
        flow.metadata[METADATA_KEY] = Decision.of(
            entry,
            verdict.canonical.url,
            outcome,
            proceeded=outcome is Answer.FORWARD and entry.action is Action.WARN,
        )
        self.runtime.metrics.decided(entry.action, kind)
        if outcome is Answer.FORWARD:
            return
        if outcome is Answer.AUDIT:
            self._record(flow, EventKind.AUDIT, verdict)
            return
        if outcome is Answer.REFUSE:
            detail = "WebSocket upgrade" if kind is RequestKind.WEBSOCKET else "subresource"
            event = EventKind.BLOCK if kind is RequestKind.SUBRESOURCE else EventKind.REFUSED
            self._record(flow, event, verdict, detail=detail)
            what = "WebSocket refused" if kind is RequestKind.WEBSOCKET else "refused"
            respond(flow, refusal_response(entry, f"{what}: the URL is listed"))
            return
        if redirect_from is not None:
            logger.info(
                "linkwarn: a redirect from %s leads to a listed URL", urlsplit(redirect_from).hostname
            )
        respond(
            flow,
            redirect_response(
                self.origin.ticket_url(flow, entry, verdict.url),
                x_linkwarn=f"{entry.action}; entry={entry.label}",
            ),
        )

    # -- the one-time code -----------------------------------------------------------

    async def _with_code(self, flow: http.HTTPFlow, passes: list[str]) -> None:
        """A request carrying a proceed code: turn a valid one into a pass, refuse (and log) the rest."""
        try:
            await self.runtime.wait_ready()
        except ListsUnavailable as exc:
            self._unavailable(flow, str(exc))
            return
        request = flow.request
        path, code = strip_code(request.path)
        url = request.url[: len(request.url) - len(request.path)] + path
        found = self._prefilter(url, flow)
        verdict = None if found is None else await self._confirm(url, found, flow)
        if flow.response is not None:
            return
        entry = None if verdict is None else verdict.entry
        if (
            verdict is None
            or entry is None
            or not may_proceed(entry.action, self.runtime.require_settings().proceed)
        ):
            # Not a code of ours to consume: the request is decided, and forwarded, as it came.
            pending = self._check(flow, passes)
            if pending is not None:
                await pending
            return
        problem = self.passes.code_problem(flow, code or "", entry)
        if problem is None:
            self._grant_pass(flow, verdict, url)
            return
        self._record(flow, EventKind.REFUSED, verdict, detail=f"proceed code refused: {problem}")
        request.path = path  # consumed either way: the listed site never sees it
        pending = self._check(flow, passes)
        if pending is not None:
            await pending

    async def _with_share_code(self, flow: http.HTTPFlow, passes: list[str]) -> None:
        """*Send anyway* coming back: put the held post in place of the request, once; else refuse."""
        request = flow.request
        path, code = strip_code(request.path, SHARE_CODE_PARAM)
        now = time.time()
        try:
            token = verify(
                self.runtime.secret, code or "", purpose=Purpose.SHARE_CODE, client=client_of(flow), now=now
            )
            post = self.runtime.held_posts.take(token.nonce, now)
            problem = None if post is not None else "no post is held for it (sent already, or expired)"
        except TokenError as exc:
            post, problem = None, str(exc)
        request.path = path
        if post is not None and request_urls(flow)[0] != post.url:
            post, problem = None, "the code is for a post to another address"  # spent all the same
        if post is None:
            logger.info("linkwarn: a send-anyway code was refused: %s", problem)
            if self.runtime.events is not None:
                self.runtime.events.record(Event(at=now, kind=EventKind.REFUSED, client=client_of(flow),
                                                 detail=f"send-anyway code refused: {problem}"))  # fmt: skip
            respond(flow, http.Response.make(403, f"linkwarn: not sent: {problem}\n",
                                             {"content-type": "text/plain; charset=utf-8"}))  # fmt: skip
            return
        request.method = post.method
        request.headers = http.Headers(list(post.headers))
        self.share.resend[flow.id] = post.content
        for link in post.links:
            self.share.record(flow, EventKind.SHARE_SENT, link, post.target)
        pending = self._check(flow, passes)  # its own address is still checked
        if pending is not None:
            await pending
        if flow.response is not None:
            self.share.resend.pop(flow.id, None)

    def _grant_pass(self, flow: http.HTTPFlow, verdict: Verdict, url: str) -> None:
        assert verdict.entry is not None
        flow.metadata[METADATA_KEY] = Decision.of(
            verdict.entry, verdict.canonical.url, Answer.FORWARD, proceeded=True, answered=True
        )
        respond(flow, redirect_response(url, set_cookie=self.passes.cookie(flow, verdict)))

    # -- other answers ------------------------------------------------------------------

    async def _guard_tunnel(self, nextlayer: layer.NextLayer) -> None:
        why = await guard(nextlayer, self._tunnel_refusal)
        if why is None:
            return
        peer = nextlayer.context.client.peername
        logger.info("linkwarn: closed %s", why)
        if self.runtime.events is not None:
            client = f"addr:{peer[0]}" if peer else "addr:unknown"
            self.runtime.events.record(
                Event(at=time.time(), kind=EventKind.REFUSED, client=client, detail=why)
            )

    async def _tunnel_refusal(self, name: str) -> str | None:
        """Why a tunnel to *name* must not be relayed untouched, or None."""
        host = host_name(name)
        if host in self.runtime.uncheckable_hosts:
            return f"{host} has path entries, which cannot be checked in a tunnel that is not intercepted"
        try:
            verdict = await self.runtime.decide(f"https://{host}/")
        except InvalidURL:
            return None
        except ListsUnavailable as exc:
            settings = self.runtime.settings
            return (
                f"the lists are unavailable ({exc})"
                if settings is not None and settings.fail_closed
                else None
            )
        if verdict is None or verdict.entry is None or not BEHAVIOUR[verdict.entry.action].shows_page:
            return None
        self.runtime.metrics.decided(verdict.entry.action, RequestKind.CONNECT)
        return f"{verdict.entry.label} is listed ({verdict.entry.action})"

    def _doubt(self, flow: http.HTTPFlow, why: str) -> None:
        """A request that cannot be decided in full, and no entry matched what could be read."""
        settings = self.runtime.settings
        if settings is None or not settings.fail_closed:
            logger.warning(
                "linkwarn: %s: a request to %s passes (failing open)", why, flow.request.pretty_host
            )
            return
        self._unavailable(flow, why)

    def _unavailable(self, flow: http.HTTPFlow, why: str) -> None:
        settings = self.runtime.settings
        if settings is None or not settings.fail_closed:
            logger.error("linkwarn: failing open (%s): %s passes unchecked", why, flow.request.pretty_host)
            return
        if request_kind(flow.request) is RequestKind.NAVIGATION:
            t = texts_for(flow.request.headers.get("accept-language"))
            page = render_message(t, "unavailable_title", "unavailable", {"why": why}, kind="block")
            response = page_response(503, page)
        else:
            message = f"linkwarn cannot check this request ({why}), and is set to fail closed.\n"
            response = http.Response.make(503, message, {"content-type": "text/plain; charset=utf-8"})
        response.headers["x-linkwarn"] = "unavailable"
        flow.metadata[METADATA_KEY] = Decision(unavailable=why, answered=True)
        respond(flow, response)

    def _record(
        self, flow: http.HTTPFlow, kind: EventKind, verdict: Verdict, detail: str | None = None
    ) -> None:
        event = event_for(flow, kind, verdict, detail)
        if self.runtime.events is not None and event is not None:
            self.runtime.events.record(event)
