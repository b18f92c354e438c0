"""The ``linkwarn`` command: manage lists, check URLs, run the proxy.

Each subcommand is a thin shell over `blocklists` (and, for ``run``, the
addon). Exit status: 0 success, 1 a match (``check``) or nothing to do,
2 bad input.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, TextIO

from blocklists import (
    Action,
    Checker,
    Defaults,
    InvalidURL,
    LinkwarnError,
    ListFormat,
    Store,
    Verdict,
    default_data_dir,
    expression_for,
    key_of,
    read_list,
)
from blocklists.entry import Entry, parse_duration, parse_time
from blocklists.lists import ParsedList, ProblemKind
from proxy_addon.arguments import data_dir_parent, duration, list_reading_parent
from proxy_addon.feedcli import add_feed_commands, cmd_feed, cmd_status, cmd_sync
from proxy_addon.fleetcli import FLEET_COMMANDS, add_fleet_commands
from proxy_addon.runner import add_run_arguments

EXIT_OK, EXIT_MATCH, EXIT_USAGE = 0, 1, 2
LAST_SECOND = 253_402_300_800  # 10000-01-01
PROGRESS_MIN_LINES = 20_000
MAX_PROBLEMS_SHOWN = 20


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """Text from outside (a report comment, a list's reason) made safe for a terminal.

    Control characters, escape sequences above all, are shown as ``\\xNN``
    instead of being sent to the terminal that IT reads events in.
    """
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


class UsageError(Exception):
    """A bad argument: printed as ``linkwarn: error: ...`` with exit status 2."""


def _expiry(text: str) -> int:
    """--expires takes a duration from now (30d) or a time (2026-12-31), before the year 10000."""
    try:
        when = int(time.time()) + parse_duration(text)
    except ValueError:
        try:
            when = parse_time(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is neither a duration (30d, 12h) nor a time (2026-12-31)"
            ) from None
    if when >= LAST_SECOND:
        raise argparse.ArgumentTypeError(f"{text!r} is after the year 9999")
    return when


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="linkwarn",
        description="Warn people before they open, or pass on, links to leak mirrors.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = data_dir_parent()
    reading = list_reading_parent()

    imp = commands.add_parser(
        "import",
        parents=[common, reading],
        help="add list files to the local store",
        description="Read list files (domains, hosts, adblock, URLs, CSV, JSON, JSON lines) into the "
        "store. Bad lines are reported with file and line number and skipped; the rest loads. A file "
        "of which more than half the lines are rejected is not imported (exit status 2).",
    )
    imp.add_argument("files", nargs="+", type=Path, metavar="FILE")
    imp.add_argument("--reason", default="", help="reason shown to people, for lines without one")
    imp.add_argument("--category", default="", help="category, for lines without one")
    imp.add_argument("--incident", default="", help="incident name, for lines without one")
    imp.add_argument(
        "--expires",
        type=_expiry,
        default=None,
        metavar="WHEN",
        help="expiry for lines without one: a duration (30d) or a time (2026-12-31)",
    )
    imp.add_argument(
        "--source", default=None, help="the source name to file entries under (default: the file name)"
    )
    imp.add_argument(
        "--replace", action="store_true", help="remove the source's entries that the file no longer lists"
    )
    imp.add_argument(
        "--force", action="store_true", help="list public suffixes and whole shared platforms anyway"
    )
    imp.add_argument(
        "--require-reason",
        action="store_true",
        help="people must type a reason to proceed past a warning, for lines that do not say",
    )
    imp.add_argument(
        "--verbose",
        action="store_true",
        help="list every problem, including each rule that does not apply to a URL list (cosmetic, ...)",
    )

    chk = commands.add_parser(
        "check",
        parents=[common],
        help="check URLs and show why they match",
        description="Show each URL's verdict and trace. Exit status: 0 nothing matched, "
        "1 an entry matched (any action, allow included), 2 bad input.",
    )
    chk.add_argument("urls", nargs="+", metavar="URL")
    chk.add_argument("--json", action="store_true", help="one JSON object per URL per line")

    lst = commands.add_parser("list", parents=[common], help="show sources or entries")
    lst.add_argument("--source", default=None, help="only this source's entries")
    lst.add_argument("--entries", action="store_true", help="show entries, not just sources")
    lst.add_argument("--limit", type=int, default=None, help="show at most this many entries")
    lst.add_argument("--json", action="store_true", help="JSON lines instead of a table")

    rem = commands.add_parser(
        "remove",
        parents=[common],
        help="remove entries or a whole source",
        description="Remove entries by domain, URL or sha256:HASH, or a whole source.",
    )
    rem.add_argument("targets", nargs="*", metavar="TARGET")
    rem.add_argument("--source", default=None, help="only from this source")
    rem.add_argument("--all", action="store_true", help="remove the whole --source")

    run = commands.add_parser(
        "run",
        parents=[common],
        help="run the proxy",
        description="Run the proxy (mitmproxy with the linkwarn addon) in this process.",
    )
    add_run_arguments(run)

    add_feed_commands(commands, common, reading)

    evt = commands.add_parser("events", parents=[common], help="show warnings, blocks, proceeds and reports")
    evt.add_argument(
        "--since", type=duration, default=None, metavar="DURATION", help="only the last 15m, 24h, 7d..."
    )
    evt.add_argument(
        "--kind", default=None, help="only this kind: warning, block, proceed, audit, report, refused"
    )
    evt.add_argument("--limit", type=int, default=1000, help="at most this many, the newest (default: 1000)")
    evt.add_argument("--json", action="store_true", help="one JSON object per line")
    add_fleet_commands(commands, common)
    return parser


def _store(args: argparse.Namespace) -> Store:
    return Store.in_dir(args.data_dir or default_data_dir())


def _progress(path: Path, out: TextIO) -> Callable[[list[str]], Any]:
    def wrap(lines: list[str]) -> Any:
        if len(lines) < PROGRESS_MIN_LINES:
            return lines
        from tqdm import tqdm

        return tqdm(lines, desc=path.name, unit=" lines", unit_scale=True, file=out, disable=None)

    return wrap


async def cmd_import(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    defaults = Defaults(
        action=Action(args.action),
        reason=args.reason,
        category=args.category,
        incident=args.incident,
        expires_at=args.expires,
        require_reason=args.require_reason,
    )
    status = EXIT_OK
    async with _store(args) as store:
        for path in args.files:
            try:
                parsed = read_list(
                    path,
                    source=args.source or path.name,
                    fmt=ListFormat(args.format),
                    defaults=defaults,
                    force=args.force,
                    now=int(time.time()),
                    progress=_progress(path, err),
                )
            except LinkwarnError as exc:
                print(f"linkwarn: error: {exc}", file=err)
                status = EXIT_USAGE
                continue
            _print_problems(path, parsed, args.verbose, err)
            if parsed.mostly_rejected:
                print(
                    f"linkwarn: error: {path}: {parsed.rejected} of {parsed.content_lines} lines rejected, "
                    f"read as a {parsed.format} list ({parsed.why}); nothing imported from it. "
                    "If it is another format, name it with --format.",
                    file=err,
                )
                status = EXIT_USAGE
                continue
            result = await store.import_rows(parsed.source, parsed.rows, replace=args.replace)
            skipped = parsed.skipped_by_label()
            why = ", ".join(f"{n} {label}" for label, n in skipped.most_common())
            approximate = parsed.count(ProblemKind.APPROXIMATE)
            print(
                f"{path}: {parsed.format} list, {parsed.lines} lines -> source {parsed.source!r}: "
                f"{result.added} added, {result.updated} updated, {result.unchanged} unchanged, "
                f"{result.removed} removed, {sum(skipped.values())} skipped"
                + (f" ({why})" if why else "")
                + (f", {approximate} loaded approximately" if approximate else ""),
                file=out,
            )
    return status


def _print_problems(path: Path, parsed: ParsedList, verbose: bool, err: TextIO) -> None:
    """Each problem, up to MAX_PROBLEMS_SHOWN of them; rules that merely do not apply only with --verbose."""
    shown = 0
    hidden = 0
    for problem in parsed.problems:
        if problem.quiet and not verbose:
            continue
        if shown < MAX_PROBLEMS_SHOWN or verbose:
            print(printable(str(problem)), file=err)
            shown += 1
        else:
            hidden += 1
    if hidden:
        print(f"{path}: ... and {hidden} more (--verbose lists them all)", file=err)


def verdict_json(verdict: Verdict) -> dict[str, Any]:
    """The JSON form of a verdict, shared by ``check --json`` and the local API."""
    entry = verdict.entry
    return {
        "url": verdict.url,
        "canonical": verdict.canonical.url,
        "partial": verdict.canonical.partial,
        "expressions": list(verdict.expressions),
        "action": None if verdict.action is None else str(verdict.action),
        "entry": None if entry is None else entry_json(entry),
        "matched_expression": None if verdict.winner is None else verdict.winner.expression,
        "matches": [
            {"winner": number == 0, "matched_expression": m.expression, **entry_json(m.entry)}
            for number, m in enumerate(verdict.matches)
        ],
        "expired": [{"matched_expression": m.expression, **entry_json(m.entry)} for m in verdict.expired],
        "others": [
            {"expression": m.expression, "action": str(m.entry.action), "source": m.entry.source}
            for m in verdict.matches[1:]
        ],
        "explanation": verdict.explain(),
        "steps": list(verdict.canonical.steps),
    }


def entry_json(entry: Entry) -> dict[str, Any]:
    return {
        "expression": entry.expression,
        "key": entry.key.hex(),
        "action": str(entry.action),
        "reason": entry.reason,
        "category": entry.category,
        "incident": entry.incident,
        "source": entry.source,
        "added_at": entry.added_at,
        "expires_at": entry.expires_at,
        "require_reason": entry.require_reason,
    }


def _print_trace(verdict: Verdict, out: TextIO) -> None:
    print(f"URL:        {verdict.url}", file=out)
    partial = (
        "  (partial: only the host and a path prefix could be read)" if verdict.canonical.partial else ""
    )
    print(f"canonical:  {verdict.canonical.url}{partial}", file=out)
    for step in verdict.canonical.steps:
        print(f"  - {step}", file=out)
    hit = {m.expression for m in verdict.matches} | {m.expression for m in verdict.expired}
    print(f"expressions ({len(verdict.expressions)}):", file=out)
    for expression in verdict.expressions:
        print(f"  {'*' if expression in hit else ' '} {expression}", file=out)
    if verdict.entry is None:
        print("verdict:    no entry matches", file=out)
    else:
        entry = verdict.entry
        print(
            f"verdict:    {entry.action.upper()} by {entry.label} from source {entry.source!r}",
            file=out,
        )
        for label, value in (
            ("reason", entry.reason),
            ("category", entry.category),
            ("incident", entry.incident),
        ):
            if value:
                print(f"{label + ':':<11} {printable(value)}", file=out)
        if entry.require_reason:
            print("proceeding: needs a typed reason", file=out)
    listed = [(m, m is verdict.winner) for m in verdict.matches] + [(m, False) for m in verdict.expired]
    if listed:
        print(f"entries that match ({len(verdict.matches)}, * the winner):", file=out)
    for match, winner in listed:
        entry = match.entry
        notes = [f"list {entry.source!r}"]
        if match.expression != entry.label:
            notes.append(f"as {match.expression}")
        if not entry.is_live(time.time()):
            notes.append("expired")
        if entry.require_reason:
            notes.append("reason required to proceed")
        if entry.reason:
            notes.append(f"reason: {entry.reason}")
        line = f"  {'*' if winner else ' '} {entry.action:<6} {entry.label}  ({'; '.join(notes)})"
        print(printable(line), file=out)
    for line in verdict.explain():
        print(f"  {line}", file=out)


async def cmd_check(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    status = EXIT_OK
    async with _store(args) as store:
        checker = Checker(store)
        await checker.reload()
        for number, url in enumerate(args.urls):
            try:
                verdict = await checker.check(url)
            except InvalidURL as exc:
                if args.json:
                    print(json.dumps({"url": url, "error": str(exc)}), file=out)
                else:
                    print(f"linkwarn: error: {url!r}: {exc}", file=err)
                status = EXIT_USAGE
                continue
            if args.json:
                print(json.dumps(verdict_json(verdict)), file=out)
            else:
                if number:
                    print(file=out)
                _print_trace(verdict, out)
            if verdict.entry is not None and status == EXIT_OK:
                status = EXIT_MATCH
    return status


async def cmd_list(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    async with _store(args) as store:
        if not (args.entries or args.source):
            sources = await store.sources()
            for info in sources:
                if args.json:
                    print(
                        json.dumps(
                            {
                                "name": info.name,
                                "kind": info.kind,
                                "entries": info.entries,
                                "updated_at": info.updated_at,
                            }
                        ),
                        file=out,
                    )
                else:
                    print(f"{info.name:<30} {info.kind:<6} {info.entries:>9} entries", file=out)
            if not sources and not args.json:
                print("no lists yet: add one with 'linkwarn import FILE'", file=out)
            return EXIT_OK
        known = {info.name for info in await store.sources()}
        if args.source is not None and args.source not in known:
            raise UsageError(f"no source named {args.source!r}; known: {', '.join(sorted(known)) or 'none'}")
        for entry in await store.entries(args.source, args.limit):
            if args.json:
                print(json.dumps(entry_json(entry)), file=out)
            else:
                line = f"{entry.action:<6} {entry.label:<50} {entry.source:<20} {entry.reason}"
                if entry.require_reason:
                    line += " [a typed reason to proceed]"
                print(printable(line), file=out)
    return EXIT_OK


async def cmd_remove(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if args.all:
        if args.source is None or args.targets:
            raise UsageError("--all removes a whole source: give --source NAME and no targets")
    elif not args.targets:
        raise UsageError("name what to remove: domains, URLs or sha256:HASH, or --source NAME --all")
    keys: list[tuple[str, bytes]] = []
    for target in args.targets:
        if target.startswith("sha256:"):
            try:
                keys.append((target, bytes.fromhex(target[7:])))
            except ValueError:
                raise UsageError(f"{target!r} is not sha256: and 64 hex digits") from None
            continue
        try:
            expression = expression_for(target)
        except InvalidURL as exc:
            raise UsageError(f"{target!r}: {exc}") from None
        keys.append((expression, key_of(expression)))
    async with _store(args) as store:
        if args.all:
            known = {info.name for info in await store.sources()}
            if args.source not in known:
                raise UsageError(f"no source named {args.source!r}")
            removed = await store.remove_source(args.source)
            print(f"removed source {args.source!r} and its {removed} entries", file=out)
            return EXIT_OK
        removed = await store.remove([key for _, key in keys], args.source)
    print(f"removed {removed} entries", file=out)
    if removed == 0:
        print(f"linkwarn: nothing listed as {', '.join(label for label, _ in keys)}", file=err)
        return EXIT_MATCH
    return EXIT_OK


async def cmd_events(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    since = time.time() - args.since if args.since is not None else None
    async with _store(args) as store:
        events = await store.events(since=since, kind=args.kind, limit=args.limit)
    for event in events:
        if args.json:
            print(json.dumps(event.to_json()), file=out)
            continue
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(event.at))
        label = event.expression or (f"sha256:{event.entry_key.hex()}" if event.entry_key else "-")
        line = (
            f"{stamp}  {event.kind:<8} {event.action or '-':<6} {event.client:<22} {label}  {event.url or ''}"
        )
        if event.detail:
            line += f"  [{event.detail}]"
        print(printable(line), file=out)
    if not events and not args.json:
        print("no events", file=out)
    return EXIT_OK


async def cmd_run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from proxy_addon.runner import run  # imports mitmproxy: only for this command

    return await run(args, out, err)


COMMANDS: dict[str, Callable[[argparse.Namespace, TextIO, TextIO], Coroutine[Any, Any, int]]] = {
    "import": cmd_import,
    "check": cmd_check,
    "list": cmd_list,
    "remove": cmd_remove,
    "events": cmd_events,
    "run": cmd_run,
    **FLEET_COMMANDS,
    "feed": cmd_feed,
    "sync": lambda args, out, err: _with_store(cmd_sync, args, out, err),
    "status": lambda args, out, err: _with_store(
        cmd_status, args, out, err, args.data_dir or default_data_dir()
    ),
}


async def _with_store(command: Any, args: argparse.Namespace, out: TextIO, err: TextIO, *extra: Any) -> int:
    async with _store(args) as store:
        result: int = await command(args, out, err, store, *extra)
        return result


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed the problem
        return int(exc.code or 0) if exc.code in (0, None) else EXIT_USAGE
    try:
        return asyncio.run(COMMANDS[args.command](args, out, err))
    except UsageError as exc:
        print(f"linkwarn {args.command}: error: {exc}", file=err)
        return EXIT_USAGE
    except LinkwarnError as exc:
        print(f"linkwarn: error: {exc}", file=err)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
