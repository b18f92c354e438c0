"""Decrypt only what must be read: which TLS connections linkwarn opens, and which pass untouched.

A TLS connection is decrypted only when linkwarn has to read it: one of its
host names (the CONNECT target and the ClientHello's SNI, both) could be
matched by an entry (`Checker.reads_host`: an entry for the host, a parent
domain, or a path under either), is a site where posts are scanned for links
(`Settings.scans_posts_to`), or is linkwarn's own origin; or IT asked for full
interception (``linkwarn_intercept all``). Every other connection is relayed
as an untouched tunnel: the decision is made in mitmproxy's
``tls_clienthello`` hook, before any certificate is forged, and the browser
sees the site's own certificate.

Doubt is never a pass: a ClientHello without a server name (the host the
requests inside will name is unknown), one with an Encrypted Client Hello
whose outer name is not the CONNECT target (the real name may be inside),
lists not loaded yet, or a name that cannot be read as a host: all are
decrypted.

A tunnel passed through stays passed for as long as it lives, so `recheck`
runs after every change of the lists and closes each passed tunnel whose host
must now be read; the browser reconnects, and the new connection is decrypted
and decided. A passed-through connection is counted, never logged: no host of
one is written anywhere.
"""

from __future__ import annotations

import logging

from mitmproxy import tls
from mitmproxy.connection import Client

from proxy_addon.runtime import Runtime
from proxy_addon.tunnels import close_client, distinct_names

__all__ = ["ENCRYPTED_CLIENT_HELLO", "Selective", "connection_names"]

logger = logging.getLogger(__name__)

ENCRYPTED_CLIENT_HELLO = 0xFE0D  # the TLS extension type of ECH (RFC 9849)


class Selective:
    """Decides at each ClientHello whether a connection is decrypted; closes passed ones that must not be."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.passed: dict[str, tuple[str, ...]] = {}  # live passed-through connections: client id -> names
        runtime.on_lists_changed.append(self.recheck)

    def tls_clienthello(self, data: tls.ClientHelloData) -> None:
        sni = data.client_hello.sni  # parsed afresh on each read: once is enough
        names = connection_names(data, sni)
        if sni is None:
            why: str | None = "no server name"
        elif _may_hide_a_name(data, sni):
            why = "an encrypted client hello to a server it does not name"
        else:
            why = self.reason_to_read(names)
        counts, metrics = self.runtime.connections, self.runtime.metrics
        if why is not None:
            counts.decrypted += 1
            metrics.tls_connections.labels("decrypted").inc()
            return
        data.ignore_connection = True
        counts.passed += 1
        metrics.tls_connections.labels("passed").inc()
        self.passed[data.context.client.id] = names

    def reason_to_read(self, names: tuple[str, ...]) -> str | None:
        """Why a TLS connection with these host names must be decrypted, or None: it passes untouched."""
        runtime = self.runtime
        settings, checker = runtime.settings, runtime.checker
        if settings is None or settings.intercept_all:
            return "full interception"
        if checker is None or runtime.unavailable is not None:
            return "the lists are not loaded"  # the fail mode decides what its requests get
        for name in names:
            if name == settings.own_host:
                return "linkwarn's own origin"
            if settings.scans_posts_to(name):
                return "a site where posts are scanned"
            if checker.reads_host(name):
                return "an entry could match it"
        return None

    def client_disconnected(self, client: Client) -> None:
        self.passed.pop(client.id, None)

    def recheck(self) -> None:
        """After the lists changed: close each passed-through tunnel whose host must now be read."""
        if not self.passed:
            return
        for client_id, names in list(self.passed.items()):
            if self.reason_to_read(names) is None:
                continue
            del self.passed[client_id]
            if close_client(client_id):
                self.runtime.connections.closed += 1
                self.runtime.metrics.tls_connections.labels("closed").inc()
        logger.debug("linkwarn: %d passed-through tunnels remain", len(self.passed))


def _may_hide_a_name(data: tls.ClientHelloData, sni: str) -> bool:
    """An Encrypted Client Hello whose outer name is not the host the tunnel was opened to.

    Real ECH puts the wanted host in the encrypted inner hello and a provider's
    public name in the outer SNI; Chromium also sends a GREASE ECH extension,
    indistinguishable by design, on every connection with the real name outside.
    Through a CONNECT the wanted host is known, so an outer SNI equal to it
    hides nothing; without one (transparent mode) any ECH may.
    """
    if not any(kind == ENCRYPTED_CLIENT_HELLO for kind, _ in data.client_hello.extensions):
        return False
    address = data.context.server.address
    target = str(address[0]).lower().rstrip(".") if address else ""
    return target != sni.lower().rstrip(".")


def connection_names(data: tls.ClientHelloData, sni: str | None) -> tuple[str, ...]:
    """The host names a TLS connection carries: its CONNECT target (or destination) and its SNI."""
    address = data.context.server.address
    return distinct_names([str(address[0]) if address else None, sni])
