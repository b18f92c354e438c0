"""Read list files into entries: domains, hosts files, adblock rules, URLs, CSV, JSON, JSON lines.

Pure: text in, a `ParsedList` out (`read_list` only reads the file and
decodes it). A line that cannot be read is reported as a `Problem` with its
file and line number and skipped; the rest of the list loads. Rules that are
about something other than the address of a page (an adblock list's cosmetic
rules, rules for scripts or images, rules limited to some sites) are counted
by why, not loaded. Entries that would list a public suffix or a whole shared
platform are refused unless forced; duplicates and conflicting actions are
reported (of two conflicting lines, the action that would win at match time
is kept, so a list means the same loaded or not).

Formats are detected from the file name and a sample of the lines, and the
detection says why it chose (`Detection`). Lists are written by people, so
each format also reads what people put in it: plain host lines in adblock
lists and hosts files, URLs among domains, Unicode names (``bücher.test``,
``mirror。test``) everywhere. A list of which more than half the lines are
rejected was most likely read in the wrong format: `ParsedList.mostly_rejected`.
"""

from __future__ import annotations

import codecs
import csv
import functools
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from hashlib import sha256
from pathlib import Path

from .canonical import MAX_HOSTS, MAX_PATH_PREFIXES, _extractor, registrable_domain
from .entry import MARKER_BYTES, Action, Entry, EntryRow, expression_for, key_of, marker_of, parse_time
from .errors import InvalidURL, ListError

__all__ = [
    "SHARED_PLATFORMS",
    "Defaults",
    "Detection",
    "ListFormat",
    "ParsedList",
    "Problem",
    "ProblemKind",
    "decode_list",
    "detect",
    "detect_format",
    "lint_expression",
    "parse_list",
    "read_list",
]


class ListFormat(StrEnum):
    AUTO = "auto"
    DOMAINS = "domains"  # one host per line (URLs among them are read as URLs)
    HOSTS = "hosts"  # "0.0.0.0 host host ..."
    ADBLOCK = "adblock"  # "||host^", "@@||host^", "|https://host/path|", plain hosts
    URLS = "urls"  # one URL per line; ending in "/" lists a prefix (hosts among them are read as hosts)
    CSV = "csv"  # a header row naming the columns
    JSON = "json"  # a list of objects or strings, {"entries": [...]}, or {"deny": [...], "allow": [...]}
    JSONL = "jsonl"  # one JSON object or string a line


class ProblemKind(StrEnum):
    MALFORMED = "malformed"  # the line cannot be read in the list's format: it counts as rejected
    UNSUPPORTED = "unsupported"  # a rule the expression model cannot represent (regex, wildcards)
    NOT_APPLICABLE = "not-applicable"  # a rule about something else than a page's address
    APPROXIMATE = "approximate"  # loaded, but the entry does not match exactly what the rule does
    PUBLIC_SUFFIX = "public-suffix"
    SHARED_PLATFORM = "shared-platform"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"
    NARROW = "narrow"  # loaded, but lookups never reach what it would cover below it


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
PATH_COLUMN = "path"  # with host or domain: "host","path" rows list that path on that host
TRUE_WORDS = frozenset({"true", "yes", "1"})
FALSE_WORDS = frozenset({"false", "no", "0"})
# JSON object keys that hold lists of targets, and the action each gives ("" = the default).
JSON_LIST_KEYS: Mapping[str, str] = {
    "entries": "", "deny": "block", "denysub": "block", "block": "block", "blocklist": "block",
    "blacklist": "block", "warn": "warn", "audit": "audit", "allow": "allow", "allowlist": "allow",
    "whitelist": "allow",
}  # fmt: skip

_HOSTS_SKIP = frozenset(
    {"localhost", "localhost.localdomain", "local", "broadcasthost", "ip6-localhost",
     "ip6-loopback", "ip6-localnet", "ip6-mcastprefix", "ip6-allnodes", "ip6-allrouters",
     "ip6-allhosts", "0.0.0.0"}  # noqa: S104 - a name to skip, not an address to bind
)  # fmt: skip
_IPV4 = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
_IPV6 = re.compile(r"[0-9a-f:.]+(?:%\w+)?", re.IGNORECASE)  # one class: linear on hostile input
# What a canonical host may be made of (after IDNA, a Unicode name is ASCII).
_CANONICAL_HOST = re.compile(r"[a-z0-9_\-]+(?:\.[a-z0-9_\-]+)*")
# A host canonicalization would leave as it is: the fast path for big domain lists.
_SIMPLE_HOST = re.compile(r"[a-z0-9_\-]+(?:\.[a-z0-9_\-]+)*")
# Characters that cannot be in a name written in a domain list (Unicode letters can).
_NOT_IN_A_NAME = re.compile(r"[\s/\\?#@:%<>\"'`^|{}\[\],;=*!$&()+~]")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_COSMETIC = re.compile(r"#[@?$%]?#|#@?\$\?#|#@?%#|\$@?\$|#\+js\(")
_SHOWN = 120  # characters of a bad value quoted in a message
_LAST_SECOND = 253_402_300_800  # 10000-01-01: later times are typing errors (and overflow SQLite)

