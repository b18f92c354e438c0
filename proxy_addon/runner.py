"""``linkwarn run``: mitmproxy, the addon and the local API in one asyncio loop."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import gc
import json
import logging
import os
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from blocklists import default_data_dir
from blocklists.sync import pair_feeds
from proxy_addon.settings import add_run_flags, run_updates
from proxy_addon.status import RUN_FILE

if TYPE_CHECKING:
    from proxy_addon.runtime import Runtime

__all__ = ["add_run_arguments", "mitmproxy_addons", "run"]

logger = logging.getLogger(__name__)

RUN_FILE_INTERVAL = 2.0  # seconds between updates of run.json's live figures


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--listen-host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)"
    )
    parser.add_argument("--listen-port", type=int, default=8080, help="port to listen on (default: 8080)")
    parser.add_argument(
        "--upstream",
        default=None,
        metavar="URL",
        help="send traffic on through this proxy (http://host:port)",
    )
    parser.add_argument(
        "--ignore-hosts",
        action="append",
        default=[],
        metavar="REGEX",
        help="pass TLS to these hosts through uninspected (host:port regex, repeatable); "
        "a tunnel to a listed one is then closed",
    )
    add_run_flags(parser)
    parser.add_argument(
        "--feed", action="append", default=[], metavar="URL", help="follow this signed feed (repeatable)"
    )
    parser.add_argument(
        "--feed-key",
        action="append",
        default=[],
        metavar="PUBKEY",
        help="the feed publisher's public key (ed25519:... or a file); one, or one per --feed",
    )
    parser.add_argument(
        "--pac-direct",
        action="append",
        default=[],
        metavar="PATTERN",
        help="a host pattern the PAC file at http://OWN_HOST/proxy.pac sends DIRECT (repeatable); "
        "DIRECT hosts bypass the proxy and are never checked",
    )
    parser.add_argument(
        "--confdir",
        type=Path,
        default=None,
        help="mitmproxy's directory, with its CA (default: DATA_DIR/mitmproxy)",
    )
    parser.add_argument(
        "--script", action="append", default=[], metavar="FILE", help="another mitmproxy addon script"
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="OPTION=VALUE", help="any mitmproxy option (repeatable)"
    )


class _Banner:
    """Says where the proxy listens and where its CA is, once it listens."""

    def __init__(self, out: TextIO, data_dir: Path, confdir: Path, runtime: Runtime) -> None:
        self.out, self.data_dir, self.confdir, self.runtime = out, data_dir, confdir, runtime
        self.run_file = data_dir / RUN_FILE
        self.info: dict[str, Any] = {}
        self._freezing: asyncio.Task[None] | None = None

    def done(self) -> None:
        self.run_file.unlink(missing_ok=True)

    def running(self) -> None:
        from mitmproxy import ctx

        servers = ctx.master.addons.get("proxyserver").servers
        addresses = ", ".join(
            f"{host}:{port}" for server in servers for host, port, *_ in server.listen_addrs
        )
        api = ctx.master.addons.get("localapi")
        monitoring = ctx.master.addons.get("monitoring")
        metrics = monitoring.address if monitoring else None
        self.info = {
            "pid": os.getpid(),
            "listen": addresses.split(", "),
            "api": api.address if api else None,
            "metrics": metrics,
        }
        self._write_run_file()
        self.runtime.spawn(self._keep_run_file(), "linkwarn-run-file")
        api_line = (
            f"  local API for the extension: {api.address} (its token is in {api.token_file})\n"
            if api and api.address
            else ""
        )
        if metrics:
            api_line += f"  metrics and health: {metrics}/metrics, /healthz, /readyz\n"
        own_host = self.runtime.settings.own_host if self.runtime.settings else ""
        print(
            f"linkwarn proxy listening on {addresses}\n"
            f"  data directory: {self.data_dir}\n"
            f"  CA certificate to trust: {self.confdir / 'mitmproxy-ca-cert.pem'} "
            f"(or http://{own_host}/ through the proxy)\n"
            f"{api_line}"
            "  press Ctrl-C to stop",
            file=self.out,
            flush=True,
        )
        self._freezing = self.runtime.spawn(self._freeze_when_loaded(), "linkwarn-gc-freeze")

    def _write_run_file(self) -> None:
        """run.json: where this proxy listens, and how it is doing now (for ``linkwarn status``).

        Counts only, never a host: TLS connections passed through and
        decrypted, the event log's queue and write error. Written whole and
        renamed into place, so a reader never sees half of it.
        """
        events = self.runtime.events
        live = {
            **self.info,
            "updated_at": time.time(),
            "connections": self.runtime.connections.as_json(),
            "events": None if events is None else events.health(),
        }
        partial = self.run_file.with_suffix(".json.partial")
        partial.write_text(json.dumps(live))
        partial.replace(self.run_file)

    async def _keep_run_file(self) -> None:
        while True:
            await asyncio.sleep(RUN_FILE_INTERVAL)
            try:
                self._write_run_file()
            except OSError:
                logger.warning("linkwarn: cannot update %s", self.run_file, exc_info=True)

    async def _freeze_when_loaded(self) -> None:
        """Once the lists are loaded, keep the collector from walking them at every full collection.

        A process-wide effect, so it is ``linkwarn run``'s to make, not the addon's:
        in someone else's mitmdump the addon leaves the collector alone.
        """
        await self.runtime.index_ready.wait()
        gc.collect()
        gc.freeze()
        if self.runtime.store is not None:
            await self.runtime.store.release_memory()
        _trim_heap()


M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter


def _fix_mmap_threshold() -> None:
    """Keep large allocations in their own mappings, handed back whole when freed.

    glibc raises its mmap threshold each time a large block is freed, so the
    megabyte buffers of loading the lists (the prefixes read from SQLite, a
    feed's pieces) land in the heap afterwards, fragment it and stay resident:
    measured, 20 MB of 5M entries' load kept. A fixed threshold (glibc's
    default, 128 KiB) stops that.
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").mallopt(M_MMAP_THRESHOLD, 128 * 1024)


