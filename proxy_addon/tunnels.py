"""Tunnels: a connection to a listed host is never relayed untouched.

mitmproxy decides at ``next_layer`` what a connection is: TLS to intercept,
HTTP, or raw TCP to relay as it is, either because ``--ignore-hosts`` (or
``--allow-hosts``) says so, for its CONNECT target or TLS SNI, or because its
first bytes look like neither TLS nor HTTP. `guard` reads that decision,
mitmproxy's own, and never restates it: when the connection would be relayed
untouched and any of its names is listed, it is closed instead, or, when too
few bytes have arrived to tell TLS from anything else (a ClientHello split
into one-byte segments), the decision waits for more.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from mitmproxy import ctx
from mitmproxy.proxy import commands, events, layer, layers
from mitmproxy.proxy.layers.tls import parse_client_hello

__all__ = ["CloseTunnel", "close_client", "distinct_names", "guard", "tunnel_names"]

MIN_BYTES = 3  # what mitmproxy needs to tell a TLS record or an HTTP verb from raw TCP


class CloseTunnel(layer.Layer):
    """Close the client's connection at once, relaying nothing."""

    def _handle_event(self, event: events.Event) -> layer.CommandGenerator[None]:
        if isinstance(event, events.Start):
            yield commands.CloseConnection(self.context.client)


def close_client(client_id: str) -> bool:
    """Close a client's connection, and with it the server connections it opened, through
    mitmproxy's proxyserver; False where there is none (no proxy core loaded, or already gone)."""
    proxyserver = ctx.master.addons.get("proxyserver") if hasattr(ctx, "master") else None
    handler = getattr(proxyserver, "connections", {}).get(client_id)
    if handler is None:
        return False
    handler.close_connection(handler.client)
    return True


def tunnel_names(nextlayer: layer.NextLayer) -> list[str]:
    """The host names a connection carries: its CONNECT target and its TLS SNI."""
    context = nextlayer.context
    names = []
    if context.server.address:
        names.append(str(context.server.address[0]))
    if context.client.sni:
        names.append(context.client.sni)
    try:
        hello = parse_client_hello(nextlayer.data_client())
    except ValueError:
        hello = None
    if hello is not None and hello.sni:
        names.append(hello.sni)
    return list(distinct_names(names))


def distinct_names(names: Iterable[str | None]) -> tuple[str, ...]:
    """Host names as compared: lower-case, no trailing dot, each once, empty ones left out."""
    return tuple(dict.fromkeys(name.lower().rstrip(".") for name in names if name))


async def guard(nextlayer: layer.NextLayer, refusal: Callable[[str], Awaitable[str | None]]) -> str | None:
    """Close a tunnel that mitmproxy would relay untouched to a listed host; say why, or None.

    *refusal* says why a host must not be relayed to (None: it may be).
    """
    chosen = nextlayer.layer
    if not isinstance(chosen, layers.TCPLayer | layers.UDPLayer):
        return None
    for name in tunnel_names(nextlayer):
        why = await refusal(name)
        if why is None:
            continue
        ignored = isinstance(chosen, layers.UDPLayer) or chosen.flow is None
        if not ignored and len(nextlayer.data_client()) < MIN_BYTES:
            nextlayer.layer = None  # too early to tell TLS from raw TCP: wait for more bytes
            return None
        nextlayer.layer = CloseTunnel(nextlayer.context)
        return f"{why}: a tunnel to {name} that would be relayed {'ignored' if ignored else 'as raw TCP'}"
    return None
