"""``linkwarn feed keygen|publish|serve``, ``linkwarn sync`` and ``linkwarn status``."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any, TextIO

import httpx

from blocklists import Action, Defaults, Entry, ListFormat, Store, read_list
from blocklists.feed import FeedError, generate_keys, load_private_key, publish, read_self_tests
from blocklists.lists import ProblemKind
from blocklists.sync import FeedSyncer, pair_feeds, parse_subscription
from proxy_addon.arguments import duration
from proxy_addon.status import status_report

__all__ = ["add_feed_commands", "cmd_feed", "cmd_status", "cmd_sync"]

LINT_ERRORS = frozenset(
    {
        ProblemKind.PUBLIC_SUFFIX,
        ProblemKind.SHARED_PLATFORM,
        ProblemKind.DUPLICATE,
        ProblemKind.CONFLICT,
        ProblemKind.MALFORMED,
        ProblemKind.UNSUPPORTED,
        ProblemKind.NOT_APPLICABLE,
    }
)


def add_feed_commands(
    commands: Any, common: argparse.ArgumentParser, reading: argparse.ArgumentParser
) -> None:
    feed = commands.add_parser("feed", help="publish or serve a signed feed (for IT)")
    actions = feed.add_subparsers(dest="feed_command", required=True, metavar="ACTION")

    keygen = actions.add_parser("keygen", help="make the Ed25519 key pair that signs a feed")
    keygen.add_argument(
        "--out", type=Path, required=True, help="directory for feed.key (private) and feed.pub"
    )

    pub = actions.add_parser(
        "publish",
        parents=[reading],
        help="write a new signed version of a feed from source lists",
        description="Lint the sources, then write a signed manifest, a snapshot and a diff from the "
        "previous version into FEEDDIR. Unchanged sources make no new version (the same one is "
        "re-signed with a later expiry).",
    )
    pub.add_argument("sources", nargs="+", type=Path, metavar="SOURCE")
    pub.add_argument("--key", type=Path, required=True, help="the private key from 'feed keygen'")
    pub.add_argument("--out", type=Path, required=True, metavar="FEEDDIR", help="the feed directory")
    pub.add_argument(
        "--hashed", action="store_true", help="publish only SHA-256 keys: no address in plaintext"
    )
    pub.add_argument(
        "--expires",
        type=duration,
        default=7 * 86400,
        metavar="DURATION",
        help="how long the version is fresh (default: 7d)",
    )
    pub.add_argument(
        "--min-interval",
        type=duration,
        default=300,
        metavar="DURATION",
        help="the shortest poll interval proxies may use (default: 5m)",
    )
    pub.add_argument(
        "--self-test",
        type=Path,
        default=None,
        metavar="FILE",
        help="lines 'match URL' / 'no-match URL' that proxies check before using a version",
    )
    pub.add_argument("--force", action="store_true", help="publish despite lint errors")

    serve = actions.add_parser("serve", help="serve a feed directory over HTTP (demos, tests)")
    serve.add_argument("directory", type=Path, metavar="FEEDDIR")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8088)

    sync = commands.add_parser("sync", parents=[common], help="fetch signed feeds into the store")
    sync.add_argument("--once", action="store_true", required=True, help="sync once and exit")
    sync.add_argument("--feed", action="append", default=[], metavar="URL", required=True)
    sync.add_argument(
        "--feed-key",
        action="append",
        default=[],
        metavar="PUBKEY",
        required=True,
        help="the publisher's public key (ed25519:... or a file); one, or one per --feed",
    )

    status = commands.add_parser("status", parents=[common], help="feeds, the index and the running proxy")
    status.add_argument("--json", action="store_true")


async def cmd_feed(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if args.feed_command == "keygen":
        return _keygen(args.out, out)
    if args.feed_command == "publish":
        return _publish(args, out, err)
    return await _serve(args, out)


def _keygen(directory: Path, out: TextIO) -> int:
    private, public = directory / "feed.key", directory / "feed.pub"
    if private.exists() or public.exists():
        raise FeedError(f"{directory} already holds a key pair: not overwriting it")
    directory.mkdir(parents=True, exist_ok=True)
    pem, text = generate_keys()
    descriptor = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(pem)
    public.write_text(text + "\n")
    print(f"private key: {private} (mode 0600; keep it with IT, never share it)", file=out)
    print(f"public key:  {public}\n  {text}\n  give it to proxies as --feed-key", file=out)
    return 0


def _publish(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    key = load_private_key(args.key)
    now = int(time.time())
    entries: dict[bytes, tuple[Entry, str]] = {}
    errors: list[str] = []
    for path in args.sources:
        parsed = read_list(
            path,
            fmt=ListFormat(args.format),
            defaults=Defaults(action=Action(args.action)),
            force=args.force,
            now=now,
        )
        if parsed.mostly_rejected:
            errors.append(
                f"{path.name}: {parsed.rejected} of {parsed.content_lines} lines rejected, read as a "
                f"{parsed.format} list ({parsed.why}): wrong format? name it with --format"
            )
        errors.extend(str(p) for p in parsed.problems if p.kind in LINT_ERRORS)
        for entry in parsed.entries:
            if entry.key in entries:
                kept, where = entries[entry.key]
                kind = "duplicate" if kept.action == entry.action else "conflict"
                errors.append(f"{path.name}: {kind}: {entry.label} is also listed in {where}")
                if entry.action.priority <= kept.action.priority:
                    continue
            entries[entry.key] = (entry, path.name)
    for line in errors:
        print(line, file=err)
    if errors and not args.force:
        advice = "nothing published (--force to publish anyway)"
        print(f"linkwarn feed publish: {len(errors)} lint errors; {advice}", file=err)
        return 2
    result = publish(
        [entry for entry, _ in entries.values()],
        args.out,
        key,
        now=now,
        hashed=args.hashed,
        expires_in=args.expires,
        min_interval=args.min_interval,
        self_tests=read_self_tests(args.self_test) if args.self_test else (),
    )
    if result.new_version:
        print(
            f"{args.out}: version {result.version}, {result.entries} entries "
            f"({result.added} added or changed, {result.removed} removed)",
            file=out,
        )
    else:
        print(
            f"{args.out}: unchanged, version {result.version} re-signed until "
            f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime(result.manifest.expires_at))} UTC",
            file=out,
        )
    return 0


async def _serve(args: argparse.Namespace, out: TextIO) -> int:
    from blocklists.feedserver import make_server

    if not (args.directory / "manifest.json").is_file():
        raise FeedError(f"{args.directory} has no manifest.json: publish a feed there first")
    server = make_server(args.directory, args.host, args.port)
    print(
        f"serving {args.directory} at http://{args.host}:{server.server_port}/ (Ctrl-C to stop)",
        file=out,
        flush=True,
    )
    try:
        await asyncio.to_thread(server.serve_forever)
    finally:
        server.server_close()
    return 0


async def cmd_sync(args: argparse.Namespace, out: TextIO, err: TextIO, store: Store) -> int:
    from tqdm import tqdm

    subscriptions = [parse_subscription(text) for text in pair_feeds(args.feed, args.feed_key)]
    bars: list[Any] = []

    def progress(name: str, size: int) -> Any:
        bar = tqdm(total=size, desc=name, unit="B", unit_scale=True, file=err, disable=None, leave=False)
        bars.append(bar)
        return bar.update

    status = 0
    async with httpx.AsyncClient(timeout=60, follow_redirects=True) as client:
        for subscription in subscriptions:
            outcome = await FeedSyncer(store, subscription, client).sync_once(progress)
            for bar in bars:
                bar.close()
            if outcome.error is not None:
                print(
                    f"{subscription.url}: FAILED, kept version {outcome.version}: {outcome.error}", file=err
                )
                status = 1
            else:
                stale = "; STALE: past its expiry" if outcome.stale else ""
                print(
                    f"{subscription.url}: {outcome.result}, version {outcome.version}, "
                    f"{outcome.entries} entries{stale}",
                    file=out,
                )
    return status


async def _live_figures(proxy: dict[str, Any]) -> dict[str, Any]:
    """The running proxy's own figures now, from its local API (run.json's may be a few seconds old,
    or stale when the disk is full): TLS connection counts and the event log's state."""
    if not proxy.get("api"):
        return {}
    try:
        async with httpx.AsyncClient(timeout=3) as client:
            live = (await client.get(f"{proxy['api']}/v1/status")).json()
    except (httpx.HTTPError, ValueError):
        return {}
    return {name: live[name] for name in ("connections", "events") if name in live}