def _trim_heap() -> None:
    """Hand the memory freed after loading back to the system (glibc keeps it otherwise)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def mitmproxy_addons() -> list[Any]:
    """The part of mitmproxy that ``linkwarn run`` is: a proxy, not mitmdump's toolbox.

    mitmproxy hands every event to every addon in turn, about twelve events for
    each connection, so each addon loaded costs every connection, passed-through
    ones included. ``linkwarn run`` loads the proxy core (options, listening,
    layer choice, TLS, scripts, DNS), the safety nets (``block_global``,
    ``proxyauth``, upstream proxy credentials, h2c refusal, exiting on a startup
    error), and leaves out mitmdump's tools: replay, saving and HAR export,
    header/body rewriting, map local/remote, sticky cookies, anticache and
    anticompression, the mitm.it onboarding app (linkwarn's own origin serves
    its CA) and a browser launcher. For any of those, load the addon into mitmdump
    (``mitmdump -s proxy_addon/addon.py``) instead.
    """
    from mitmproxy.addons import (
        block,
        core,
        disable_h2c,
        dns_resolver,
        errorcheck,
        next_layer,
        proxyauth,
        proxyserver,
        script,
        tlsconfig,
        upstream_auth,
    )

    return [
        core.Core(),
        block.Block(),
        disable_h2c.DisableH2C(),
        proxyauth.ProxyAuth(),
        proxyserver.Proxyserver(),
        script.ScriptLoader(),
        dns_resolver.DnsResolver(),
        next_layer.NextLayer(),
        tlsconfig.TlsConfig(),
        upstream_auth.UpstreamAuth(),
        errorcheck.ErrorCheck(),
    ]


async def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from mitmproxy import exceptions, options
    from mitmproxy.master import Master

    from proxy_addon.api import LocalApi
    from proxy_addon.health import Monitoring
    from proxy_addon.interceptor import Linkwarn
    from proxy_addon.runtime import Runtime

    # linkwarn's own lines (lists loaded, warnings shown) at INFO; mitmproxy's
    # per-connection chatter only from WARNING up, as with mitmdump -q.
    _fix_mmap_threshold()
    logging.getLogger().setLevel(logging.INFO)
    logging.getLogger("mitmproxy").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per sync is ours to write
    data_dir: Path = args.data_dir or default_data_dir()
    confdir: Path = args.confdir or data_dir / "mitmproxy"
    await asyncio.to_thread(confdir.mkdir, mode=0o700, parents=True, exist_ok=True)
    opts = options.Options(listen_host=args.listen_host, listen_port=args.listen_port, confdir=str(confdir))
    master = Master(opts, with_termlog=True)
    master.addons.add(*mitmproxy_addons())
    runtime = Runtime()
    master.addons.add(
        Linkwarn(runtime), LocalApi(runtime), Monitoring(runtime), _Banner(out, data_dir, confdir, runtime)
    )
    updates: dict[str, Any] = {
        "connection_strategy": "lazy",
        **run_updates(args),
        "linkwarn_data_dir": str(data_dir),
        "linkwarn_feeds": pair_feeds(args.feed, args.feed_key),
    }
    if args.pac_direct:
        updates["linkwarn_pac_direct"] = args.pac_direct
    if args.upstream:
        updates["mode"] = [f"upstream:{args.upstream}"]
    if args.ignore_hosts:
        updates["ignore_hosts"] = args.ignore_hosts
    if args.script:
        updates["scripts"] = args.script
    try:
        opts.update(**updates)
        opts.set(*args.set)
    except exceptions.OptionsError as exc:
        print(f"linkwarn run: error: {exc}", file=err)
        return 2

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, master.shutdown)
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    await master.run()
    return 0
