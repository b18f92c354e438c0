"""The ``linkwarn`` subcommands for running a fleet: ``pac``, ``service systemd`` and ``report``."""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TextIO

from blocklists import Store, default_data_dir
from proxy_addon.arguments import duration
from proxy_addon.pac import render_pac
from proxy_addon.report import render_html, summarize
from proxy_addon.runner import add_run_arguments
from proxy_addon.service import UnitSpec, render_unit
from proxy_addon.settings import parse_listen

__all__ = ["FLEET_COMMANDS", "add_fleet_commands"]

EXIT_OK, EXIT_USAGE = 0, 2
DIRECT_WARNING = (
    "A DIRECT host bypasses the proxy: linkwarn never sees a request to it and never checks it, whatever "
    "the lists say. List only hosts your company runs itself (intranet, the feed server), never a site "
    "people could be sent to."
)


def add_fleet_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    pac = commands.add_parser(
        "pac",
        help="print a proxy auto-config (PAC) file that sends browsers through the proxy",
        description="Print a PAC file: every request goes to --proxy, except hosts matching a --direct "
        "pattern. There is no fallback to DIRECT when the proxy is down: a browser that went direct would "
        "go unchecked. " + DIRECT_WARNING,
    )
    pac.add_argument("--proxy", required=True, metavar="HOST:PORT", help="the proxy browsers should use")
    pac.add_argument(
        "--direct",
        nargs="*",
        default=[],
        metavar="PATTERN",
        help="hosts to reach without the proxy: host.example (and its subdomains) or *.host.example. "
        "They are never checked.",
    )

    svc = commands.add_parser(
        "service",
        help="print a service definition for the proxy",
        description="Print a hardened systemd unit that runs 'linkwarn run' with the options after '--'.",
    )
    managers = svc.add_subparsers(dest="manager", required=True, metavar="MANAGER")
    systemd = managers.add_parser(
        "systemd",
        help="a systemd unit (DynamicUser or --user, ProtectSystem=strict, StateDirectory, NoNewPrivileges)",
        description="Print a systemd unit running 'linkwarn run RUN-OPTIONS'. Example: linkwarn service "
        "systemd -- --listen-host 0.0.0.0 --metrics 0.0.0.0:9808 --secret-file /etc/linkwarn/secret",
    )
    systemd.add_argument("--user", default=None, help="run as this system user (default: DynamicUser=yes)")
    systemd.add_argument(
        "--exec",
        dest="executable",
        default=None,
        metavar="PATH",
        help="the linkwarn command to run (default: the one running now)",
    )
    systemd.add_argument("run_options", nargs="*", metavar="RUN-OPTIONS", help="options for linkwarn run")

    rep = commands.add_parser(
        "report",
        parents=[common],
        help="summarize warnings, proceeds, reports and feeds over a period",
        description="Warnings and proceeds per day, the entries most hit, why people proceeded, "
        "false-positive reports, share attempts and feed freshness: as one self-contained HTML page "
        "(--html FILE), as JSON (--json), or as a short summary.",
    )
    rep.add_argument(
        "--since", type=duration, default=7 * 86400, metavar="DURATION", help="the period (default: 7d)"
    )
    rep.add_argument("--html", type=Path, default=None, metavar="FILE", help="write the page to FILE")
    rep.add_argument("--json", action="store_true", help="print the numbers as one JSON object")


async def cmd_pac(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    try:
        print(render_pac(str(parse_listen(args.proxy)), args.direct), end="", file=out)
    except ValueError as exc:
        print(f"linkwarn pac: error: {exc}", file=err)
        return EXIT_USAGE
    return EXIT_OK


def _linkwarn_command() -> str:
    found = shutil.which("linkwarn")
    if found:
        return str(Path(found).resolve())
    return str(Path(sys.executable).resolve().parent / "linkwarn")


async def cmd_service(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    check = argparse.ArgumentParser(prog="linkwarn run", add_help=False, exit_on_error=False)
    check.add_argument("--data-dir", default=None)
    add_run_arguments(check)
    try:
        check.parse_args(args.run_options)
        unit = render_unit(
            UnitSpec(args.executable or _linkwarn_command(), tuple(args.run_options), args.user)
        )
    except (argparse.ArgumentError, ValueError) as exc:
        print(f"linkwarn service: error: {exc}", file=err)
        return EXIT_USAGE
    print(unit, end="", file=out)
    return EXIT_OK


async def cmd_report(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    until = time.time()
    since = until - args.since
    async with Store.in_dir(args.data_dir or default_data_dir()) as store:
        events = await store.events(since=since)
        feeds = await store.feed_states()
    report = summarize(events, feeds, since, until)
    if args.html is not None:
        await asyncio.to_thread(args.html.write_text, render_html(report), "utf-8")
        print(f"wrote {args.html}", file=err)
    if args.json:
        print(json.dumps(report.to_json(), indent=2), file=out)
    elif args.html is None:
        t = report.totals
        print(
            f"{report.since} to {report.until}: {t['warnings_shown']} warning pages, "
            f"{t['proceeds']} proceeds, "
            f"{t['reports']} reports, {report.share_attempts} share attempts",
            file=out,
        )
        for entry in report.top_entries:
            print(f"  {entry['hits']:>6}  {entry['action']:<6} {entry['entry']}", file=out)
    return EXIT_OK


FLEET_COMMANDS: dict[str, Callable[[argparse.Namespace, TextIO, TextIO], Coroutine[Any, Any, int]]] = {
    "pac": cmd_pac,
    "service": cmd_service,
    "report": cmd_report,
}
