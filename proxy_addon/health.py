"""The operations listener: Prometheus metrics, liveness and readiness, for monitoring and load balancers.

``linkwarn run --metrics HOST:PORT`` (option ``linkwarn_metrics``) serves, on
the proxy's own event loop (uvicorn, as the local API):

    GET /metrics   Prometheus' text format (`proxy_addon.metrics`)
    GET /healthz   200 while the process decides requests; 503 while the lists load or cannot be used
    GET /readyz    200 when the lists are loaded, no feed is past its expiry and the store takes writes

Both health answers are JSON saying why: ``{"status": "ok"|"loading"|..., "checks": {...}}``.
They read the `Runtime`'s state and, for readiness, try one write to the store
that is rolled back; nothing here runs on the request path.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sqlite3
import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from blocklists import LinkwarnError
from blocklists.store import FeedState
from proxy_addon.runtime import Runtime
from proxy_addon.serving import LoopServer, listening_socket, server_for
from proxy_addon.settings import Listen

__all__ = ["Monitoring", "create_app", "health", "readiness"]

logger = logging.getLogger(__name__)

PROBE_SECONDS = 2.0
_PROBE_URL = "linkwarn:readiness-probe"
_HEADERS = {"cache-control": "no-store"}


class _Probe(Exception):
    """Raised inside the probe's transaction to roll it back."""


async def _store_problem(runtime: Runtime) -> str | None:
    """Why the store does not take writes, or None. One write, rolled back."""
    store = runtime.store
    if store is None:
        return "the store is not open"
    try:
        async with asyncio.timeout(PROBE_SECONDS), store.transaction() as tx:
            await tx.save_feed_state(FeedState(url=_PROBE_URL))
            raise _Probe
    except _Probe:
        return None
    except TimeoutError:
        return None  # another write holds the store: it is writable, only busy
    except (LinkwarnError, OSError, sqlite3.Error) as exc:  # sqlite3's errors come raw from aiosqlite
        return f"the store does not take writes: {exc}"


def health(runtime: Runtime) -> tuple[int, dict[str, Any]]:
    """Liveness: whether this process decides requests, and why not."""
    if runtime.unavailable is not None:
        return 503, {"status": "unavailable", "why": f"the lists cannot be used: {runtime.unavailable}"}
    if not runtime.ready.is_set() or runtime.checker is None:
        return 503, {"status": "loading", "why": "the lists are still opening"}
    index = "index" if runtime.index_ready.is_set() else "store (the index is still being built)"
    return 200, {"status": "ok", "why": f"requests are decided from the {index}"}


async def readiness(runtime: Runtime, now: float | None = None) -> tuple[int, dict[str, Any]]:
    """Readiness: lists loaded, no feed past its expiry, the store writable; each check says why."""
    now = time.time() if now is None else now
    checks: dict[str, dict[str, Any]] = {}
    status, live = health(runtime)
    why = live["why"]
    loaded = status == 200 and runtime.index_ready.is_set()
    checks["lists"] = {"ok": loaded, "why": why if status != 200 or loaded else "the index is being built"}
    store = runtime.store
    if store is not None:
        states = await store.feed_states()
        expired = [s for s in states if s.stale(now)]
        never = [s for s in states if s.version is None]
        if expired:
            feeds_why = f"{len(expired)} of {len(states)} feeds are past their expiry"
        elif never:
            feeds_why = f"{len(never)} of {len(states)} feeds have never synced"
        else:
            feeds_why = f"{len(states)} feeds, none past its expiry" if states else "no feeds"
        checks["feeds"] = {"ok": not expired and not never, "why": feeds_why}
        problem = await _store_problem(runtime)
        checks["store"] = {"ok": problem is None, "why": problem or "the store takes writes"}
    else:
        checks["feeds"] = {"ok": False, "why": "the store is not open"}
        checks["store"] = {"ok": False, "why": "the store is not open"}
    ready = all(check["ok"] for check in checks.values())
    failing = [name for name, check in checks.items() if not check["ok"]]
    body = {"status": "ready" if ready else "not ready", "failing": failing, "checks": checks}
    return (200 if ready else 503), body


def create_app(runtime: Runtime) -> ASGIApp:
    """The ``/metrics``, ``/healthz`` and ``/readyz`` app over a proxy's `Runtime`."""

    async def metrics(request: Request) -> Response:
        events = runtime.events
        await runtime.metrics.refresh(runtime.store, events.queued if events is not None else 0)
        return Response(
            runtime.metrics.exposition(), headers={**_HEADERS, "content-type": CONTENT_TYPE_LATEST}
        )

    async def healthz(request: Request) -> Response:
        status, body = health(runtime)
        return JSONResponse(body, status_code=status, headers=_HEADERS)

    async def readyz(request: Request) -> Response:
        status, body = await readiness(runtime)
        return JSONResponse(body, status_code=status, headers=_HEADERS)

    return Starlette(
        routes=[
            Route("/metrics", metrics, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
        ]
    )


class Monitoring:
    """mitmproxy addon serving the operations listener beside the `Linkwarn` addon, over one `Runtime`."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.address: str | None = None
        self._server: LoopServer | None = None
        self._task: asyncio.Task[None] | None = None

    def running(self) -> None:
        settings = self.runtime.settings
        if settings is None or settings.metrics is None or self._server is not None:
            return
        listen = settings.metrics
        try:
            family = socket.AF_INET6 if ":" in listen.host else socket.AF_INET
            sock = listening_socket(listen.host, listen.port, family)
        except OSError as exc:
            logger.error("linkwarn: the metrics listener cannot listen on %s: %s", listen, exc)
            return
        self._server = server_for(create_app(self.runtime), limit_concurrency=32)
        port = sock.getsockname()[1]
        self.address = f"http://{Listen(listen.host, port)}"
        self._task = self.runtime.spawn(self._server.serve(sockets=[sock]), "linkwarn-metrics")
        logger.info("linkwarn: metrics and health on %s (/metrics, /healthz, /readyz)", self.address)

    async def done(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await asyncio.wait([self._task])
            self._server = self._task = None