_HONOURED_OPTIONS = frozenset({"all", "document", "doc", "popup", "important", "match-case"})
_RESOURCE_OPTIONS = frozenset(
    {"script", "image", "stylesheet", "css", "xmlhttprequest", "xhr", "subdocument", "frame",
     "object", "object-subrequest", "media", "font", "websocket", "ping", "other", "webrtc",
     "beacon", "fetch", "webbundle", "inline-script", "inline-font", "csp_report"}
)  # fmt: skip
_SITE_OPTIONS = frozenset({"domain", "from", "to", "denyallow", "method", "header", "ipaddress"})
_PARTY_OPTIONS = frozenset(
    {"third-party", "3p", "first-party", "1p", "strict1p", "strict3p", "strict-first-party",
     "strict-third-party"}
)  # fmt: skip
_MODIFIER_OPTIONS = frozenset(
    {"redirect", "redirect-rule", "rewrite", "removeparam", "queryprune", "csp", "permissions",
     "replace", "urltransform", "uritransform", "removeheader", "cookie", "stealth", "cname",
     "empty", "mp4", "generichide", "ghide", "elemhide", "ehide", "specifichide", "shide",
     "genericblock", "badfilter", "jsinject", "content", "urlblock", "extension", "network",
     "app", "referrerpolicy", "hls", "jsonprune", "xmlprune", "noop", "_", "reason"}
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Problem:
    """Something wrong with one line (or JSON item) of a list."""

    source: str
    line: int  # 1-based line, or item number in a JSON list; 0 for the whole file
    kind: str  # a ProblemKind
    message: str
    skipped: bool = True  # False for warnings about a line that was still loaded
    group: str = ""  # what summaries count by: "cosmetic", "resource-type option", ...

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        return f"{where}: {'skipped' if self.skipped else 'warning'}: {self.message}"

    @property
    def quiet(self) -> bool:
        """Counted in the summary, listed one by one only when asked (``--verbose``)."""
        return self.kind == ProblemKind.NOT_APPLICABLE

    @property
    def label(self) -> str:
        """What the summary counts this problem as."""
        return self.group or str(self.kind)


@dataclass(frozen=True, slots=True)
class Defaults:
    """Metadata for lines that do not carry their own."""

    action: Action = Action.BLOCK
    reason: str = ""
    category: str = ""
    incident: str = ""
    expires_at: int | None = None
    added_at: int | None = None
    require_reason: bool = False


@dataclass(frozen=True, slots=True)
class Detection:
    """The format a list is read in, and why: shown when most of it is rejected."""

    format: ListFormat
    why: str


@dataclass(frozen=True, slots=True)
class ParsedList:
    source: str
    format: ListFormat
    rows: tuple[EntryRow, ...]  # one per key, in the order first listed
    problems: tuple[Problem, ...]
    lines: int  # lines in the file (items of a JSON document)
    content_lines: int = 0  # neither blank nor a comment
    why: str = ""  # why it was read in this format

    @property
    def entries(self) -> tuple[Entry, ...]:
        return tuple(_entry(row, self.source) for row in self.rows)

    def count(self, kind: str) -> int:
        return sum(1 for problem in self.problems if problem.kind == kind)

    @property
    def rejected(self) -> int:
        """Lines (or items) that could not be read at all in this format."""
        return len({p.line for p in self.problems if p.kind == ProblemKind.MALFORMED})

    @property
    def mostly_rejected(self) -> bool:
        """More than half the content lines rejected: most likely the wrong format."""
        return self.rejected * 2 > self.content_lines

    def skipped_by_label(self) -> Counter[str]:
        """Lines skipped, counted by why (a line skipped for two reasons counts once, for the first)."""
        first: dict[int, str] = {}
        for problem in self.problems:
            if problem.skipped:
                first.setdefault(problem.line, problem.label)
        return Counter(first.values())


def _entry(row: EntryRow, source: str) -> Entry:
    key, expression, action, reason, category, incident, added_at, expires_at, require_reason, marker = row
    return Entry(
        key=key,
        action=Action(action),
        expression=expression,
        reason=reason,
        category=category,
        incident=incident,
        source=source,
        added_at=added_at,
        expires_at=expires_at,
        require_reason=require_reason,
        marker=marker,
    )


# -- the Public Suffix List, per line ----------------------------------------------


class _Registrable:
    """`registrable_domain`, asked of tldextract once per registrable domain, not once per host.

    For a host ``a.b.c.d``, take the shortest tail (``c.d``, then ``b.c.d``, ...)
    that no Public Suffix List rule reaches into: no rule of that many labels
    or more ends in it, and no wildcard rule sits just above it. No rule that
    matches the host is longer than that tail then, so the host and its tail
    have the same public suffix and the same registrable domain. For a tail
    of two labels that domain is the tail itself (most hosts: no tldextract at
    all); for a longer one (``leak.co.uk``) it is tldextract's answer for the
    tail, cached, unless the tail less its first label is a rule itself
    (``workers.dev``), which is then the longest rule that matches. Punycode
    hosts go to tldextract whole (it decodes labels).
    """

    def __init__(self) -> None:
        self.deep: list[set[str]] = [set(), set()]  # [k]: the last k labels of rules of k or more labels
        self.wild: set[str] = set()  # X of every "*.X" rule
        self.exact: set[str] = set()  # the plain rules (neither "*." nor "!")
        for rule in _extractor().tlds:
            if rule[0] not in "*!":
                self.exact.add(rule)
            labels = rule.lstrip("!").split(".")
            if labels[0] == "*":
                self.wild.add(".".join(labels[1:]))
            while len(self.deep) <= len(labels):
                self.deep.append(set())
            for k in range(2, len(labels) + 1):
                self.deep[k].add(".".join(labels[-k:]))

    def __call__(self, host: str) -> str:
        if "xn--" in host:
            return registrable_domain(host)
        end = host.rfind(".")
        if end < 0:  # a top-level domain under a wildcard rule ("*.ck") is a public suffix itself
            return "" if host in self.wild else registrable_domain(host)
        k, start = 2, host.rfind(".", 0, end)
        while (k < len(self.deep) and host[start + 1 :] in self.deep[k]) or host[end + 1 :] in self.wild:
            if start < 0:
                return registrable_domain(host)  # the whole host is inside some rule
            k, end, start = k + 1, start, host.rfind(".", 0, start)
        tail = host[start + 1 :]
        if k == 2 or host[end + 1 :] in self.exact:
            return tail  # the longest rule that matches is the tail less its first label
        return registrable_domain(tail)


@functools.cache
def _registrable_table() -> _Registrable:
    return _Registrable()


def _registrable_of(host: str) -> str:
    return _registrable_table()(host)


def _unknown_punycode_tld(host: str) -> bool:
    """A punycode top-level label the Public Suffix List does not know: no such name can exist.

    (Every internationalized top-level domain is in the list; an unknown ASCII
    one may be an intranet name or ``.test``, and is allowed.)
    """
    return host.rsplit(".", 1)[-1].startswith("xn--") and not _extractor().extract_str(host).suffix


def lint_expression(expression: str) -> list[tuple[str, str, bool]]:
    """What is wrong with listing *expression*: (kind, message, refuse) triples."""
    host, _, rest = expression.partition("/")
    return _lint(host, "/" + rest, _registrable_of(host) if not _is_ip(host) else "")


def _is_ip(host: str) -> bool:
    return host.startswith("[") or _IPV4.fullmatch(host) is not None


def _lint(host: str, path: str, registrable: str) -> list[tuple[str, str, bool]]:
    if _is_ip(host):
        return []
    findings: list[tuple[str, str, bool]] = []
    if not registrable:
        findings.append(
            (
                ProblemKind.PUBLIC_SUFFIX,
                f"{host} is a public suffix: it would match every site under it",
                True,
            )
        )
        return findings
    if path == "/" and registrable in SHARED_PLATFORMS and host in (registrable, "www." + registrable):
        findings.append(
            (
                ProblemKind.SHARED_PLATFORM,
                f"{host} is a whole shared platform: list the leaked pages on it instead",
                True,
            )
        )
    depth = host.count(".") - registrable.count(".")
    if depth > MAX_HOSTS - 2:
        findings.append(
            (
                ProblemKind.NARROW,
                f"matches only the host {host} itself, not its subdomains: lookups go "
                f"at most {MAX_HOSTS - 2} labels below {registrable}",
                False,
            )
        )
    if path.endswith("/") and path.count("/") - 1 > MAX_PATH_PREFIXES - 1 and "?" not in path:
        findings.append(
            (
                ProblemKind.NARROW,
                f"matches only the path {path} itself, not what is under it: prefixes "
                f"are looked up at most {MAX_PATH_PREFIXES - 1} levels deep",
                False,
            )
        )
    return findings


def _shown(value: str) -> str:
    """*value* quoted for a message, cut short if it is long."""
    if len(value) > _SHOWN:
        return repr(value[:_SHOWN]) + f"... ({len(value)} characters)"
    return repr(value)


_PRIORITY = {str(action): action.priority for action in Action}


class _Collector:
    """Turns targets into entry rows, checking, linting and de-duplicating as it goes."""

    def __init__(self, source: str, defaults: Defaults, force: bool, now: int) -> None:
        self.source = source
        self.force = force
        d = defaults
        self.base = (
            str(d.action),
            d.reason,
            d.category,
            d.incident,
            d.added_at if d.added_at is not None else now,
            d.expires_at,
            d.require_reason,
        )
        self.rows: dict[bytes, tuple[EntryRow, int]] = {}
        self.registrable = _registrable_table()
        self.problems: list[Problem] = []
        self.content_lines = 0

    def problem(self, line: int, kind: str, message: str, skipped: bool = True, group: str = "") -> None:
        self.problems.append(Problem(self.source, line, kind, message, skipped, group))

    def add_name(
        self, line: int, name: str, overrides: Mapping[str, object] | None = None, urls: bool = True
    ) -> None:
        """A host name as written in a domain list or hosts file (Unicode allowed), or else (*urls*) a URL."""
        host = name.lower()
        if host.startswith("*."):
            host = host[2:]
        host = host.strip(".")
        last = host.rfind(".") + 1
        if _SIMPLE_HOST.fullmatch(host) and not host[last].isdigit() and "xn--" not in host[last:]:
            # Canonicalization would leave it as it is: skip it (most lines of a big list).
            registrable = self.registrable(host)
            if (
                overrides is None
                and registrable
                and registrable not in SHARED_PLATFORMS
                and host.count(".") - registrable.count(".") <= MAX_HOSTS - 2
            ):  # nothing to lint: the shortest way (this runs a million times for a big list)
                expression = host + "/"
                key = sha256(expression.encode()).digest()
                if key not in self.rows:
                    marker = sha256(host.encode()).digest()[:MARKER_BYTES]  # `entry.host_marker`
                    self.rows[key] = ((key, expression, *self.base, marker), line)
                    return
            self._checked(line, host, "/", registrable, overrides)
        elif urls and ("/" in name or ":" in name):
            self.add_target(line, name, overrides)
        elif _NOT_IN_A_NAME.search(name.removeprefix("*.")):
            self.problem(line, ProblemKind.MALFORMED, f"{_shown(name)} is not a domain name")
        else:
            self.add_target(line, name, overrides)

    def add_target(self, line: int, target: str, overrides: Mapping[str, object] | None = None) -> str | None:
        """A domain or URL; returns the expression it became, or None when the line was refused."""
        try:
            expression = expression_for(target)
        except InvalidURL as exc:
            self.problem(line, ProblemKind.MALFORMED, f"{_shown(target)}: {exc}")
            return None
        host, _, rest = expression.partition("/")
        if _is_ip(host):
            registrable = ""
        elif not _CANONICAL_HOST.fullmatch(host):
            self.problem(line, ProblemKind.MALFORMED, f"{_shown(target)}: {_shown(host)} is not a host name")
            return None
        elif _unknown_punycode_tld(host):
            self.problem(
                line,
                ProblemKind.MALFORMED,
                f"{_shown(target)}: the top-level domain of {host} does not exist",
            )
            return None
        else:
            registrable = _registrable_of(host)
        return expression if self._checked(line, host, "/" + rest, registrable, overrides) else None

    def _checked(
        self, line: int, host: str, path: str, registrable: str, overrides: Mapping[str, object] | None
    ) -> bool:
        if (
            path != "/"
            or not registrable
            or registrable in SHARED_PLATFORMS
            or host.count(".") - registrable.count(".") > MAX_HOSTS - 2
        ):  # else (most lines of a big domain list) nothing to lint
            for kind, message, refuse in _lint(host, path, registrable):
                if refuse and not self.force:
                    self.problem(line, kind, f"{message} (use --force to list it anyway)")
                    return False
                self.problem(line, kind, message, skipped=False)
        expression = host + path
        self._add(line, key_of(expression), expression, overrides)
        return True

    def add_hash(self, line: int, digest: str, overrides: Mapping[str, object] | None = None) -> None:
        value = digest.strip().lower().removeprefix("sha256:")
        if not _HEX64.fullmatch(value):
            self.problem(
                line, ProblemKind.MALFORMED, f"{_shown(digest)} is not a SHA-256 hash (64 hex digits)"
            )
            return
        self._add(line, bytes.fromhex(value), None, overrides)

    def _add(
        self, line: int, key: bytes, expression: str | None, overrides: Mapping[str, object] | None
    ) -> None:
        action, reason, category, incident, added_at, expires_at, require_reason = self.base
        if overrides:
            get = overrides.get
            action = str(get("action") or action)
            reason = str(get("reason") or reason)
            category = str(get("category") or category)
            incident = str(get("incident") or incident)
            added_at = int(get("added_at") or added_at)  # type: ignore[call-overload]
            expires_at = get("expires_at", expires_at)  # type: ignore[assignment]
            require_reason = bool(get("require_reason", require_reason))
        row: EntryRow = (
            key,
            expression,
            action,
            reason,
            category,
            incident,
            added_at,
            expires_at,
            require_reason,
            None if expression is None else marker_of(expression),
        )
        previous = self.rows.get(key)
        if previous is None:
            self.rows[key] = (row, line)
            return
        kept, first_line = previous
        label = expression if expression is not None else "sha256:" + key.hex()
        if kept[2] == action:
            self.problem(line, ProblemKind.DUPLICATE, f"{label} is already listed on line {first_line}")
            return
        new_wins = _PRIORITY[action] > _PRIORITY[kept[2]]
        self.problem(
            line,
            ProblemKind.CONFLICT,
            f"{label} is listed as {kept[2]} on line {first_line} and as {action} here;"
            f" keeping {action if new_wins else kept[2]}, which wins at equal specificity",
            skipped=not new_wins,
        )
        if new_wins:
            self.rows[key] = (row, line)


# -- line formats -------------------------------------------------------------


def _strip_comment(line: str) -> str:
    if "#" not in line:
        return line.strip()
    if line.lstrip().startswith("#"):
        return ""
    return re.split(r"\s#", line, maxsplit=1)[0].strip()


def _parse_plain(lines: Iterable[str], out: _Collector) -> None:
    """Domains and URLs, one a line, mixed as people write them."""
    for number, raw in enumerate(lines, 1):
        line = _strip_comment(raw)
        if not line:
            continue
        out.content_lines += 1
        if " " in line or "\t" in line:
            words = line.split()
            if len(words) > 1:
                out.problem(
                    number,
                    ProblemKind.MALFORMED,
                    f"expected one domain or URL on the line, found {len(words)} words: {_shown(line)}",
                )
                continue
            line = words[0]
        out.add_name(number, line)


def _is_address(word: str) -> bool:
    return _IPV4.fullmatch(word) is not None or (":" in word and _IPV6.fullmatch(word) is not None)


def _parse_hosts(lines: Iterable[str], out: _Collector) -> None:
    for number, raw in enumerate(lines, 1):
        line = _strip_comment(raw)
        if not line:
            continue
        out.content_lines += 1
        _hosts_line(number, line.split(), out)


def _hosts_line(number: int, words: list[str], out: _Collector) -> None:
    address, *names = words
    if not _is_address(address):
        if not names:  # a bare host among the addresses, as people write them
            out.add_name(number, address, urls=False)
            return
        out.problem(
            number,
            ProblemKind.MALFORMED,
            f"{_shown(address)} is not an IP address (hosts format: IP name...)",
        )
        return
    if not names:
        out.problem(number, ProblemKind.MALFORMED, f"the address {_shown(address)} has no host name")
        return
    for name in names:
        if name.lower() not in _HOSTS_SKIP:
            out.add_name(number, name, urls=False)


def _option_group(options: str) -> tuple[str, str] | None:
    """Why adblock *options* cannot be honoured by a URL list: (kind, group), or None if they can."""
    found: tuple[str, str] | None = None
    for option in options.split(","):
        name, _, _ = option.strip().partition("=")
        negated = name.startswith("~")
        name = name.lstrip("~").lower()
        if name in _HONOURED_OPTIONS and not (negated and name in ("document", "doc", "all", "popup")):
            continue
        if name in _RESOURCE_OPTIONS and negated:
            continue  # "everything but scripts": pages included
        if name in ("document", "doc", "all", "popup"):
            group = (ProblemKind.NOT_APPLICABLE, "resource-type option")
        elif name in ("domain", "from"):
            return ProblemKind.NOT_APPLICABLE, "domain= option"  # the most telling reason: say it
        elif name in _SITE_OPTIONS:
            group = (ProblemKind.NOT_APPLICABLE, f"{name}= option")
        elif name in _RESOURCE_OPTIONS:
            group = (ProblemKind.NOT_APPLICABLE, "resource-type option")
        elif name in _PARTY_OPTIONS:
            group = (ProblemKind.NOT_APPLICABLE, "party option")
        elif name in _MODIFIER_OPTIONS:
            group = (ProblemKind.NOT_APPLICABLE, "modifier option")
        else:
            group = (ProblemKind.UNSUPPORTED, "unknown option")
        found = found or group
    return found


def _parse_adblock(lines: Iterable[str], out: _Collector) -> None:
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("!") or (line.startswith("[") and line.endswith("]")):
            continue
        if (
            line.startswith("# ")
            or line == "#"
            or (line.startswith("#") and not line.startswith("##") and _COSMETIC.search(line) is None)
        ):
            continue  # a hosts-style comment, which uBO reads too
        out.content_lines += 1
        _adblock_line(number, line, out)


def _adblock_line(number: int, line: str, out: _Collector) -> None:
    if _COSMETIC.search(line):
        out.problem(
            number,
            ProblemKind.NOT_APPLICABLE,
            f"{_shown(line)}: a cosmetic rule, it hides parts of pages",
            group="cosmetic",
        )
        return
    if " " in line or "\t" in line:
        words = line.split()
        if _is_address(words[0]):
            _hosts_line(number, words, out)  # hosts syntax, which uBO reads too
            return
        out.problem(number, ProblemKind.MALFORMED, f"{_shown(line)} is not an adblock rule (it has spaces)")
        return
    action: Action | None = None
    pattern = line
    if pattern.startswith("@@"):
        action, pattern = Action.ALLOW, pattern[2:]
    regex = pattern.startswith("/") and pattern.endswith("/") and len(pattern) > 1
    dollar = -1 if regex else pattern.rfind("$")
    if dollar > 0:
        why = _option_group(pattern[dollar + 1 :])
        if why is not None:
            kind, group = why
            out.problem(
                number,
                kind,
                f"{group} {pattern[dollar + 1 :]!r} in {_shown(line)}: does not apply to a page's address"
                if kind == ProblemKind.NOT_APPLICABLE
                else f"rule options {pattern[dollar + 1 :]!r} in {_shown(line)} are not known",
                group=group,
            )
            return
        pattern = pattern[:dollar]
    if regex or (pattern.startswith("/") and pattern.endswith("/") and len(pattern) > 1):
        out.problem(
            number,
            ProblemKind.UNSUPPORTED,
            f"{_shown(line)}: regular-expression rules are not supported",
            group="regular expression",
        )
        return
    overrides = {"action": action} if action else None
    if pattern.startswith("||"):
        _anchored(number, pattern[2:], out, overrides, "||")
    elif pattern.startswith("|") and "://" in pattern:
        scheme, _, rest = pattern[1:].partition("://")  # the scheme: expressions have none
        _anchored(number, rest, out, overrides, f"|{scheme}://")
    elif _looks_like_host(pattern):
        out.add_name(number, pattern, overrides, urls=False)  # a plain host line: uBO reads it as ||host^
    else:
        out.problem(
            number,
            ProblemKind.UNSUPPORTED,
            f"{_shown(line)}: a rule with no host anchor ('||host' or '|URL')",
            group="generic rule",
        )


def _looks_like_host(pattern: str) -> bool:
    """A plain adblock pattern that is a host name (``leak.test``), not a fragment of URLs (``-ad-``)."""
    return (
        "." in pattern
        and pattern[0] not in ".-_"
        and pattern[-1] not in ".-_"
        and _NOT_IN_A_NAME.search(pattern) is None
    )


_HOST_END = re.compile(r"[/^?:|*]")


def _anchored(
    number: int, body: str, out: _Collector, overrides: Mapping[str, object] | None, anchor: str
) -> None:
    """A rule anchored at a host: ``||host^``, ``||host/path^``, ``|https://host/path|``."""
    end = _HOST_END.search(body)
    host, rest = (body, "") if end is None else (body[: end.start()], body[end.start() :])
    rule = anchor + body
    if rest.startswith(":") and rest[1:].split("/", 1)[0].split("^", 1)[0].isdigit():
        port_end = _HOST_END.search(rest, 1)
        rest = "" if port_end is None else rest[port_end.start() :]
        out.problem(
            number,
            ProblemKind.APPROXIMATE,
            f"{_shown(rule)}: ports are not matched; listed for every port",
            skipped=False,
        )
    if rest.endswith("*") and "*" not in rest[:-1]:
        rest = rest[:-1]  # a trailing wildcard adds nothing to a prefix
    if not host or "*" in rest or rest.startswith("*") or rest.startswith(":"):
        out.problem(
            number, ProblemKind.UNSUPPORTED, f"{_shown(rule)}: wildcards are not supported", group="wildcard"
        )
        return
    exact = rest.endswith("|")
    rest = rest.removesuffix("|")
    separator = rest.endswith("^")
    rest = rest.removesuffix("^")
    if "^" in rest or "|" in rest:
        out.problem(
            number,
            ProblemKind.UNSUPPORTED,
            f"{_shown(rule)}: a separator inside a rule is not supported",
            group="wildcard",
        )
        return
    if not rest.strip("/") and not exact:
        if not separator and not rest:
            if host.endswith("."):  # "||name." is "name" under every top-level domain
                out.problem(
                    number,
                    ProblemKind.UNSUPPORTED,
                    f"{_shown(rule)}: matches {host} under every top-level domain (a wildcard)",
                    group="wildcard",
                )
                return
            out.problem(
                number,
                ProblemKind.APPROXIMATE,
                f"{_shown(rule)}: matches every host that starts with {host}; "
                f"listed as the domain {host} and its subdomains",
                skipped=False,
            )
        out.add_name(number, host, overrides)
        return
    target = host + (rest if rest.startswith("/") else "/" + rest)
    if exact or separator or rest.endswith("/") or rest.endswith("?"):
        page = out.add_target(number, target.removesuffix("?") if rest.endswith("?") else target, overrides)
        if page is not None and separator and "?" not in rest and not rest.endswith("/"):
            # "||host/dir^" matches host/dir and host/dir/...: list the folder too.
            before = len(out.problems)
            out.add_target(number, target + "/", overrides)
            del out.problems[before:]  # the same line, already reported once
        if page is not None and separator and "?" in rest:
            out.problem(
                number,
                ProblemKind.APPROXIMATE,
                f"{_shown(rule)}: also matches that URL with more query parameters; listed as exactly it",
                skipped=False,
            )
        return
    # "||host/path-": any URL that starts with it. The closest expressions are the
    # page and the folder of that name; what continues the last segment is not covered.
    page = out.add_target(number, target, overrides)
    if page is None:
        return
    folder = out.add_target(number, target + "/", overrides) if "?" not in target else None
    became = (
        (f"the page {page}" + (f" and the folder {folder}" if folder else ""))
        if folder
        else f"exactly {page}"
    )
    out.problem(
        number,
        ProblemKind.APPROXIMATE,
        f"{_shown(rule)} ends mid-segment: it matches every URL that starts with {_shown(target)};"
        f" listed as {became}, which miss what continues it",
        skipped=False,
        group="ends mid-segment",
    )


# -- tables -------------------------------------------------------------------


def _flag(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    return None


def _row_overrides(row: Mapping[str, object], number: int, out: _Collector) -> dict[str, object] | None:
    overrides: dict[str, object] = {}
    action = row.get("action")
    if action not in (None, ""):
        if not isinstance(action, str) or action.strip().lower() not in _PRIORITY:
            out.problem(
                number,
                ProblemKind.MALFORMED,
                f"unknown action {_shown(str(action))} (block, warn, audit or allow)",
            )
            return None
        overrides["action"] = Action(action.strip().lower())
    for name in ("reason", "category", "incident"):
        value = row.get(name)
        if value is not None and not isinstance(value, str):
            out.problem(
                number, ProblemKind.MALFORMED, f"{name} must be text, not {_shown(json.dumps(value))}"
            )
            return None
        if value:
            overrides[name] = value.strip()
    for column, attribute in (("expires", "expires_at"), ("added", "added_at")):
        value = row.get(column)
        if value in (None, ""):
            continue
        try:
            seconds = value if type(value) is int else parse_time(str(value))
        except ValueError as exc:
            out.problem(number, ProblemKind.MALFORMED, f"{column}: {exc}")
            return None
        if not 0 <= seconds < _LAST_SECOND:
            shown = _shown(str(value))
            out.problem(number, ProblemKind.MALFORMED, f"{column}: {shown} is not a time from 1970 to 9999")
            return None
        overrides[attribute] = seconds
    value = row.get("require_reason")
    if value not in (None, ""):
        flag = _flag(value)
        if flag is None:
            out.problem(
                number,
                ProblemKind.MALFORMED,
                f"require_reason {_shown(str(value))} is not true/false, yes/no or 1/0",
            )
            return None
        overrides["require_reason"] = flag
    return overrides


def _add_row(row: Mapping[str, object], number: int, out: _Collector) -> None:
    overrides = _row_overrides(row, number, out)
    if overrides is None:
        return
    for column in TARGET_COLUMNS:
        value = row.get(column)
        if value:
            if not isinstance(value, str):
                out.problem(
                    number, ProblemKind.MALFORMED, f"{column} must be text, not {_shown(json.dumps(value))}"
                )
                return
            path = row.get(PATH_COLUMN) if column in ("domain", "host") else None
            if isinstance(path, str) and path.strip():
                out.add_target(number, value.strip() + "/" + path.strip().lstrip("/"), overrides)
            elif column in ("domain", "host"):
                out.add_name(number, value.strip(), overrides)
            else:
                out.add_target(number, value, overrides)
            return
    for column in HASH_COLUMNS:
        value = row.get(column)
        if value and isinstance(value, str):
            out.add_hash(number, value, overrides)
            return
    out.problem(
        number, ProblemKind.MALFORMED, f"no target: fill one of {', '.join(TARGET_COLUMNS + HASH_COLUMNS)}"
    )


def _csv_cells(line: str, number: int, out: _Collector) -> list[str] | None:
    """One CSV record on one line. A quote left open is this line's problem, never the rest's."""
    if '"' not in line:
        return line.split(",")
    try:
        (cells,) = csv.reader([line], strict=True)
    except (csv.Error, ValueError) as exc:
        out.problem(
            number,
            ProblemKind.MALFORMED,
            f"CSV quoting: {exc} (a record must be one line; "
            f'a field that holds a quote is written "like ""this""")',
        )
        return None
    return cells


def _parse_csv(lines: Iterable[str], out: _Collector) -> None:
    header: list[str] | None = None
    for number, raw in enumerate(lines, 1):
        line = raw.rstrip("\r\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        cells = _csv_cells(line, number, out)
        if cells is None:
            if header is not None:
                out.content_lines += 1
            continue
        if header is None:
            header = [cell.strip().lower() for cell in cells]
            if not set(header) & set(TARGET_COLUMNS + HASH_COLUMNS):
                raise ListError(
                    f"{out.source}:{number}: the CSV header names no target column "
                    f"(one of {', '.join(TARGET_COLUMNS + HASH_COLUMNS)})"
                )
            continue
        out.content_lines += 1
        if len(cells) > len(header):
            out.problem(
                number, ProblemKind.MALFORMED, f"{len(cells)} fields, but the header has {len(header)}"
            )
            continue
        _add_row(dict(zip(header, cells, strict=False)), number, out)


def _add_item(item: object, number: int, out: _Collector, action: str) -> None:
    if isinstance(item, str):
        out.add_name(number, item.strip(), {"action": action} if action else None)
    elif isinstance(item, dict):
        fields = {str(k).lower(): v for k, v in item.items()}
        if action and not fields.get("action"):
            fields["action"] = action
        _add_row(fields, number, out)
    else:
        out.problem(number, ProblemKind.MALFORMED, f"item {number} is neither a URL string nor an object")


def _parse_json(text: str, out: _Collector) -> int:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ListError(f"{out.source}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    except RecursionError:
        raise ListError(f"{out.source}: JSON nested too deeply to be a list") from None
    if isinstance(document, list):
        groups: list[tuple[str, list[object]]] = [("", document)]
    elif isinstance(document, dict):
        groups = []
        for name, items in document.items():
            action = JSON_LIST_KEYS.get(str(name).lower())
            if action is None or not isinstance(items, list):
                continue
            groups.append((action, items))
        if not groups:
            keys = ", ".join(sorted(JSON_LIST_KEYS))
            raise ListError(f"{out.source}: a JSON object with no list of entries (keys: {keys})")
    else:
        raise ListError(f'{out.source}: expected a JSON list of entries or {{"entries": [...]}}')
    number = 0
    for action, items in groups:
        for item in items:
            number += 1
            out.content_lines += 1
            _add_item(item, number, out, action)
    return number


def _parse_jsonl(lines: Iterable[str], out: _Collector) -> None:
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        out.content_lines += 1
        try:
            item = json.loads(line)
        except ValueError as exc:
            out.problem(number, ProblemKind.MALFORMED, f"not a JSON line ({exc}): {_shown(line)}")
            continue
        except RecursionError:
            out.problem(number, ProblemKind.MALFORMED, "a JSON line nested too deeply to be an entry")
            continue
        _add_item(item, number, out, "")


# -- detection ----------------------------------------------------------------

_SAMPLE = 2000  # lines looked at, spread over the whole file
_ADBLOCK_START = ("||", "@@", "|http", "[adblock")


def _content(lines: Sequence[str]) -> list[str]:
    step = max(1, len(lines) // _SAMPLE)
    picked = [line.strip() for line in lines[::step]]
    return [line for line in picked if line]


def _is_json_lines(lines: Sequence[str]) -> bool:
    values = [line.strip() for line in lines[:20] if line.strip()]
    if len(values) < 2:
        return False
    try:
        json.loads(values[0])
    except ValueError:
        return False
    return values[1][:1] in ("{", '"', "[")


def detect(name: str, text: str, lines: Sequence[str] | None = None) -> Detection:
    """Guess a list's format from its file name, then from a sample of its lines; say why."""
    suffix = Path(name).suffix.lower()
    if lines is None:
        lines = _lines(text)
    if suffix == ".csv":
        return Detection(ListFormat.CSV, "the file name ends in .csv")
    if suffix in (".jsonl", ".ndjson"):
        return Detection(ListFormat.JSONL, f"the file name ends in {suffix}")
    stripped = text.lstrip("\ufeff \t\r\n")
    if stripped.startswith(("{", "[")) and not stripped[:9].lower().startswith("[adblock"):
        if _is_json_lines(lines):
            return Detection(ListFormat.JSONL, "it starts with JSON values one a line")
        return Detection(ListFormat.JSON, f"it starts with {stripped[0]!r}")
    if suffix == ".json":
        return Detection(ListFormat.JSON, "the file name ends in .json")
    first = next(
        (line.strip() for line in lines[:200] if line.strip() and not line.lstrip().startswith("#")), ""
    )
    if "," in first:
        cells = {c.strip().strip('"').strip().lower() for c in first.split(",")}
        if cells & set(TARGET_COLUMNS + HASH_COLUMNS):
            return Detection(ListFormat.CSV, f"a header row names the columns {first[:80]!r}")
    votes: Counter[str] = Counter()
    for line in _content(lines):
        lower = line.lower()
        if lower.startswith("#"):
            continue
        words = line.split()
        if lower.startswith(_ADBLOCK_START) or lower.endswith("^") or _COSMETIC.search(line):
            votes["adblock rule"] += 1
        elif line.startswith("!"):
            votes["! comment"] += 1
        elif len(words) > 1 and _is_address(words[0]):
            votes["hosts line"] += 1
        elif "://" in line or "/" in words[0]:
            votes["URL"] += 1
        else:
            votes["domain"] += 1
    seen = sum(votes.values())
    counts = ", ".join(f"{n} {label}" for label, n in votes.most_common())
    of = f"of {seen} lines sampled: {counts}" if seen else "no lines to go by"
    if votes["adblock rule"] and (votes["adblock rule"] * 100 >= seen or votes["! comment"]):
        return Detection(ListFormat.ADBLOCK, f"adblock rules ('||host^', '@@', '##') {of}")
    if votes["hosts line"] * 2 >= seen - votes["! comment"] and votes["hosts line"]:
        return Detection(ListFormat.HOSTS, f"mostly 'address name' lines {of}")
    if votes["URL"] > votes["domain"]:
        return Detection(ListFormat.URLS, f"mostly URLs {of}")
    return Detection(ListFormat.DOMAINS, f"mostly names {of}" if seen else of)


def detect_format(name: str, text: str) -> ListFormat:
    """Guess a list's format from its file name, then from its lines."""
    return detect(name, text).format


_LINE_PARSERS: dict[ListFormat, Callable[[Iterable[str], _Collector], None]] = {
    ListFormat.DOMAINS: _parse_plain,
    ListFormat.URLS: _parse_plain,
    ListFormat.HOSTS: _parse_hosts,
    ListFormat.ADBLOCK: _parse_adblock,
    ListFormat.CSV: _parse_csv,
    ListFormat.JSONL: _parse_jsonl,
}


def _lines(text: str) -> list[str]:
    """The lines as an editor numbers them: split at LF only (a stray form feed is not a line end)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


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
    text = text.removeprefix("\ufeff")
    lines = _lines(text)
    detection = detect(source, text, lines) if fmt is ListFormat.AUTO else Detection(fmt, "--format says so")
    out = _Collector(source, defaults, force, now)
    count = len(lines)
    if detection.format is ListFormat.JSON:
        count = max(count, _parse_json(text, out))
    else:
        _LINE_PARSERS[detection.format](progress(lines) if progress else lines, out)
    rows = tuple(row for row, _ in out.rows.values())
    return ParsedList(
        source, detection.format, rows, tuple(out.problems), count, out.content_lines, detection.why
    )


_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def decode_list(data: bytes, name: str) -> str:
    """The text of a list file: UTF-8, or UTF-16/32 with a byte-order mark.

    Raises `ListError` naming the line of a byte that is not UTF-8, or of a NUL.
    """
    encoding = "utf-8"
    for bom, candidate in _BOMS:
        if data.startswith(bom):
            data, encoding = data[len(bom) :], candidate
            break
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        if encoding != "utf-8":
            raise ListError(
                f"{name}: not valid {encoding.upper()} text (bad bytes at offset {exc.start})"
            ) from None
        line = data.count(b"\n", 0, exc.start) + 1
        raise ListError(
            f"{name}:{line}: not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start}"
            " (Latin-1 or another legacy encoding? save the list as UTF-8)"
        ) from None
    nul = text.find("\x00")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        raise ListError(
            f"{name}:{line}: a NUL character: not a text file (UTF-16 without a byte-order mark?)"
        )
    return text


def read_list(path: Path, **options: object) -> ParsedList:
    """Read and parse a list file; see `parse_list` for the options."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ListError(f"{path}: {exc.strerror or exc}") from None
    options.setdefault("source", path.name)
    return parse_list(decode_list(data, path.name), **options)  # type: ignore[arg-type]
