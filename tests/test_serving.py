from __future__ import annotations

import socket

from proxy_addon.serving import listening_socket


def test_connections_to_the_local_listeners_send_without_delay() -> None:
    """A response's head and body go out at once: no 40 ms wait for a delayed acknowledgement."""
    listener = listening_socket("127.0.0.1", 0)
    try:
        listener.setblocking(True)
        with socket.create_connection(listener.getsockname()) as client:
            accepted, _ = listener.accept()
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
                assert client.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0  # the test can fail
    finally:
        listener.close()
