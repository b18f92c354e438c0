"""An HTTP/2 upstream over TLS on 127.0.0.1 whose one certificate names several hosts.

For what a browser does with an open HTTP/2 connection when the certificate
also covers another host: every request records the connection it came on and
its ``:authority``, so a test can tell a request sent on a reused connection
from one that came through a tunnel of its own.
"""

from __future__ import annotations

import socket
import ssl
import threading
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events

from .servers import UpstreamCA

__all__ = ["H2Upstream"]


@dataclass
class H2Upstream:
    port: int
    seen: list[tuple[int, str, str]] = field(default_factory=list)  # (connection number, authority, path)
    _socket: socket.socket | None = field(default=None, repr=False)

    @classmethod
    def start(cls, ca: UpstreamCA, names: tuple[str, ...]) -> H2Upstream:
        context = ca.context_naming(names, ("h2",))
        listener = socket.create_server(("127.0.0.1", 0))
        server = cls(listener.getsockname()[1], _socket=listener)
        threading.Thread(target=server._accept, args=(listener, context), daemon=True).start()
        return server

    def stop(self) -> None:
        if self._socket is not None:
            self._socket.close()

    def _accept(self, listener: socket.socket, context: ssl.SSLContext) -> None:
        number = 0
        while True:
            try:
                raw, _ = listener.accept()
            except OSError:
                return
            number += 1
            threading.Thread(target=self._serve, args=(raw, context, number), daemon=True).start()

    def _serve(self, raw: socket.socket, context: ssl.SSLContext, number: int) -> None:
        try:
            with context.wrap_socket(raw, server_side=True) as tls:
                connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
                connection.initiate_connection()
                tls.sendall(connection.data_to_send())
                while data := tls.recv(65536):
                    for event in connection.receive_data(data):
                        if isinstance(event, h2.events.RequestReceived):
                            headers = {k.decode(): v.decode() for k, v in event.headers}  # type: ignore[union-attr]
                            authority, path = headers.get(":authority", ""), headers.get(":path", "")
                            self.seen.append((number, authority, path))
                            body = (
                                f"<!doctype html><title>h2 upstream</title><p>{authority}{path}</p>".encode()
                            )
                            connection.send_headers(
                                event.stream_id,
                                [
                                    (":status", "200"),
                                    ("content-type", "text/html"),
                                    ("content-length", str(len(body))),
                                ],
                            )
                            connection.send_data(event.stream_id, body, end_stream=True)
                    tls.sendall(connection.data_to_send())
        except (OSError, ssl.SSLError, h2.exceptions.ProtocolError):
            return