async def cmd_status(args: argparse.Namespace, out: TextIO, err: TextIO, store: Store, data_dir: Path) -> int:
    report = await status_report(store, data_dir, time.time())
    if report["proxy"] is not None:
        report["proxy"].update(await _live_figures(report["proxy"]))
    feeds, sources, proxy = report["feeds"], report["sources"], report["proxy"]
    if args.json:
        print(json.dumps(report), file=out)
        return 0

    def when(stamp: float | None) -> str:
        return "never" if stamp is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))

    for f in report["feeds"]:
        state = {"failing": "FAILING (the last sync failed)", "stale": "STALE (past its expiry)"}.get(
            f["state"], f["state"]
        )
        if f["state"] == "failing" and f["stale"]:
            state += ", STALE (past its expiry)"
        print(f"feed {f['url']}\n  version {f['version']}, {f['entries']} entries, {state}", file=out)
        print(f"  last success {when(f['last_success'])}, last attempt {when(f['last_attempt'])}", file=out)
        if f["last_error"]:
            print(f"  last error: {f['last_error']}", file=out)
    if not feeds:
        print("no feeds synced yet", file=out)
    print(f"entries in the store: {report['index_entries']} from {len(sources)} sources", file=out)
    stored = report["store"]
    oldest = "" if stored["oldest_event"] is None else f", the oldest from {when(stored['oldest_event'])}"
    print(f"store: {stored['bytes']} bytes, {stored['events']} events{oldest}", file=out)
    if proxy:
        print(f"proxy running (pid {proxy['pid']}), listening on {', '.join(proxy['listen'])}", file=out)
        counts = proxy.get("connections")
        if counts:
            print(
                f"  TLS connections: {counts['decrypted']} decrypted, {counts['passed_through']} passed "
                f"through untouched ({counts['closed_on_list_change']} closed when the lists changed)",
                file=out,
            )
        events = proxy.get("events") or {}
        if events.get("write_error"):
            print(
                f"  EVENTS ARE NOT BEING STORED: {events['write_error']} ({events['queued']} queued, "
                f"{events['dropped']} dropped)",
                file=out,
            )
    else:
        print("proxy not running", file=out)
    return 0
