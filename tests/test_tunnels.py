"""Tunnels through a running ``linkwarn run``, on raw sockets: nothing listed is relayed untouched."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from .support.servers import RunningProxy, Upstream

IGNORED = (r"^mirror\.test:", r"^pass\.example:", r"^paste\.example:")


@pytest.fixture(scope="module")
def proxy(
    tmp_path_factory: pytest.TempPathFactory, upstreams: tuple[Upstream, Upstream]
) -> Iterator[RunningProxy]:
    extra = [arg for pattern in IGNORED for arg in ("--ignore-hosts", pattern)]
    started = RunningProxy.start(
        tmp_path_factory.mktemp("tunnels"), upstreams[0].port, upstreams[1].port, *extra
    )
    yield started
    started.stop()


def connect(proxy: RunningProxy, target: str) -> socket.socket:
    raw = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
    raw.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
    assert raw.recv(4096).startswith(b"HTTP/1.1 200"), target
    return raw


def handshake(raw: socket.socket, sni: str, cafile: Path | None, split: bool = False) -> ssl.SSLObject:
    """TLS over *raw* by hand, so the ClientHello can be sent a byte at a time."""
    context = ssl.create_default_context(cafile=str(cafile)) if cafile else ssl._create_unverified_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=sni)
    first = True
    while True:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            data = outgoing.read()
            if first and split:
                for i in range(len(data)):  # one byte per segment: nothing to tell TLS by, at first
                    raw.sendall(data[i : i + 1])
                    time.sleep(0.02 if i < 6 else 0)
            elif data:
                raw.sendall(data)
            first = False
            chunk = raw.recv(65536)
            if not chunk:
                raise ConnectionResetError("the proxy closed the tunnel") from None
            incoming.write(chunk)
    raw.sendall(outgoing.read())
    return tls


def closed_without_answer(raw: socket.socket) -> bool:
    try:
        return raw.recv(4096) == b""
    except (ConnectionResetError, TimeoutError):
        return True


def test_an_ignored_listed_host_is_closed_not_relayed(
    proxy: RunningProxy, upstreams: tuple[Upstream, Upstream]
) -> None:
    mark = upstreams[1].mark()
    with (
        connect(proxy, "mirror.test:443") as raw,
        pytest.raises((ConnectionResetError, ssl.SSLError, OSError)),
    ):
        handshake(raw, "mirror.test", None)
    assert upstreams[1].hosts_since(mark) == set()


def test_an_ignored_unlisted_host_is_relayed_untouched(
    proxy: RunningProxy, upstreams: tuple[Upstream, Upstream]
) -> None:
    with connect(proxy, "pass.example:443") as raw:
        tls = handshake(raw, "pass.example", None)
        certificate = tls.getpeercert(binary_form=True)
    issuer = x509.load_der_x509_certificate(certificate or b"").issuer.rfc4514_string()
    assert issuer == "CN=linkwarn test upstream CA"  # the upstream's own certificate: nothing was decrypted


def test_an_ignored_target_with_a_listed_sni_is_closed(proxy: RunningProxy) -> None:
    # The CONNECT names an unlisted ignored host; the ClientHello names a listed one.
    with (
        connect(proxy, "pass.example:443") as raw,
        pytest.raises((ConnectionResetError, ssl.SSLError, OSError)),
    ):
        handshake(raw, "mirror.test", None)


def test_a_host_with_only_path_entries_is_closed_when_ignored_and_named_at_start(proxy: RunningProxy) -> None:
    with (
        connect(proxy, "paste.example:443") as raw,
        pytest.raises((ConnectionResetError, ssl.SSLError, OSError)),
    ):
        handshake(raw, "paste.example", None)
    proxy.wait_for("cannot be checked in tunnels", 5)
    assert any("paste.example/raw/salaries" in line for line in proxy.output)


def test_a_split_client_hello_to_a_listed_host_is_intercepted(proxy: RunningProxy) -> None:
    with connect(proxy, "leak.example:443") as raw:
        tls = handshake(raw, "leak.example", proxy.ca_file, split=True)  # verified: the proxy's CA
        assert tls.version() is not None


@pytest.mark.parametrize(
    "first", [b"\x00", b"\x00\x01\x02\x03 not a protocol anyone speaks\r\n", b"SSH-2.0-x\r\n"]
)
def test_raw_tcp_to_a_listed_host_is_closed(proxy: RunningProxy, first: bytes) -> None:
    # Port 80 leads to the local HTTP upstream, which answers anything with a 400: only the
    # proxy closing the tunnel gets no answer at all.
    with connect(proxy, "leak.example:80") as raw:
        raw.sendall(first)
        if len(first) < 3:
            time.sleep(0.3)
            raw.sendall(b"\x01\x02\x03\x04 more bytes, still no protocol\r\n")
        raw.settimeout(5)
        assert closed_without_answer(raw)


def test_raw_tcp_to_an_unlisted_host_is_relayed(proxy: RunningProxy) -> None:
    with connect(proxy, "clean.example:80") as raw:
        raw.sendall(b"\x00\x01\x02\x03 not a protocol anyone speaks\r\n\r\n")
        raw.settimeout(5)
        assert b"400 - Bad request" in raw.recv(4096)  # the upstream's own answer, relayed
