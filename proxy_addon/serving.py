"""Serving an ASGI app with uvicorn on the proxy's own event loop: the local API, the operations listener."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import uvicorn
from starlette.types import ASGIApp

__all__ = ["LoopServer", "server_for"]


class LoopServer(uvicorn.Server):
    """uvicorn on the proxy's loop: the proxy, not uvicorn, owns SIGINT and SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def server_for(app: ASGIApp, limit_concurrency: int) -> LoopServer:
    """A quiet HTTP/1.1 server for *app*: no WebSockets, no lifespan, no access log, no Server header."""
    config = uvicorn.Config(
        app,
        http="h11",
        ws="none",
        lifespan="off",
        log_config=None,
        log_level="warning",
        access_log=False,
        server_header=False,
        limit_concurrency=limit_concurrency,
        timeout_keep_alive=5,
    )
    return LoopServer(config)
