"""Serving an ASGI app with uvicorn on the proxy's own event loop: the local API, the operations listener."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import uvicorn
from starlette.types import ASGIApp

__all__ = ["LoopServer", "listening_socket", "server_for"]


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


def listening_socket(host: str, port: int, family: socket.AddressFamily = socket.AF_INET) -> socket.socket:
    """A non-blocking listening socket whose connections send without delay.

    uvicorn writes a response's head and body apart; with Nagle's algorithm the
    body then waits for the client's delayed acknowledgement of the head, about
    40 ms on Linux, for every request. Accepted connections inherit TCP_NODELAY
    from the listening socket.
    """
    sock = socket.create_server((host, port), family=family)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setblocking(False)
    return sock
