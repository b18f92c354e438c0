"""Real servers for the end-to-end tests: local upstreams and a running ``linkwarn run``."""

from __future__ import annotations

import asyncio
import base64
import datetime
import hashlib
import ipaddress
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from blocklists import Action, Entry, Store, key_of
from blocklists.entry import host_marker

ROOT = Path(__file__).resolve().parent.parent.parent
ROUTE_SCRIPT = Path(__file__).resolve().parent / "route_local.py"


def resolver_rules(port: int | str) -> str:
    """Chromium's ``--host-resolver-rules`` for tests: the reserved test names (``*.example``,
    ``*.test``) go to *port* on 127.0.0.1, and every other name fails to resolve."""
    return f"MAP *.example 127.0.0.1:{port}, MAP *.test 127.0.0.1:{port}, MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"


def read_response(sock: socket.socket | ssl.SSLSocket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response off a raw socket: status, headers (lower-case names) and body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split(" ")[1]), headers, body


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Handler(BaseHTTPRequestHandler):
    server: Upstream.Server

    @property  # type: ignore[override]
    def protocol_version(self) -> str:  # every response has a length, so HTTP/1.1 keeps connections alive
        return "HTTP/1.1" if self.server.keep_alive else "HTTP/1.0"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        host = self.headers.get("host", "")
        self.server.seen.append((host, self.path, self.headers.get("cookie")))
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            received = self._read_chunked()
        else:
            length = int(self.headers.get("content-length", "0") or "0")
            received = self.rfile.read(length) if length else b""
        self.server.bodies.append((self.path, received))
        body = f"received {len(received)} bytes".encode()
        self.send_response(200)
        self.send_header("content-type", "text/plain")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _read_chunked(self) -> bytes:
        """A chunked body, or as much of it as came before the connection ended."""
        received = bytearray()
        while True:
            size_line = self.rfile.readline(100)
            try:
                size = int(size_line.split(b";")[0], 16)
            except ValueError:
                return bytes(received)
            if size == 0:
                self.rfile.readline(100)
                return bytes(received)
            chunk = self.rfile.read(size + 2)
            received += chunk[:size]
            if len(chunk) < size + 2:
                return bytes(received)

    def do_GET(self) -> None:
        host = self.headers.get("host", "")
        self.server.seen.append((host, self.path, self.headers.get("cookie")))
        parts = urlsplit(self.path)
        if parts.path.startswith("/redirect/"):
            hops = int(parts.path.rsplit("/", 1)[1])
            target = parse_qs(parts.query)["to"][0]
            location = f"/redirect/{hops - 1}?to={target}" if hops > 0 else target
            self.send_response(302)
            self.send_header("location", location)
            self.send_header("content-length", "0")
            self.end_headers()
            return
        body = (
            f"<!doctype html><title>upstream</title><h1>upstream page</h1><p>{host}{self.path}</p>".encode()
        )
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@dataclass
class Upstream:
    """An HTTP or HTTPS server on 127.0.0.1 that records every request it gets."""

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 256  # many clients at once (the soak), not the default 5
        seen: list[tuple[str, str, str | None]]
        bodies: list[tuple[str, bytes]]
        tls: ssl.SSLContext | None = None
        ca: UpstreamCA | None = None
        # Off by default: behind mitmproxy and the test routing script (which rewrites each server
        # address), a kept-alive upstream connection sometimes never answers the next request.
        keep_alive = False

        def finish_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
            # The TLS handshake in the connection's own thread, not in the one that accepts them all.
            if self.tls is not None:
                try:
                    request = self.tls.wrap_socket(request, server_side=True)
                except (ssl.SSLError, OSError):
                    return
            super().finish_request(request, client_address)  # type: ignore[arg-type]

    server: Server
    port: int
    thread: threading.Thread = field(repr=False)

    @classmethod
    def start(cls, tls_dir: Path | None = None, keep_alive: bool = False) -> Upstream:
        server = cls.Server(("127.0.0.1", 0), _Handler)
        server.keep_alive = keep_alive
        server.seen = []
        server.bodies = []
        if tls_dir is not None:
            server.ca = UpstreamCA(tls_dir)
            server.tls = server.ca.server_context()
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        return cls(server, server.server_address[1], thread)

    @property
    def ca_file(self) -> Path:
        """The upstream's own CA (its HTTPS certificates are issued by it)."""
        assert self.server.ca is not None, "a plain HTTP upstream has no CA"
        return self.server.ca.pem

    def mark(self) -> int:
        """A point in the request log, for `hosts_since`."""
        return len(self.server.seen)

    def hosts_since(self, mark: int = 0) -> set[str]:
        """The hosts asked for since *mark* (the servers are shared by all tests)."""
        return {host.split(":")[0] for host, _, _ in self.server.seen[mark:]}

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def spki_hash(cert: x509.Certificate) -> str:
    """base64 SHA-256 of a certificate's SubjectPublicKeyInfo."""
    der = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


