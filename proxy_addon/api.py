"""The local API the browser extension talks to, served by ``linkwarn run`` on 127.0.0.1.

Endpoints, all JSON, described by the OpenAPI document at ``/v1/openapi.json``:

    GET  /v1/status        feeds, versions, staleness, entries, uptime
    POST /v1/check         verdicts for up to 500 URLs
    GET  /v1/rules         the plaintext entries a browser can enforce itself
    GET  /v1/psl           the Public Suffix List rules the proxy's host suffixes follow
    GET  /v1/prefixes      the index's key and host-marker prefixes (binary), or a diff from a version
    POST /v1/events        warnings shown and proceeds, stored with the proxy's events  (token)
    POST /v1/reports       a false-positive report with an optional comment            (token)

Who may call it. It listens on loopback only, and `refusal` turns away, before
any endpoint runs: a Host header that is not a loopback name (a DNS-rebinding
page reaches 127.0.0.1 under its own name), and any request a web page sent (an
``Origin`` that is not a browser extension's, or ``Sec-Fetch-Site`` naming a
site). It sends no CORS headers, so no page can read an answer. A body must be
``application/json``, at most `MAX_BODY` bytes, and a JSON object. Writes need
``Authorization: Bearer TOKEN`` with the token ``linkwarn run`` keeps in
``DATA_DIR/api.token``. Every refusal is a JSON error naming the problem:
``{"error": {"code": "...", "message": "..."}}``.

`LocalApi` is the mitmproxy addon that serves the app (uvicorn, on the proxy's
own event loop); `create_app` builds the Starlette app, which the tests also
call in-process.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from blocklists import Action, Canonical, InvalidURL, Verdict
from blocklists.canonical import suffix_rules
from blocklists.prefixes import ETAG, PrefixVersions
from blocklists.store import Event
from proxy_addon.events import EventKind
from proxy_addon.interstitial import MAX_COMMENT
from proxy_addon.policy import behaviour_table, may_proceed
from proxy_addon.runtime import ListsUnavailable, Runtime
from proxy_addon.serving import LoopServer, listening_socket, server_for
from proxy_addon.status import status_report
from proxy_addon.tokens import SecretError, load_or_create_secret

__all__ = ["API_TOKEN_FILE", "DEFAULT_PORT", "LocalApi", "create_app", "refusal"]

logger = logging.getLogger(__name__)

DEFAULT_PORT = 8089
API_TOKEN_FILE = "api.token"  # noqa: S105 - a file name, not a secret
MAX_BODY = 1024 * 1024
MAX_URLS = 500
MAX_URL_LENGTH = 8192
MAX_EVENTS = 100
MAX_RULES = 30_000
DEFAULT_RULES = 5_000
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "[::1]"})
EXTENSION_SCHEMES = ("chrome-extension://", "moz-extension://", "safari-web-extension://")
EVENT_KINDS = {"warning": EventKind.WARNING, "block": EventKind.BLOCK, "proceed": EventKind.PROCEED}


class ApiError(Exception):
    """A request the API refuses: answered as ``{"error": {"code", "message"}}`` with *status*."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=_HEADERS)


_HEADERS = {"cache-control": "no-store", "x-content-type-options": "nosniff"}


def refusal(headers: Headers) -> ApiError | None:
    """Why a request must be turned away before any endpoint sees it, or None."""
    host = headers.get("host")
    if not host:
        return ApiError(400, "host_missing", "the request has no Host header")
    name = host.lower()
    name = name[: name.index("]") + 1] if name.startswith("[") and "]" in name else name.split(":", 1)[0]
    if name not in LOOPBACK_NAMES:
        return ApiError(
            403,
            "host_not_allowed",
            f"the Host header {host!r} is not a loopback name; "
            "use http://127.0.0.1 (names that merely resolve here are refused)",
        )
    origin = headers.get("origin")
    if origin is not None:
        if not origin.startswith(EXTENSION_SCHEMES):
            return ApiError(
                403, "origin_not_allowed", f"requests from web pages are refused (Origin: {origin})"
            )
        return None
    site = headers.get("sec-fetch-site")
    if site in ("same-origin", "same-site", "cross-site"):
        return ApiError(
            403, "origin_not_allowed", f"requests from web pages are refused (Sec-Fetch-Site: {site})"
        )
    return None


