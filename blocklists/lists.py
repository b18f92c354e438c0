"""Read list files into entries: domains, hosts files, adblock rules, URLs, CSV, JSON.

A line that cannot be read is reported as a `Problem` with its file and line
number and skipped; the rest of the list loads. Entries that would list a
public suffix or a whole shared platform are refused unless forced; duplicates
and conflicting actions are reported (of two conflicting lines, the action
that would win at match time is kept, so a list means the same loaded or not).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from .canonical import MAX_HOSTS, MAX_PATH_PREFIXES, registrable_domain
from .entry import Action, Entry, expression_for, key_of, parse_time
from .errors import InvalidURL, ListError

__all__ = [
    "SHARED_PLATFORMS",
    "Defaults",
    "ListFormat",
    "ParsedList",
    "Problem",
    "detect_format",
    "lint_expression",
    "parse_list",
    "read_list",
]


class ListFormat(StrEnum):
    AUTO = "auto"
    DOMAINS = "domains"  # one host per line
    HOSTS = "hosts"  # "0.0.0.0 host host ..."
    ADBLOCK = "adblock"  # "||host^", "@@||host^", "|https://host/path|"
    URLS = "urls"  # one URL per line; ending in "/" lists a prefix
    CSV = "csv"  # a header row naming the columns
    JSON = "json"  # a list of objects or strings, or {"entries": [...]}


# Registrable domains that host many unrelated people's content but are not in
# the Public Suffix List. Listing one whole would cut everyone off from it; list
# the leaked page or path on it instead. (Platforms in the list's private
# section, such as blogspot.com or github.io, are refused as public suffixes.)
SHARED_PLATFORMS = frozenset(
    {
        "1drv.ms", "4shared.com", "archive.org", "bit.ly", "box.com", "discord.com",
        "discordapp.com", "docs.google.com", "drive.google.com", "dropbox.com",
        "facebook.com", "github.com", "gitlab.com", "google.com", "icloud.com",
        "imgur.com", "instagram.com", "linkedin.com", "live.com", "mediafire.com",
        "medium.com", "mega.nz", "microsoft.com", "onedrive.com", "pastebin.com",
        "reddit.com", "scribd.com", "sharepoint.com", "slack.com", "t.co", "t.me",
        "telegram.org", "tiktok.com", "tinyurl.com", "tumblr.com", "twitter.com",
        "vimeo.com", "wetransfer.com", "wikipedia.org", "wordpress.com", "x.com",
        "yahoo.com", "youtube.com",
    }
)  # fmt: skip

TARGET_COLUMNS = ("url", "domain", "host", "expression", "target")
HASH_COLUMNS = ("sha256", "hash")
_HOSTS_SKIP = frozenset(
    {"localhost", "localhost.localdomain", "local", "broadcasthost", "ip6-localhost",
     "ip6-loopback", "ip6-localnet", "ip6-mcastprefix", "ip6-allnodes", "ip6-allrouters",
     "0.0.0.0"}  # noqa: S104 - a name to skip, not an address to bind
)  # fmt: skip
_IPV4 = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
_HOSTNAME = re.compile(r"[a-z0-9_\-]+(?:\.[a-z0-9_\-]+)*\.?", re.IGNORECASE)
_ADBLOCK_OPTIONS = re.compile(r"\$([a-z0-9\-_,=~|.]+)$", re.IGNORECASE)
_ADBLOCK_HARMLESS_OPTIONS = frozenset({"important", "document", "doc", "all", "popup"})
_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class Problem:
    """Something wrong with one line (or JSON item) of a list."""

    source: str
    line: int  # 1-based line, or item number in a JSON list; 0 for the whole file
    kind: str  # malformed, unsupported, public-suffix, shared-platform, duplicate, conflict, narrow
    message: str
    skipped: bool = True  # False for warnings about a line that was still loaded

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        return f"{where}: {'skipped' if self.skipped else 'warning'}: {self.message}"


@dataclass(frozen=True, slots=True)
class Defaults:
    """Metadata for lines that do not carry their own."""

    action: Action = Action.BLOCK
    reason: str = ""
    category: str = ""
    incident: str = ""
    expires_at: int | None = None
    added_at: int | None = None


@dataclass(frozen=True, slots=True)
class ParsedList:
    source: str
    format: ListFormat
    entries: tuple[Entry, ...]
    problems: tuple[Problem, ...]
    lines: int

    def count(self, kind: str) -> int:
        return sum(1 for problem in self.problems if problem.kind == kind)


def lint_expression(expression: str) -> list[tuple[str, str, bool]]:
    """What is wrong with listing *expression*: (kind, message, refuse) triples."""
    host, _, rest = expression.partition("/")
    path = "/" + rest
    if host.startswith("[") or _IPV4.fullmatch(host):
        return []
    findings: list[tuple[str, str, bool]] = []
    registrable = registrable_domain(host)
    if not registrable:
        findings.append(
            (
                "public-suffix",
                f"{host} is a public suffix: it would match every site under it",
                True,
            )
        )
        return findings
    if path == "/" and registrable in SHARED_PLATFORMS and host in (registrable, "www." + registrable):
        findings.append(
            ("shared-platform",
             f"{host} is a whole shared platform: list the leaked pages on it instead", True)
        )  # fmt: skip
    depth = host.count(".") - registrable.count(".")
    if depth > MAX_HOSTS - 2:
        findings.append(
            ("narrow", f"matches only the host {host} itself, not its subdomains: lookups go at "
             f"most {MAX_HOSTS - 2} labels below {registrable}", False)
        )  # fmt: skip
    if path.endswith("/") and path.count("/") - 1 > MAX_PATH_PREFIXES - 1 and "?" not in path:
        findings.append(
            ("narrow", f"matches only the path {path} itself, not what is under it: prefixes "
             f"are looked up at most {MAX_PATH_PREFIXES - 1} levels deep", False)
        )  # fmt: skip
    return findings


class _Collector:
    """Turns targets into entries, linting and de-duplicating as it goes."""

    def __init__(self, source: str, defaults: Defaults, force: bool, now: int) -> None:
        self.source = source
        self.defaults = defaults
        self.force = force
        self.now = now
        self.entries: dict[bytes, tuple[Entry, int]] = {}
        self.problems: list[Problem] = []

    def problem(self, line: int, kind: str, message: str, skipped: bool = True) -> None:
        self.problems.append(Problem(self.source, line, kind, message, skipped))

    def add_target(self, line: int, target: str, **overrides: object) -> None:
        try:
            expression = expression_for(target)
        except InvalidURL as exc:
            self.problem(line, "malformed", f"{target!r}: {exc}")
            return
        for kind, message, refuse in lint_expression(expression):
            if refuse and not self.force:
                self.problem(line, kind, f"{message} (use --force to list it anyway)")
                return
            self.problem(line, kind, message, skipped=False)
        self._add(line, key_of(expression), expression, overrides)

    def add_hash(self, line: int, digest: str, **overrides: object) -> None:
        value = digest.strip().lower().removeprefix("sha256:")
        if not _HEX64.fullmatch(value):
            self.problem(line, "malformed", f"{digest!r} is not a SHA-256 hash (64 hex digits)")
            return
        self._add(line, bytes.fromhex(value), None, overrides)

    def _add(self, line: int, key: bytes, expression: str | None, overrides: Mapping[str, object]) -> None:
        d = self.defaults
        fields: dict[str, object] = {
            "action": d.action, "reason": d.reason, "category": d.category,
            "incident": d.incident, "expires_at": d.expires_at,
            "added_at": d.added_at if d.added_at is not None else self.now,
        }  # fmt: skip
        fields.update((k, v) for k, v in overrides.items() if v is not None and v != "")
        entry = Entry(key=key, expression=expression, source=self.source, **fields)  # type: ignore[arg-type]
        label = entry.label
        previous = self.entries.get(key)
        if previous is None:
            self.entries[key] = (entry, line)
            return
        kept, first_line = previous
        if kept.action == entry.action:
            self.problem(line, "duplicate", f"{label} is already listed on line {first_line}")
            return
        winner = entry if entry.action.priority > kept.action.priority else kept
        self.problem(
            line,
            "conflict",
            f"{label} is listed as {kept.action} on line {first_line} and as {entry.action} here;"
            f" keeping {winner.action}, which wins at equal specificity",
            skipped=winner is kept,
        )
        if winner is entry:
            self.entries[key] = (entry, line)


def _strip_comment(line: str) -> str:
    if line.lstrip().startswith("#"):
        return ""
    return re.split(r"\s#", line, maxsplit=1)[0].strip()


def _parse_domains(lines: Iterable[str], out: _Collector) -> None:
    for number, raw in enumerate(lines, 1):
        line = _strip_comment(raw)
        if not line:
            continue
        tokens = line.split()
        if len(tokens) != 1:
            out.problem(number, "malformed", f"expected one domain on the line, found {len(tokens)}")
            continue
        if "/" in tokens[0] or ":" in tokens[0] or not _HOSTNAME.fullmatch(tokens[0].removeprefix("*.")):
            out.problem(number, "malformed", f"{tokens[0]!r} is not a domain name")
            continue
        out.add_target(number, tokens[0])


def _parse_hosts(lines: Iterable[str], out: _Collector) -> None:
    for number, raw in enumerate(lines, 1):
        line = _strip_comment(raw)
        if not line:
            continue
        address, *names = line.split()
        if not (_IPV4.fullmatch(address) or ":" in address):
            out.problem(number, "malformed", f"{address!r} is not an IP address (hosts format: IP name...)")
            continue
        if not names:
            out.problem(number, "malformed", "an address with no host name")
            continue
        for name in names:
            if name.lower() in _HOSTS_SKIP:
                continue
            if not _HOSTNAME.fullmatch(name):
                out.problem(number, "malformed", f"{name!r} is not a host name")
                continue
            out.add_target(number, name)


def _parse_adblock(lines: Iterable[str], out: _Collector) -> None:
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("!") or (line.startswith("[") and line.endswith("]")):
            continue
        if re.search(r"#[@?$%]?#", line):
            out.problem(number, "unsupported", "element-hiding rules do not apply to links")
            continue
        action = None
        if line.startswith("@@"):
            action, line = Action.ALLOW, line[2:]
        options = _ADBLOCK_OPTIONS.search(line)
        if options is not None:
            names = {o.split("=")[0].lstrip("~").lower() for o in options.group(1).split(",")}
            unsupported = names - _ADBLOCK_HARMLESS_OPTIONS
            if unsupported:
                out.problem(number, "unsupported", f"rule options {sorted(unsupported)} cannot be honoured")
                continue
            line = line[: options.start()]
        if line.startswith("/") and line.endswith("/") and len(line) > 1:
            out.problem(number, "unsupported", "regular-expression rules are not supported")
            continue
        exact = line.endswith("|")
        body = line.rstrip("|").removesuffix("^")
        if line.startswith("||"):
            body = body[2:]
        elif line.startswith("|"):
            body = body[1:]
            if "://" not in body:
                out.problem(number, "malformed", "a '|' rule must start with a scheme")
                continue
        elif not _HOSTNAME.fullmatch(body):
            out.problem(number, "unsupported", "only '||host^', '|URL|' and plain host rules are supported")
            continue
        if "*" in body or "^" in body or not body:
            out.problem(number, "unsupported", "wildcards and separators inside a rule are not supported")
            continue
        _add_url_or_prefix(number, body, out, action, exact)


def _add_url_or_prefix(number: int, target: str, out: _Collector, action: Action | None, exact: bool) -> None:
    """A URL rule: ends in "/" or exact: as written; otherwise the page and the folder of that name."""
    out.add_target(number, target, action=action)
    host_end = target.find("/", target.find("://") + 3 if "://" in target else 0)
    has_path = host_end >= 0 and host_end < len(target) - 1
    if not exact and has_path and not target.endswith("/") and "?" not in target:
        # "||host/dir^" matches host/dir and host/dir/...: list the folder too.
        before = len(out.problems)
        out.add_target(number, target + "/", action=action)
        del out.problems[before:]  # the same line, already reported once


def _parse_urls(lines: Iterable[str], out: _Collector) -> None:
    for number, raw in enumerate(lines, 1):
        line = _strip_comment(raw)
        if not line:
            continue
        if len(line.split()) != 1:
            out.problem(number, "malformed", "expected one URL on the line")
            continue
        out.add_target(number, line)


def _row_overrides(row: Mapping[str, object], number: int, out: _Collector) -> dict[str, object] | None:
    overrides: dict[str, object] = {}
    action = str(row.get("action") or "").strip().lower()
    if action:
        try:
            overrides["action"] = Action(action)
        except ValueError:
            out.problem(number, "malformed", f"unknown action {action!r} (block, warn, audit or allow)")
            return None
    for name in ("reason", "category", "incident"):
        value = row.get(name)
        if value is not None and not isinstance(value, str):
            out.problem(number, "malformed", f"{name} must be text")
            return None
        if value:
            overrides[name] = value.strip()
    for column, attribute in (("expires", "expires_at"), ("added", "added_at")):
        value = row.get(column)
        if value in (None, ""):
            continue
        try:
            overrides[attribute] = parse_time(str(value)) if not isinstance(value, int) else value
        except ValueError as exc:
            out.problem(number, "malformed", f"{column}: {exc}")
            return None
    return overrides


def _add_row(row: Mapping[str, object], number: int, out: _Collector) -> None:
    overrides = _row_overrides(row, number, out)
    if overrides is None:
        return
    for column in TARGET_COLUMNS:
        value = row.get(column)
        if value:
            if not isinstance(value, str):
                out.problem(number, "malformed", f"{column} must be text")
                return
            out.add_target(number, value, **overrides)
            return
    for column in HASH_COLUMNS:
        value = row.get(column)
        if value and isinstance(value, str):
            out.add_hash(number, value, **overrides)
            return
    out.problem(number, "malformed", f"no target: fill one of {', '.join(TARGET_COLUMNS + HASH_COLUMNS)}")


def _parse_csv(lines: Iterable[str], out: _Collector) -> None:
    reader = csv.reader(lines)
    header: list[str] | None = None
    for row in reader:
        number = reader.line_num
        if not row or not any(cell.strip() for cell in row) or row[0].lstrip().startswith("#"):
            continue
        if header is None:
            header = [cell.strip().lower() for cell in row]
            if not set(header) & set(TARGET_COLUMNS + HASH_COLUMNS):
                raise ListError(
                    f"{out.source}:{number}: the CSV header names no target column "
                    f"(one of {', '.join(TARGET_COLUMNS + HASH_COLUMNS)})"
                )
            continue
        if len(row) > len(header):
            out.problem(number, "malformed", f"{len(row)} fields, but the header has {len(header)}")
            continue
        _add_row(dict(zip(header, row, strict=False)), number, out)


def _parse_json(text: str, out: _Collector) -> None:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ListError(f"{out.source}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    items = document.get("entries") if isinstance(document, dict) else document
    if not isinstance(items, list):
        raise ListError(f'{out.source}: expected a JSON list of entries or {{"entries": [...]}}')
    for number, item in enumerate(items, 1):
        if isinstance(item, str):
            out.add_target(number, item)
        elif isinstance(item, dict):
            _add_row({str(k).lower(): v for k, v in item.items()}, number, out)
        else:
            out.problem(number, "malformed", f"item {number} is neither a URL string nor an object")


def detect_format(name: str, text: str) -> ListFormat:
    """Guess a list's format from its file name, then from its first lines."""
    suffix = Path(name).suffix.lower()
    if suffix == ".csv":
        return ListFormat.CSV
    if suffix in (".json", ".jsonl"):
        return ListFormat.JSON
    stripped = text.lstrip("\ufeff \t\r\n")
    if stripped.startswith("{") or (stripped.startswith("[") and not stripped.startswith("[Adblock")):
        return ListFormat.JSON
    votes = dict.fromkeys(ListFormat, 0)
    seen = 0
    for raw in stripped.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if (
            seen == 0
            and "," in line
            and {c.strip().lower() for c in line.split(",")} & set(TARGET_COLUMNS + HASH_COLUMNS)
        ):
            return ListFormat.CSV
        seen += 1
        first = line.split()[0]
        if line.startswith(("||", "@@", "!", "|http", "[Adblock")) or line.endswith("^"):
            votes[ListFormat.ADBLOCK] += 1
        elif _IPV4.fullmatch(first) or first in ("::", "::1"):
            votes[ListFormat.HOSTS] += 1
        elif "://" in line or "/" in first:
            votes[ListFormat.URLS] += 1
        else:
            votes[ListFormat.DOMAINS] += 1
        if seen >= 50:
            break
    best = max(votes.items(), key=lambda item: item[1])
    return best[0] if best[1] else ListFormat.DOMAINS