class UpstreamCA:
    """The test upstream's own CA, and a certificate of it for each server name a client asks for.

    A client that trusts this CA (and not the proxy's) can tell a tunnel the
    proxy passed through untouched (the upstream's certificate for the name)
    from one it decrypted (a certificate the proxy forged).
    """

    def __init__(self, directory: Path) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "linkwarn test upstream CA")])
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.directory = directory
        self.pem = directory / "upstream-ca.pem"
        self.pem.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self._contexts: dict[tuple[tuple[str, ...], tuple[str, ...]], ssl.SSLContext] = {}
        self._lock = threading.Lock()
        self.default = self.context_for("upstream.test")

    def context_for(self, server_name: str) -> ssl.SSLContext:
        """A server context whose certificate names *server_name* (a host or an IP address)."""
        return self.context_naming((server_name,), ("http/1.1",))

    def context_naming(self, names: tuple[str, ...], alpn: tuple[str, ...]) -> ssl.SSLContext:
        """A server context whose one certificate names every one of *names*, offering *alpn*."""
        with self._lock:
            found = self._contexts.get((names, alpn))
            if found is not None:
                return found
            alts: list[x509.GeneralName] = []
            for name in names:
                try:
                    alts.append(x509.IPAddress(ipaddress.ip_address(name)))
                except ValueError:
                    alts.append(x509.DNSName(name))
            now = datetime.datetime.now(datetime.UTC)
            cert = (
                x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0][:64])]))
                .issuer_name(self.cert.subject)
                .public_key(self.key.public_key())  # the CA's key (as mitmproxy's leaves): one SPKI pins all
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName(alts), critical=False)
                .sign(self.key, hashes.SHA256())
            )
            stem = self.directory / f"leaf-{len(self._contexts)}"
            # The chain names the CA too, as real servers send their intermediates.
            stem.with_suffix(".pem").write_bytes(
                cert.public_bytes(serialization.Encoding.PEM)
                + self.cert.public_bytes(serialization.Encoding.PEM)
            )
            stem.with_suffix(".key").write_bytes(
                self.key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(stem.with_suffix(".pem"), stem.with_suffix(".key"))
            context.set_alpn_protocols(list(alpn))
            self._contexts[(names, alpn)] = context
            return context

    def server_context(self) -> ssl.SSLContext:
        """The context the upstream listens with: it picks each connection's certificate by its SNI."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*self._default_files())
        context.set_alpn_protocols(["http/1.1"])

        def pick(connection: ssl.SSLObject | ssl.SSLSocket, name: str | None, _: ssl.SSLContext) -> None:
            if name:
                connection.context = self.context_for(name)

        context.sni_callback = pick  # type: ignore[assignment]
        return context

    def spki_hash(self) -> str:
        """base64 SHA-256 of the CA's key: for Chromium's --ignore-certificate-errors-spki-list."""
        return spki_hash(self.cert)

    def _default_files(self) -> tuple[str, str]:
        return str(self.directory / "leaf-0.pem"), str(self.directory / "leaf-0.key")


@dataclass
class RunningProxy:
    """``linkwarn run`` in a subprocess, on a free port, with its own data directory."""

    process: subprocess.Popen[str]
    port: int
    data_dir: Path
    output: list[str]
    api_port: int
    upstream_ca: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def api_token(self) -> str:
        return (self.data_dir / "api.token").read_text().strip()

    @property
    def ca_file(self) -> Path:
        return self.data_dir / "mitmproxy" / "mitmproxy-ca-cert.pem"

    @property
    def trust_file(self) -> Path:
        """What a client on a machine that trusts the proxy's CA trusts: that CA and the sites' own.

        Tunnels the proxy passes through show the upstream's certificate; the
        ones it decrypts, the proxy's.
        """
        bundle = self.data_dir / "trust.pem"
        if not bundle.exists():
            parts = [self.ca_file.read_bytes()]
            if self.upstream_ca is not None:
                parts.append(self.upstream_ca.read_bytes())
            bundle.write_bytes(b"".join(parts))
        return bundle

    def import_hashed(self, feed: str, entries: dict[str, Action]) -> None:
        """Rows as a hashed feed has them (key and host marker, no expression: expression -> action),
        written into the store the running proxy follows."""
        rows = [Entry(key=key_of(expression), action=action, marker=host_marker(expression.split("/", 1)[0]))
                for expression, action in entries.items()]  # fmt: skip

        async def write() -> None:
            async with Store.in_dir(self.data_dir) as store:
                await store.import_entries(feed, rows)

        # From a thread of its own: the caller may run an event loop (Playwright's sync API does).
        writer = threading.Thread(target=asyncio.run, args=(write(),))
        writer.start()
        writer.join()

    @classmethod
    def start(
        cls, data_dir: Path, http_port: int, https_port: int, *extra: str, upstream_ca: Path | None = None
    ) -> RunningProxy:
        port, api_port = free_port(), free_port()
        env = {
            **os.environ,
            "LINKWARN_TEST_HTTP_PORT": str(http_port),
            "LINKWARN_TEST_HTTPS_PORT": str(https_port),
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "proxy_addon.cli", "run", "--data-dir", str(data_dir),
             "--listen-port", str(port), "--api-port", str(api_port), "--script", str(ROUTE_SCRIPT),
             "--set", "ssl_insecure=true", *extra],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        output: list[str] = []
        assert process.stdout is not None
        stream = process.stdout
        threading.Thread(target=lambda: output.extend(iter(stream.readline, "")), daemon=True).start()
        proxy = cls(process, port, data_dir, output, api_port, upstream_ca)
        proxy.wait_for("linkwarn proxy listening on", 30)
        proxy.wait_for("entries ready", 30)
        return proxy

    def wait_for(self, text: str, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if any(text in line for line in self.output):
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"linkwarn run did not say {text!r}:\n" + "".join(self.output))

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