class Guard:
    """ASGI middleware applying `refusal` to every HTTP request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            problem = refusal(Headers(scope=scope))
            if problem is not None:
                logger.info("linkwarn: local API refused a request: %s", problem.message)
                response = error_response(problem.status, problem.code, problem.message)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def read_json(request: Request) -> dict[str, Any]:
    """The request's body as a JSON object; raises ApiError naming what is wrong with it."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/json":
        raise ApiError(415, "unsupported_media_type", f"send the body as application/json, not {media!r}")
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
        raise ApiError(413, "body_too_large", f"the body may be at most {MAX_BODY} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise ApiError(413, "body_too_large", f"the body may be at most {MAX_BODY} bytes")
    try:
        data = json.loads(body, parse_constant=_no_constant)
    except RecursionError:
        raise ApiError(400, "malformed_json", "the body is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "malformed_json", f"the body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_request", "the body must be a JSON object")
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise ApiError(400, "invalid_text", "the body holds a lone surrogate (\\ud800-\\udfff)") from None
    except RecursionError:
        raise ApiError(400, "malformed_json", "the body is nested too deeply") from None
    return data


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _string_list(data: dict[str, Any], field: str, limit: int) -> list[Any]:
    items = data.get(field)
    if not isinstance(items, list) or not items:
        raise ApiError(400, "invalid_request", f"{field!r} must be a non-empty list")
    if len(items) > limit:
        raise ApiError(413, "too_many_items", f"at most {limit} {field} per request, got {len(items)}")
    return items


def _url_field(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ApiError(400, "invalid_request", f"{where} must be a string")
    if len(value) > MAX_URL_LENGTH:
        raise ApiError(400, "url_too_long", f"{where} is longer than {MAX_URL_LENGTH} characters")
    return value


def suffix_list_document() -> bytes:
    """The body of ``GET /v1/psl``: the suffix rules `blocklists.canonical.registrable_domain` follows."""
    body = {"source": "tldextract bundled snapshot, private domains included", "rules": list(suffix_rules())}
    return json.dumps(body, separators=(",", ":")).encode()


class Api:
    """The endpoints, over the proxy's `Runtime`: its store, checker and event log."""

    def __init__(self, runtime: Runtime, token: str, started_at: float) -> None:
        self.runtime = runtime
        self.token = token
        self.started_at = started_at
        self.document = json.loads(resources.files("proxy_addon").joinpath("openapi.json").read_text("utf-8"))
        self.versions = PrefixVersions()  # the prefixes served to extensions, and diffs between them
        self._versions_lock = asyncio.Lock()
        self._psl: tuple[bytes, str] | None = None

    def _require_token(self, request: Request) -> None:
        given = request.headers.get("authorization", "")
        if not given:
            raise ApiError(
                401, "token_missing", "writes need 'Authorization: Bearer TOKEN' (DATA_DIR/api.token)"
            )
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), self.token.encode()):
            raise ApiError(401, "token_invalid", "the API token is not this proxy's (DATA_DIR/api.token)")

    def _available(self) -> None:
        if self.runtime.checker is None:
            why = self.runtime.unavailable or "the lists are still loading"
            raise ApiError(503, "lists_unavailable", f"the lists cannot be used: {why}")

    async def _decide(self, url: str) -> tuple[Canonical, Verdict | None]:
        """The canonical URL and the decision (None when nothing is listed); raises InvalidURL or ApiError."""
        try:
            return await self.runtime.check(url)
        except ListsUnavailable as exc:
            raise ApiError(503, "lists_unavailable", f"the lists cannot be used: {exc}") from None

    def _proceed(self) -> tuple[bool, int]:
        settings = self.runtime.settings
        return (settings.proceed, settings.proceed_seconds) if settings is not None else (False, 0)

    def _result(
        self, url: str | None, verdict: Verdict | None, canonical: Canonical | None
    ) -> dict[str, Any]:
        entry = None if verdict is None else verdict.entry
        proceed, seconds = self._proceed()
        passable = entry is not None and may_proceed(entry.action, proceed)
        return {
            "url": url,
            "canonical": None if canonical is None else canonical.url,
            "partial": canonical is not None and canonical.partial,
            "listed": entry is not None and entry.action is not Action.ALLOW,
            "action": None if entry is None else str(entry.action),
            "reason": None if entry is None else entry.reason,
            "entry": None if entry is None else entry.label,
            "entry_key": None if entry is None else entry.key.hex(),
            "list": None if entry is None else entry.source,
            "category": None if entry is None else entry.category,
            "incident": None if entry is None else entry.incident,
            "expires_at": None if entry is None else entry.expires_at,
            "may_proceed": passable,
            "proceed_ttl_seconds": seconds if passable else None,
            "error": None,
        }

    async def _check_one(self, url: Any, where: str) -> dict[str, Any]:
        """One URL's result; a bad one gets an error in its own result, never the batch's."""
        if not isinstance(url, str):
            result = self._result(None, None, None)
            result["error"] = {"code": "invalid_request", "message": f"{where} must be a string"}
            return result
        try:
            canonical, verdict = await self._decide(url)
        except InvalidURL as exc:
            result = self._result(url, None, None)
            result["error"] = {"code": "invalid_url", "message": str(exc)}
            return result
        return self._result(url, verdict, canonical)

    # -- endpoints --------------------------------------------------------------

    async def check(self, request: Request) -> Response:
        data = await read_json(request)
        items = _string_list(data, "urls", MAX_URLS)
        self._available()  # lists_unavailable before any work
        results = [await self._check_one(value, f"urls[{i}]") for i, value in enumerate(items)]
        return JSONResponse({"results": results, "checked_at": time.time()}, headers=_HEADERS)

    async def status(self, request: Request) -> Response:
        runtime = self.runtime
        settings = runtime.settings
        store = runtime.store
        now = time.time()
        report: dict[str, Any] = {"feeds": [], "index_entries": 0, "sources": {}, "proxy": None}
        if store is not None and settings is not None:
            report = await status_report(store, settings.data_dir, now)
        checker = runtime.checker
        proceed, seconds = self._proceed()
        report.update(
            ok=runtime.unavailable is None and checker is not None,
            unavailable=runtime.unavailable,
            index_ready=checker is not None and checker.index is not None,
            stale=any(feed["stale"] for feed in report["feeds"]),
            uptime_seconds=round(now - self.started_at, 3),
            proceed_allowed=proceed,
            proceed_ttl_seconds=seconds,
            fail_mode="closed" if settings is not None and settings.fail_closed else "open",
            actions=behaviour_table(),
            events=None if runtime.events is None else runtime.events.health(),
            refused={"reports": runtime.report_limits.refused, "api": runtime.api_limits.refused},
            connections=runtime.connections.as_json(),
        )
        return JSONResponse(report, headers=_HEADERS)

    async def rules(self, request: Request) -> Response:
        text = request.query_params.get("limit", str(DEFAULT_RULES))
        if not (text.isascii() and text.isdecimal() and len(text) <= 6) or not 1 <= int(text) <= MAX_RULES:
            raise ApiError(400, "invalid_parameter", f"limit must be a whole number from 1 to {MAX_RULES}")
        limit = int(text)
        self._available()  # lists_unavailable until the store is open
        store = self.runtime.store
        assert store is not None
        entries = await store.plaintext_entries(limit + 1, time.time())
        body = {
            "entries": [
                {
                    "expression": e.expression,
                    "action": str(e.action),
                    "local": e.local,
                    "reason": e.reason,
                    "list": e.source,
                    "expires_at": e.expires_at,
                }
                for e in entries[:limit]
            ],
            "truncated": len(entries) > limit,
        }
        payload = json.dumps(body, separators=(",", ":")).encode()
        etag = '"' + hashlib.sha256(payload).hexdigest()[:32] + '"'
        headers = {**_HEADERS, "etag": etag}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        return Response(payload, media_type="application/json", headers=headers)

    async def psl(self, request: Request) -> Response:
        """The suffix rules, built once: they are the snapshot bundled with this proxy's tldextract."""
        if self._psl is None:
            payload = await asyncio.to_thread(suffix_list_document)
            self._psl = payload, '"' + hashlib.sha256(payload).hexdigest()[:32] + '"'
        payload, etag = self._psl
        headers = {**_HEADERS, "etag": etag}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        return Response(payload, media_type="application/json", headers=headers)

    async def prefixes(self, request: Request) -> Response:
        """The live index's prefixes, the full set or a diff from ``since`` (see `blocklists.prefixes`)."""
        since = request.query_params.get("since")
        if since is not None and not ETAG.fullmatch(since):
            raise ApiError(
                400,
                "invalid_parameter",
                "since must be an ETag this API gave: 32 hex digits in double quotes",
            )
        self._available()
        checker = self.runtime.checker
        assert checker is not None
        index, hosts = checker.index, checker.hosts
        if index is None or hosts is None:
            raise ApiError(
                503, "lists_unavailable", "the lists cannot be used: the index is still being built"
            )
        async with self._versions_lock:
            version = await asyncio.to_thread(self.versions.update, index, hosts.markers, hosts.unmarked)
            headers = {**_HEADERS, "etag": version.etag}
            if version.etag in (request.headers.get("if-none-match"), since):
                return Response(status_code=304, headers=headers)
            body, is_diff = await asyncio.to_thread(self.versions.answer, since)
        headers["x-linkwarn-prefixes"] = "diff" if is_diff else "full"
        return Response(body, media_type="application/octet-stream", headers=headers)

    async def events(self, request: Request) -> Response:
        self._require_token(request)
        data = await read_json(request)
        items = _string_list(data, "events", MAX_EVENTS)
        parsed: list[tuple[str, str]] = []
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise ApiError(400, "invalid_request", f"events[{i}] must be an object")
            kind = item.get("kind")
            if kind not in EVENT_KINDS:
                raise ApiError(
                    400, "invalid_request", f"events[{i}].kind must be one of {', '.join(EVENT_KINDS)}"
                )
            parsed.append((kind, _url_field(item.get("url"), f"events[{i}].url")))
        accepted, rejected = 0, []
        client, now = self._client(request), time.time()
        for i, (kind, url) in enumerate(parsed):
            allowed = self.runtime.api_limits.allow(client, now)
            problem = (
                await self._record(request, EVENT_KINDS[kind], url, detail="extension")
                if allowed
                else ApiError(429, "rate_limited", f"at most {self.runtime.api_limits.limit} a minute")
            )
            if problem is None:
                accepted += 1
            else:
                rejected.append({"index": i, "error": {"code": problem.code, "message": problem.message}})
        return JSONResponse({"accepted": accepted, "rejected": rejected}, headers=_HEADERS)

    async def reports(self, request: Request) -> Response:
        self._require_token(request)
        data = await read_json(request)
        url = _url_field(data.get("url"), "url")
        comment = data.get("comment", "")
        if not isinstance(comment, str):
            raise ApiError(400, "invalid_request", "comment must be a string")
        if len(comment) > MAX_COMMENT:
            raise ApiError(400, "comment_too_long", f"comment is longer than {MAX_COMMENT} characters")
        if not self.runtime.api_limits.allow(self._client(request), time.time()):
            raise ApiError(
                429, "rate_limited", f"at most {self.runtime.api_limits.limit} events and reports a minute"
            )
        problem = await self._record(request, EventKind.REPORT, url, detail=comment)
        if problem is not None:
            raise problem
        return JSONResponse({"recorded": True}, status_code=202, headers=_HEADERS)

    @staticmethod
    def _client(request: Request) -> str:
        origin = request.headers.get("origin", "")
        return f"extension:{origin}" if origin else "extension"

    async def _record(self, request: Request, kind: EventKind, url: str, detail: str) -> ApiError | None:
        try:
            _, verdict = await self._decide(url)
        except InvalidURL as exc:
            return ApiError(400, "invalid_url", str(exc))
        entry = None if verdict is None else verdict.entry
        if verdict is None or entry is None:
            return ApiError(422, "not_listed", "no entry matches this URL")
        if kind is EventKind.PROCEED and entry.action is not Action.WARN:
            return ApiError(422, "no_way_through", f"the entry's action is {entry.action}, not warn")
        events = self.runtime.events
        if events is None:
            return ApiError(503, "lists_unavailable", "the event log is not open")
        origin = request.headers.get("origin", "")
        events.record(
            Event(
                at=time.time(),
                kind=kind,
                client=f"extension:{origin}" if origin else "extension",
                action=str(entry.action),
                entry_key=entry.key,
                expression=entry.expression,
                source=entry.source,
                url=verdict.canonical.url,
                detail=detail,
            )
        )
        return None

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(self.document, headers=_HEADERS)


def _endpoint(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    async def call(request: Request) -> Response:
        try:
            return await handler(request)
        except ApiError as exc:
            return error_response(exc.status, exc.code, exc.message)

    return call


async def _internal_error(request: Request, exc: Exception) -> Response:
    """Whatever went wrong, a JSON error naming the endpoint, never a traceback."""
    logger.error("linkwarn: local API: %s %s failed", request.method, request.url.path, exc_info=exc)
    return error_response(
        500, "internal_error", f"{request.method} {request.url.path} failed: {type(exc).__name__}"
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    message = f"{request.method} {request.url.path}: {exc.detail}"
    return error_response(exc.status_code, code, message)


def create_app(runtime: Runtime, token: str, started_at: float | None = None) -> ASGIApp:
    """The API over a proxy's `Runtime`; *token* guards the writes."""
    api = Api(runtime, token, runtime.started_at if started_at is None else started_at)
    routes = [
        Route("/v1/status", _endpoint(api.status), methods=["GET"]),
        Route("/v1/check", _endpoint(api.check), methods=["POST"]),
        Route("/v1/rules", _endpoint(api.rules), methods=["GET"]),
        Route("/v1/psl", _endpoint(api.psl), methods=["GET"]),
        Route("/v1/prefixes", _endpoint(api.prefixes), methods=["GET"]),
        Route("/v1/events", _endpoint(api.events), methods=["POST"]),
        Route("/v1/reports", _endpoint(api.reports), methods=["POST"]),
        Route("/v1/openapi.json", _endpoint(api.openapi), methods=["GET"]),
    ]
    app = Starlette(
        routes=routes, exception_handlers={HTTPException: _http_error, Exception: _internal_error}
    )
    return Guard(app)


class LocalApi:
    """mitmproxy addon serving the API beside the `Linkwarn` addon, over the same `Runtime`.

    Its option, ``linkwarn_api_port``, is one of the settings (`proxy_addon.settings`).
    """

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.address: str | None = None  # http://127.0.0.1:PORT once listening
        self.token_file: str | None = None
        self._server: LoopServer | None = None
        self._task: asyncio.Task[None] | None = None

    def running(self) -> None:
        settings = self.runtime.settings
        if settings is None or not settings.api_port or self._server is not None:
            return
        port = settings.api_port
        try:
            token = load_or_create_secret(settings.data_dir, API_TOKEN_FILE).hex()
            sock = listening_socket("127.0.0.1", port)
        except (OSError, SecretError) as exc:
            logger.error("linkwarn: the local API cannot listen on 127.0.0.1:%d: %s", port, exc)
            return
        self._server = server_for(create_app(self.runtime, token), limit_concurrency=64)
        self.address = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self.token_file = str(settings.data_dir / API_TOKEN_FILE)
        self._task = self.runtime.spawn(self._server.serve(sockets=[sock]), "linkwarn-api")
        logger.info("linkwarn: local API on %s", self.address)

    async def done(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await asyncio.wait([self._task])  # the runtime may have cancelled it already
            self._server = self._task = None