_LINE_PARSERS: dict[ListFormat, Callable[[Iterable[str], _Collector], None]] = {
    ListFormat.DOMAINS: _parse_domains,
    ListFormat.HOSTS: _parse_hosts,
    ListFormat.ADBLOCK: _parse_adblock,
    ListFormat.URLS: _parse_urls,
    ListFormat.CSV: _parse_csv,
}


def parse_list(
    text: str,
    *,
    source: str,
    fmt: ListFormat = ListFormat.AUTO,
    defaults: Defaults = Defaults(),
    force: bool = False,
    now: int = 0,
    progress: Callable[[list[str]], Iterable[str]] | None = None,
) -> ParsedList:
    """Parse a whole list. Raises `ListError` only when nothing of it can be read."""
    if fmt is ListFormat.AUTO:
        fmt = detect_format(source, text)
    out = _Collector(source, defaults, force, now)
    lines = text.splitlines()
    if fmt is ListFormat.JSON:
        _parse_json(text, out)
    else:
        _LINE_PARSERS[fmt](progress(lines) if progress else lines, out)
    entries = tuple(entry for entry, _ in out.entries.values())
    return ParsedList(source, fmt, entries, tuple(out.problems), len(lines))


def read_list(path: Path, **options: object) -> ParsedList:
    """Read and parse a list file; see `parse_list` for the options."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ListError(f"{path}: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ListError(f"{path}: not UTF-8 text (bad byte at offset {exc.start})") from None
    if "\x00" in text:
        raise ListError(f"{path}: not a text file")
    options.setdefault("source", path.name)
    return parse_list(text, **options)  # type: ignore[arg-type]
