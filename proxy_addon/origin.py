"""linkwarn's own origin: the host the proxy answers itself and never forwards.

Every decision a person makes happens here, on an origin no listed site can
reach: a page of the listed site cannot read it (it sends no CORS headers), frame
it (``frame-ancestors 'none'``), or post to it (a post must carry this origin's
own ``Origin`` and, where the browser sends it, ``Sec-Fetch-Site: same-origin``).

    GET  /                the CA certificate and how to trust it (mitm.it's job, for linkwarn), also over HTTP
    GET  /cert/pem|cer    the certificate itself, also over HTTP
    GET  /proxy.pac       a PAC file sending browsers through this proxy (`proxy_addon.pac`), also over HTTP
    GET  /warning?t=...   the warning page for a signed ticket (client, entry, URL)
    POST /proceed         Proceed: a person's click, not sooner than MIN_DWELL after the page opened;
                          answered with a redirect carrying a one-time code to the listed URL
    POST /report          Report a mistake: its own token, never a pass; limited per client
    GET  /share?t=...     the share warning for a post held back for its links (`proxy_addon.share`)
    POST /share/send      Send anyway: a redirect back to the post's URL with a one-time code

The code is consumed by the addon on the listed origin (`proxy_addon.interceptor`),
which answers with an ``HttpOnly`` pass cookie and strips both before anything
is forwarded.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from mitmproxy import http

from blocklists import Action, Entry, InvalidURL, Verdict
from blocklists.store import Event
from proxy_addon.answers import (
    METADATA_KEY,
    Decision,
    client_of,
    event_for,
    page_response,
    redirect_response,
    referrer_host,
)
from proxy_addon.events import EventKind
from proxy_addon.interstitial import (
    CONTENT_SECURITY_POLICY,
    MAX_COMMENT,
    MAX_REASON,
    CaPage,
    SharedLink,
    SharePage,
    Texts,
    WarningPage,
    policy_for_proceed,
    render_ca_page,
    render_message,
    render_share_warning,
    render_warning,
    texts_for,
)
from proxy_addon.pac import PAC_MEDIA_TYPE, render_pac
from proxy_addon.policy import may_proceed
from proxy_addon.runtime import ListsUnavailable, Runtime
from proxy_addon.tokens import Purpose, Token, TokenError, mint, new_nonce, verify

__all__ = ["CODE_PARAM", "CODE_SECONDS", "MIN_DWELL", "OwnOrigin", "add_code", "names_of"]

logger = logging.getLogger(__name__)

CODE_PARAM = "linkwarn-proceed-code"
SHARE_CODE_PARAM = "linkwarn-share-code"
TICKET_SECONDS = 15 * 60  # how long a warning page (and its Proceed form) stays usable
REPORT_SECONDS = 24 * 3600
CODE_SECONDS = 60
MIN_DWELL = 1.0  # seconds between the page being served and Proceed being accepted
MAX_TICKET_URL = 8192
MAX_FORM = 64 * 1024
PLAIN_HTTP_PATHS = frozenset({"/", "/cert/pem", "/cert/cer", "/proxy.pac"})


def add_code(url: str, code: str) -> str:
    """*url* with the one-time code appended to its query."""
    return f"{url}{'&' if '?' in url else '?'}{CODE_PARAM}={code}"


def _hostname(value: str) -> str:
    """The host part of a Host header or authority (an IPv6 literal stays as it is)."""
    return value if value.startswith("[") else value.partition(":")[0]


def names_of(request: http.Request) -> set[str]:
    """Every host name the request carries (URL, Host header, :authority), lowercased, no final dot."""
    names = {
        request.host,
        *(_hostname(v) for v in request.headers.get_all("host")),
        _hostname(request.authority),
    }
    return {name.lower().rstrip(".") for name in names if name}


class OwnOrigin:
    """The own origin's pages and forms. Everything but the CA page is served over https only."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._ca: tuple[bytes, bytes, str] | None = None  # PEM, DER, fingerprint

    def serves(self, request: http.Request) -> bool:
        """Whether any name the request carries is linkwarn's own host."""
        settings = self.runtime.settings
        return settings is not None and settings.own_host in names_of(request)

    def ticket_url(self, flow: http.HTTPFlow, entry: Entry, url: str) -> str:
        """Where a navigation to a listed URL is sent: the warning page, with a signed ticket."""
        settings = self.runtime.require_settings()
        now = time.time()
        ticket = Token(
            Purpose.TICKET,
            client_of(flow),
            entry.key,
            int(now) + TICKET_SECONDS,
            issued_ms=int(now * 1000),
            url=url[:MAX_TICKET_URL],
            nonce="truncated" if len(url) > MAX_TICKET_URL else "",
        )
        # Always https: there the browser says what a request is (Sec-Fetch-*), so a frame, a fetch
        # or a script's request is told from a person's page load, over plain HTTP it is not.
        return f"https://{settings.own_host}/warning?t={mint(self.runtime.secret, ticket)}"

    # -- routing -------------------------------------------------------------------

    async def answer(self, flow: http.HTTPFlow) -> None:
        """Answer a request to the own origin; nothing here is ever forwarded."""
        request = flow.request
        flow.metadata[METADATA_KEY] = Decision(own_origin=True, answered=True)
        t = texts_for(request.headers.get("accept-language"))
        path = request.path.split("?", 1)[0]
        routes = {
            ("GET", "/"): self._ca_page,
            ("GET", "/cert/pem"): self._certificate,
            ("GET", "/cert/cer"): self._certificate,
            ("GET", "/warning"): self._warning,
            ("POST", "/proceed"): self._proceed,
            ("POST", "/report"): self._report,
            ("GET", "/share"): self._share_page,
            ("POST", "/share/send"): self._share_send,
            ("GET", "/proxy.pac"): self._pac,
        }
        method = "GET" if request.method == "HEAD" else request.method
        if request.scheme != "https" and path not in PLAIN_HTTP_PATHS:
            # The warning and its forms only over https (see `ticket_url`); the CA page is for plain HTTP.
            if method == "GET":
                flow.response = redirect_response(request.url.replace("http://", "https://", 1), status=308)
            else:
                flow.response = self._message(t, 403, "not_accepted", "refused_method", kind="block")
            return
        handler = routes.get((method, path))
        if handler is None:
            known = {m for m, p in routes if p == path}
            status = 405 if known else 404
            flow.response = self._message(
                t, status, "not_found_title", "not_found" if not known else "refused_method"
            )
            if known:
                flow.response.headers["allow"] = ", ".join(sorted(known))
            return
        try:
            await handler(flow, t)
        except ListsUnavailable as exc:
            flow.response = self._message(
                t, 503, "unavailable_title", "unavailable", kind="block", why=str(exc)
            )

    def _message(
        self, t: Texts, status: int, title: str, message: str, kind: str = "warn", **values: object
    ) -> http.Response:
        settings = self.runtime.settings
        org = settings.organisation if settings is not None else None
        return page_response(status, render_message(t, title, message, values, kind=kind, organisation=org))

    # -- the CA page -----------------------------------------------------------------

    async def _load_ca(self) -> tuple[bytes, bytes, str] | None:
        if self._ca is None:
            path = self.runtime.require_settings().ca_cert
            if path is None:
                return None
            try:
                pem = await asyncio.to_thread(Path.read_bytes, path)
                der = x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)
            except (OSError, ValueError) as exc:
                logger.warning("linkwarn: the CA certificate cannot be read from %s: %s", path, exc)
                return None
            digest = hashlib.sha256(der).hexdigest().upper()
            self._ca = (pem, der, ":".join(digest[i : i + 2] for i in range(0, len(digest), 2)))
        return self._ca

    async def _ca_page(self, flow: http.HTTPFlow, t: Texts) -> None:
        ca = await self._load_ca()
        page = CaPage(
            fingerprint=None if ca is None else ca[2],
            secure=flow.request.scheme == "https",
            organisation=self.runtime.require_settings().organisation,
        )
        flow.response = page_response(200, render_ca_page(page, t))

    async def _pac(self, flow: http.HTTPFlow, t: Texts) -> None:
        """The PAC file: this proxy (`linkwarn_pac_proxy`, else the address the client reached) for all."""
        settings = self.runtime.require_settings()
        if settings.pac_proxy is not None:
            proxy = str(settings.pac_proxy)
        else:
            host, port = (flow.client_conn.sockname or ("", 0))[:2]
            host = host.removeprefix("::ffff:")
            proxy = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            pac = render_pac(proxy, settings.pac_direct)
        except ValueError as exc:  # no address to name (the client's connection has none)
            flow.response = self._message(t, 503, "unavailable_title", "unavailable", why=str(exc))
            return
        flow.response = http.Response.make(
            200,
            pac,
            {
                "content-type": PAC_MEDIA_TYPE,
                "cache-control": "max-age=300",
                "x-content-type-options": "nosniff",
            },
        )

    async def _certificate(self, flow: http.HTTPFlow, t: Texts) -> None:
        ca = await self._load_ca()
        if ca is None:
            flow.response = self._message(t, 404, "not_found_title", "ca_missing")
            return
        pem = flow.request.path.startswith("/cert/pem")
        flow.response = http.Response.make(
            200,
            ca[0] if pem else ca[1],
            {
                "content-type": "application/x-pem-file" if pem else "application/pkix-cert",
                "content-disposition": f"attachment; filename=linkwarn-ca.{'pem' if pem else 'cer'}",
                "cache-control": "no-store",
                "x-content-type-options": "nosniff",
            },
        )

    # -- the warning page --------------------------------------------------------------

    def _refuse(
        self, flow: http.HTTPFlow, t: Texts, message: str, status: int = 403, **values: object
    ) -> None:
        logger.info(
            "linkwarn: refused on the own origin: %s (%s)", message, flow.request.path.split("?", 1)[0]
        )
        flow.response = self._message(t, status, "not_accepted", message, kind="block", **values)

    async def _current(self, token: Token) -> Verdict | None:
        """The verdict for the token's URL now, if its winning entry is still the token's."""
        try:
            verdict = await self.runtime.decide(token.url)
        except InvalidURL:
            return None
        if verdict is None or verdict.entry is None or verdict.entry.key != token.entry_key:
            return None
        return verdict

    def _page_load_only(self, flow: http.HTTPFlow, t: Texts) -> bool:
        """Whether this is a person's top-level page load; a frame, a fetch or a script's request is
        refused, and records nothing, whatever it carries."""
        request = flow.request
        dest = request.headers.get("sec-fetch-dest")
        if (dest is not None and dest != "document") or "origin" in request.headers:
            self._refuse(flow, t, "refused_cross_site")
            return False
        return True

    async def _warning(self, flow: http.HTTPFlow, t: Texts) -> None:
        request = flow.request
        if not self._page_load_only(flow, t):
            return
        settings = self.runtime.require_settings()
        client = client_of(flow)
        now = time.time()
        try:
            ticket = verify(
                self.runtime.secret,
                request.query.get("t", ""),
                purpose=Purpose.TICKET,
                client=client,
                now=now,
            )
        except TokenError as exc:
            logger.info("linkwarn: a warning ticket was refused: %s", exc)
            flow.response = self._message(t, 400, "expired_title", "expired")
            return
        verdict = await self._current(ticket)
        if verdict is None:
            flow.response = self._message(t, 409, "expired_title", "expired")
            return
        entry = verdict.entry
        assert entry is not None
        assert verdict.winner is not None
        truncated = ticket.nonce == "truncated"
        proceed = None
        if may_proceed(entry.action, settings.proceed) and not truncated:
            proceed = mint(
                self.runtime.secret,
                Token(Purpose.PROCEED, client, entry.key, int(now) + TICKET_SECONDS,
                      issued_ms=int(now * 1000), url=ticket.url),
            )  # fmt: skip
        report = mint(
            self.runtime.secret,
            Token(Purpose.REPORT, client, entry.key, int(now) + REPORT_SECONDS, url=ticket.url),
        )
        page = WarningPage(
            url=ticket.url,
            canonical=verdict.canonical.url,
            action=str(entry.action),
            entry_label=entry.expression or "",
            reason=entry.reason,
            source=entry.source,
            category=entry.category,
            incident=entry.incident,
            steps=verdict.canonical.steps,
            expressions=verdict.expressions,
            matched_expression=verdict.winner.expression,
            explanation=tuple(verdict.explain()),
            proceed_token=proceed,
            reason_required=settings.require_reason or entry.require_reason,
            report_token=report,
            back_url=request.headers.get("referer"),
            proceed_seconds=settings.proceed_seconds,
            truncated=truncated,
            organisation=settings.organisation,
        )
        kind = EventKind.WARNING if entry.action is Action.WARN else EventKind.BLOCK
        self._record(flow, kind, verdict)
        logger.info("linkwarn: %s page for %s (%s)", kind, entry.label, entry.source)
        policy = CONTENT_SECURITY_POLICY if proceed is None else policy_for_proceed(ticket.url)
        flow.response = page_response(
            200,
            render_warning(page, t),
            x_linkwarn=f"{entry.action}; entry={entry.label}",
            content_security_policy=policy,
        )

    # -- the forms ------------------------------------------------------------------------

    def _same_origin_form(self, flow: http.HTTPFlow, t: Texts) -> dict[str, str] | None:
        """The form's fields, if it was posted by the own origin's page; else refuse and None."""
        request = flow.request
        settings = self.runtime.require_settings()
        origin = request.headers.get("origin")
        site = request.headers.get("sec-fetch-site")
        if (
            origin is None
            or (referrer_host(origin) or "").rstrip(".") != settings.own_host
            or (site is not None and site != "same-origin")
        ):
            self._refuse(flow, t, "refused_cross_site")
            return None
        if len(request.raw_content or b"") > MAX_FORM or "urlencoded" not in request.headers.get(
            "content-type", ""
        ):
            self._refuse(flow, t, "refused_method", status=400)
            return None
        return dict(request.urlencoded_form.items())

    def _token(self, flow: http.HTTPFlow, t: Texts, form: dict[str, str], purpose: Purpose) -> Token | None:
        try:
            return verify(
                self.runtime.secret,
                form.get("token", ""),
                purpose=purpose,
                client=client_of(flow),
                now=time.time(),
            )
        except TokenError as exc:
            self._record_refusal(flow, f"{purpose} form refused: {exc}")
            self._refuse(flow, t, "refused_token", why=str(exc))
            return None

    def _clicked(
        self, flow: http.HTTPFlow, t: Texts, purpose: Purpose, button: str
    ) -> tuple[dict[str, str] | None, Token | None]:
        """The form and token of a person's click on *button*: posted by the own origin's page, with a
        genuine token of *purpose*, not sooner than `MIN_DWELL` after the page was served; else refused."""
        form = self._same_origin_form(flow, t)
        token = None if form is None else self._token(flow, t, form, purpose)
        if token is not None and time.time() * 1000 - token.issued_ms < MIN_DWELL * 1000:
            self._record_refusal(flow, f"{button} pressed sooner than a person could have read the page")
            self._refuse(flow, t, "refused_too_fast")
            token = None
        return form, token

    async def _proceed(self, flow: http.HTTPFlow, t: Texts) -> None:
        settings = self.runtime.require_settings()
        form, token = self._clicked(flow, t, Purpose.PROCEED, "Proceed")
        if form is None or token is None:
            return
        now = time.time()
        verdict = await self._current(token)
        if verdict is None or verdict.entry is None:
            self._refuse(flow, t, "refused_scope")
            return
        entry = verdict.entry
        if not may_proceed(entry.action, settings.proceed):
            self._refuse(flow, t, "refused_no_way")
            return
        reason = form.get("reason", "").strip()[:MAX_REASON]
        if (settings.require_reason or entry.require_reason) and not reason:
            self._refuse(flow, t, "refused_reason", status=400)
            return
        self._record(flow, EventKind.PROCEED, verdict, detail=reason or None)
        logger.info("linkwarn: %s proceeded to %s", client_of(flow), entry.label)
        code = Token(Purpose.CODE, client_of(flow), entry.key, int(now) + CODE_SECONDS, nonce=new_nonce())
        flow.response = redirect_response(add_code(token.url, mint(self.runtime.secret, code)))

    async def _report(self, flow: http.HTTPFlow, t: Texts) -> None:
        form = self._same_origin_form(flow, t)
        token = None if form is None else self._token(flow, t, form, Purpose.REPORT)
        if form is None or token is None:
            return
        if not self.runtime.report_limits.allow(client_of(flow), time.time()):
            self._refuse(flow, t, "refused_reports", status=429)
            return
        verdict = await self._current(token)
        if verdict is None:
            self._refuse(flow, t, "refused_scope")
            return
        self._record(flow, EventKind.REPORT, verdict, detail=form.get("comment", "")[:MAX_COMMENT])
        flow.response = self._message(t, 200, "report_thanks_title", "report_thanks")

    # -- the share warning: a post held back for its links -------------------------------

    async def _share_page(self, flow: http.HTTPFlow, t: Texts) -> None:
        request = flow.request
        if not self._page_load_only(flow, t):
            return
        settings = self.runtime.require_settings()
        client, now = client_of(flow), time.time()
        try:
            ticket = verify(
                self.runtime.secret,
                request.query.get("t", ""),
                purpose=Purpose.SHARE_TICKET,
                client=client,
                now=now,
            )
        except TokenError:
            flow.response = self._message(t, 400, "expired_title", "share_expired")
            return
        post = self.runtime.held_posts.get(ticket.nonce, now)
        if post is None or post.client != client:
            flow.response = self._message(t, 410, "expired_title", "share_expired")
            return
        send = None
        if post.action == "warn" and settings.proceed:
            send = mint(
                self.runtime.secret,
                Token(Purpose.SHARE_SEND, client, b"\0" * 32, int(post.expires_at), issued_ms=int(now * 1000),
                      nonce=ticket.nonce),
            )  # fmt: skip
        page = SharePage(
            target=post.target,
            action=post.action,
            links=tuple(
                SharedLink(link.canonical, link.entry, link.action, link.reason, link.source)
                for link in post.links
            ),
            send_token=send,
            back_url=request.headers.get("referer"),
            organisation=settings.organisation,
        )
        policy = CONTENT_SECURITY_POLICY if send is None else policy_for_proceed(post.url)
        flow.response = page_response(200, render_share_warning(page, t), content_security_policy=policy)

    async def _share_send(self, flow: http.HTTPFlow, t: Texts) -> None:
        """Send anyway: back to the post's own URL with a one-time code the proxy consumes."""
        form, token = self._clicked(flow, t, Purpose.SHARE_SEND, "Send anyway")
        if form is None or token is None:
            return
        now = time.time()
        post = self.runtime.held_posts.get(token.nonce, now)
        if post is None or post.client != client_of(flow) or post.action != "warn":
            flow.response = self._message(t, 410, "expired_title", "share_expired")
            return
        code = Token(Purpose.SHARE_CODE, post.client, b"\0" * 32, int(now) + CODE_SECONDS, nonce=token.nonce)
        separator = "&" if "?" in post.url else "?"
        # The browser follows with a GET to the post's own URL (303: no form is re-submitted, so no
        # browser asks whether to send a form to a plain-HTTP site); the proxy puts the held request,
        # method, headers and body, in its place, byte for byte.
        flow.response = redirect_response(
            f"{post.url}{separator}{SHARE_CODE_PARAM}={mint(self.runtime.secret, code)}"
        )

    # -- events --------------------------------------------------------------------------

    def _record(
        self, flow: http.HTTPFlow, kind: EventKind, verdict: Verdict, detail: str | None = None
    ) -> None:
        # A proceed's Referer is this very page: only the warning's names where the link was.
        event = event_for(flow, kind, verdict, detail, with_referrer=kind is not EventKind.PROCEED)
        if self.runtime.events is not None and event is not None:
            self.runtime.events.record(event)

    def _record_refusal(self, flow: http.HTTPFlow, detail: str) -> None:
        if self.runtime.events is not None:
            self.runtime.events.record(
                Event(at=time.time(), kind=EventKind.REFUSED, client=client_of(flow), detail=detail)
            )
