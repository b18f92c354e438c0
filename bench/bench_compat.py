"""Compatibility figures: real published lists, and peer implementations' test tables.

    uv run python bench/bench_compat.py                 # ../shared next to the repository
    uv run python bench/bench_compat.py --shared DIR --all

Reads (never copies) ``real-lists/`` and ``peer-vectors/`` of the shared folder:

- every list in ``real-lists/``: the format detected and why, what loaded, what
  was refused and why, and whether that is what its SOURCES.md says it is
  (the format, and whether the list should load at all);
- Chrome's URLBlocklist cases (one pattern and a URL; block and allow lists
  and a URL): each pattern read as a line of a linkwarn URL list, the URL
  checked as the proxy does;
- the Public Suffix List's own tests and tldextract's: the registrable domain
  linkwarn lints and matches with;
- adblock-rust's (filter, URL) pairs: each filter read as a line of a
  linkwarn adblock list, the URL checked.

For each table it prints how many cases agree and the disagreements by the
reason in linkwarn's model that explains them (``--all`` lists every case).
Nothing here is part of the test suite.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from blocklists import Action, Entry, InvalidURL, ListError, ListFormat, canonicalize_traced, decide, key_of
from blocklists.canonical import _extractor, expressions_of, registrable_domain
from blocklists.entry import expression_for
from blocklists.lists import Defaults, ParsedList, ProblemKind, _registrable_of, decode_list, parse_list

ROOT = Path(__file__).resolve().parent.parent
NOW = int(time.time())

# What each list is, by its SOURCES.md: the format, and whether it should load.
# (The "invalid" list holds URLs its publisher classed invalid: it must be refused.)
DESCRIBED: dict[str, tuple[ListFormat, bool]] = {
    "adblock-easylist.txt": (ListFormat.ADBLOCK, True),
    "adblock-hagezi-light.txt": (ListFormat.ADBLOCK, True),
    "adblock-phishing-database-active2.adblock": (ListFormat.ADBLOCK, True),
    "adblock-urlhaus-filter.txt": (ListFormat.ADBLOCK, True),
    "csv-phishtank-online-valid-2018-10-26.csv": (ListFormat.CSV, True),
    "csv-urlhaus-filter-splunk-online.csv": (ListFormat.CSV, True),
    "domains-an0m-aggregate.txt": (ListFormat.DOMAINS, True),
    "domains-blocklistproject-phishing.txt": (ListFormat.DOMAINS, True),
    "domains-urlhaus-hosts-romainmarcoux.txt": (ListFormat.DOMAINS, True),
    "hosts-adguarddns-hagezi.txt": (ListFormat.HOSTS, True),
    "hosts-upstream-StevenBlack.hosts": (ListFormat.HOSTS, True),
    "hosts-upstream-URLHaus.hosts": (ListFormat.HOSTS, True),
    "hosts-upstream-adaway.org.hosts": (ListFormat.HOSTS, True),
    "hosts-upstream-mvps.org.hosts": (ListFormat.HOSTS, True),
    "hosts-upstream-someonewhocares.org.hosts": (ListFormat.HOSTS, True),
    "json-polkadot-phishing-all.json": (ListFormat.JSON, True),
    "urls-openphish-feed-history.txt": (ListFormat.URLS, True),
    "urls-phishing-database-inactive1.txt": (ListFormat.URLS, True),
    "urls-phishing-database-invalid.txt": (ListFormat.URLS, False),
}


def read_gz(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.suffix == ".gz" else data


# -- real lists -------------------------------------------------------------------


def real_lists(folder: Path, show_all: bool) -> None:
    print("## Real lists\n")
    print("| file | read as | lines | entries | refused | skipped, by why | approximate | as described |")
    print("| --- | --- | ---: | ---: | ---: | --- | ---: | --- |")
    notes: list[str] = []
    for path in sorted(folder.glob("*.gz")):
        name = path.name.removesuffix(".gz")
        try:
            parsed = parse_list(decode_list(read_gz(path), name), source=name, now=NOW)
        except ListError as exc:
            print(f"| {name} | - | - | - | - | {exc} | - | no |")
            continue
        loads = not parsed.mostly_rejected
        fmt, should_load = DESCRIBED.get(name, (parsed.format, True))
        skipped = parsed.skipped_by_label()
        refused = sum(skipped[k] for k in (ProblemKind.PUBLIC_SUFFIX, ProblemKind.SHARED_PLATFORM))
        why = ", ".join(f"{n:,} {label}" for label, n in skipped.most_common()) or "-"
        verdict = "yes" if (parsed.format is fmt and loads == should_load) else "**no**"
        entries = (
            f"{len(parsed.rows):,}"
            if loads
            else f"0 (refused: {parsed.rejected} of {parsed.content_lines} lines rejected)"
        )
        print(
            f"| {name} | {parsed.format} | {parsed.lines:,} | {entries} | {refused:,} | {why} |"
            f" {parsed.count(ProblemKind.APPROXIMATE):,} | {verdict} |"
        )
        notes.append(f"- {name}: {parsed.format} because {parsed.why}")
        if show_all:
            notes.extend(f"    {p}" for p in parsed.problems if p.kind != ProblemKind.DUPLICATE)
    print("\nHow each was detected:\n")
    print("\n".join(notes))
    print()


# -- matching, as the proxy does it, without a store -------------------------------


def check(url: str, entries: Iterable[Entry]) -> Action | None:
    """The winning action for *url* given *entries* (None: nothing matches). Raises InvalidURL."""
    found: dict[bytes, list[Entry]] = defaultdict(list)
    for entry in entries:
        found[entry.key].append(entry)
    canonical = canonicalize_traced(url)
    expressions = expressions_of(canonical)
    hits = [(e, key_of(e)) for e in expressions if key_of(e) in found]
    return decide(url, canonical, expressions, hits, found, NOW).action


def checked(url: str, entries: Iterable[Entry]) -> Action | None:
    """`check`, where a URL linkwarn refuses (no host: ``data:``, ``file:``) matches nothing."""
    try:
        return check(url, entries)
    except InvalidURL:
        return None


_PARSED: dict[tuple[str, ListFormat], ParsedList] = {}


def as_list_line(
    line: str, fmt: ListFormat, action: Action = Action.BLOCK, force: bool = False
) -> ParsedList:
    key = (f"{action}:{force}:{line}", fmt)
    if key not in _PARSED:
        _PARSED[key] = parse_list(
            line, source="case", fmt=fmt, defaults=Defaults(action=action), force=force, now=NOW
        )
    return _PARSED[key]


class Tally:
    def __init__(self, title: str) -> None:
        self.title = title
        self.agree = 0
        self.cases = 0
        self.why: Counter[str] = Counter()
        self.examples: dict[str, list[str]] = defaultdict(list)

    def add(self, agrees: bool, reason: str = "", example: str = "") -> None:
        self.cases += 1
        if agrees:
            self.agree += 1
            return
        self.why[reason] += 1
        self.examples[reason].append(example)

    def row(self) -> str:
        why = "; ".join(f"{n} {reason}" for reason, n in self.why.most_common()) or "-"
        return f"| {self.title} | {self.cases:,} | {self.agree:,} | {self.cases - self.agree:,} | {why} |"

    def details(self, show_all: bool) -> list[str]:
        lines = [f"### {self.title}: disagreements"]
        for reason, n in self.why.most_common():
            lines.append(f"- {reason} ({n}):")
            shown = self.examples[reason] if show_all else self.examples[reason][:4]
            lines.extend(f"    {example}" for example in shown)
            if len(self.examples[reason]) > len(shown):
                lines.append(f"    ... and {len(self.examples[reason]) - len(shown)} more (--all)")
        return lines if self.why else []


# -- Chrome URLBlocklist -------------------------------------------------------------

_CHROME_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*)://", re.IGNORECASE)
_URL_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*):(?!\d)", re.IGNORECASE)
_STRING_PREFIX = (
    "a path is a string prefix in Chrome ('/ruin' matches '/ruins'); linkwarn lists a page or a folder"
)


def chrome_reason(patterns: Iterable[str], url: str) -> str:
    """Which difference between Chrome's filter format and linkwarn's expressions a case turns on."""
    patterns = list(patterns)
    scheme = _URL_SCHEME.match(url)
    if any(p == "*" or p.startswith("*") for p in patterns):
        return "'*' (everything) has no expression"
    if scheme is not None and scheme.group(1).lower() not in ("http", "https"):
        return "not an http(s) URL: linkwarn looks only at web addresses"
    url_path = "/" + url.split("//", 1)[-1].split("/", 1)[1] if "/" in url.split("//", 1)[-1] else "/"
    for pattern in patterns:
        rest = _CHROME_SCHEME.sub("", pattern)
        path = "/" + rest.split("/", 1)[1] if "/" in rest else ""
        if (
            path
            and not path.endswith("/")
            and "?" not in path
            and url_path.startswith(path)
            and url_path != path
        ):
            return _STRING_PREFIX
    if any("?" in p for p in patterns) or "?" in url:
        return "query parameters: Chrome matches them as tokens, linkwarn only an exact query"
    if any(re.search(r":\d+", _CHROME_SCHEME.sub("", p).split("/")[0]) for p in patterns):
        return "a port: expressions ignore the port"
    if any(_CHROME_SCHEME.sub("", p).startswith(".") for p in patterns):
        return "a leading '.' (that host only): a host entry covers its subdomains"
    if any(_CHROME_SCHEME.match(p) for p in patterns):
        return "a scheme in the pattern: expressions ignore the scheme"
    if scheme is None:
        return "a URL without a scheme: linkwarn reads it as http://"
    return "other"


FORCED: Counter[str] = Counter()  # Chrome patterns that linkwarn lists only with --force


def chrome_entries(patterns: Iterable[str], action: Action) -> tuple[list[Entry], int]:
    """The entries of *patterns* as lines of a URL list; with --force, as Chrome has no such lint."""
    entries: list[Entry] = []
    refused = 0
    for pattern in patterns:
        plain = as_list_line(pattern, ListFormat.URLS, action)
        forced = as_list_line(pattern, ListFormat.URLS, action, force=True)
        if len(forced.rows) > len(plain.rows):
            FORCED[pattern] += 1
        entries.extend(forced.entries)
        refused += not forced.rows
    return entries, refused


def chrome(folder: Path) -> list[Tally]:
    cases = json.loads((folder / "chromium-urlblocklist-vectors.json").read_text("utf-8"))
    single = Tally("Chrome URLBlocklist: one pattern")
    both = Tally("Chrome URLBlocklist: block + allow")
    state = Tally("Chrome URLBlocklist: list state")
    for case in cases:
        kind = case["kind"]
        if kind == "single":
            entries, _ = chrome_entries(case["patterns"], Action.BLOCK)
            got = checked(case["url"], entries) is Action.BLOCK
            single.add(
                got == case["match"],
                chrome_reason(case["patterns"], case["url"]),
                f"{case['patterns']} {case['url']}: Chrome {case['match']}, linkwarn {got}",
            )
        elif kind == "block_allow":
            blocked, _ = chrome_entries(case["block"], Action.BLOCK)
            allowed, _ = chrome_entries(case["allow"], Action.ALLOW)
            got = checked(case["url"], blocked + allowed) is Action.BLOCK
            both.add(
                got == case["blocked"],
                chrome_reason(case["block"] + case["allow"], case["url"]),
                f"block {case['block']} allow {case['allow']} {case['url']}: Chrome blocked="
                f"{case['blocked']}, linkwarn {got}",
            )
        elif kind == "state":
            action = Action.ALLOW if case["list"] == "allow" else Action.BLOCK
            entries, _ = chrome_entries([case["pattern"]], action)
            verdict = checked(case["url"], entries)
            name = {Action.ALLOW: "URL_IN_ALLOWLIST", Action.BLOCK: "URL_IN_BLOCKLIST"}
            got_state = name.get(verdict, "URL_NEUTRAL_STATE") if verdict else "URL_NEUTRAL_STATE"
            state.add(
                got_state == case["state"],
                chrome_reason([case["pattern"]], case["url"]),
                f"{case['list']} {case['pattern']} {case['url']}: Chrome {case['state']}, linkwarn {got_state}",  # noqa: E501
            )
    return [single, both, state]


# -- Public Suffix List and tldextract ----------------------------------------------


def host_of(text: str) -> tuple[str, bool]:
    canonical = canonicalize_traced(text if "://" in text else "http://" + text)
    return canonical.host, canonical.is_ip


def to_ascii(name: str) -> str:
    return expression_for(name).rstrip("/")


def psl(folder: Path) -> Tally:
    tally = Tally("Public Suffix List tests (registrable domain)")
    for raw in (folder / "psl-tests.txt").read_text("utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("//"):
            continue
        given, expected = line.split()
        if given == "null":
            continue  # no Python equivalent of a null host
        want = "" if expected == "null" else to_ascii(expected)
        try:
            host, _ = host_of(given)
            got = _registrable_of(host)  # what the list linter uses
        except InvalidURL as exc:
            got = f"(refused: {exc})"
        if given.startswith("."):
            reason = "a leading dot: linkwarn removes it, as browsers do, and answers for the rest"
        elif registrable_domain(host.rsplit(".", 1)[-1]) and not _extractor().extract_str(host).suffix:
            reason = "an unlisted top-level domain: no implicit '*' rule (tldextract's choice, kept)"
        else:
            reason = "other"
        tally.add(got == want, reason, f"{given}: PSL {expected}, linkwarn {got or 'null'}")
    return tally


def tldextract_cases(folder: Path) -> Tally:
    tally = Tally("tldextract tests (registrable domain)")
    private = _extractor()
    for case in json.loads((folder / "tldextract-main_test-vectors.json").read_text("utf-8")):
        if case["function"] != "extract":
            continue
        domain, suffix = case["domain"], case["suffix"]
        ip = case.get("ipv4") or case.get("ipv6")
        want = ip or (f"{domain}.{suffix}" if domain and suffix else "")
        try:
            host, is_ip = host_of(case["input"])
            got = host.strip("[]") if is_ip else registrable_domain(host)
            want = want.lower() if is_ip else (to_ascii(want) if want else "")
        except InvalidURL as exc:
            got = f"(refused: {exc})"
            host = ""
        if (
            not case["include_psl_private_domains"]
            and host
            and got == private.extract_str(host).top_domain_under_public_suffix
        ):
            reason = "the PSL private section: linkwarn always uses it (x.blogspot.com is not blogspot.com)"
        elif got.startswith("(refused"):
            reason = "input that is not a URL a browser opens (linkwarn refuses it)"
        elif any(c in case["input"] for c in "\t\r\n"):
            reason = "tab, CR and LF are removed from a URL, as browsers do"
        elif is_ip or host.replace(".", "").isdigit():
            reason = "IP addresses: every IPv4 spelling read as browsers do, IPv6 written compressed"
        elif not private.extract_str(host).suffix:
            reason = "an unlisted top-level domain: its last label is taken as the suffix (intranet names)"
        else:
            reason = "host splitting: tldextract is lenient with what is not a host"
        tally.add(got == want, reason, f"{case['input']!r}: tldextract {want or '-'}, linkwarn {got or '-'}")
    return tally


# -- adblock-rust ---------------------------------------------------------------------


def adblock_reason(rule: str, url: str) -> str:
    body = rule.removeprefix("@@").split("$", 1)[0]
    try:
        host = canonicalize_traced(url).host
    except InvalidURL:
        host = ""
    if host and not _registrable_of(host):
        return "the URL's host is a public suffix itself (s3.amazonaws.com): lookups never go above it"
    if body.lower() != body or any(c.isupper() for c in url.split("?")[0].split("/", 3)[-1]):
        return "letter case: adblock paths match either case, linkwarn's exactly"
    if "*" in body:
        return "wildcards"
    path = body[2:].split("/", 1)[1] if body.startswith("||") and "/" in body else ""
    if body.endswith("^") or "^" in path:
        return "'^' is a separator class ('/', '?', '&', ...): an expression is a page or a folder"
    if path and not body.endswith("/"):
        return "a path is a string prefix in adblock; in linkwarn a page or a folder"
    if body.startswith("||") and "/" not in body:
        return "'||host' without '^' is a prefix of host names"
    return "other"


def adblock(folder: Path) -> tuple[Tally, Counter[str]]:
    tally = Tally("adblock-rust (filter, URL) pairs that linkwarn loads")
    refused: Counter[str] = Counter()
    requests = json.loads(read_gz(folder / "adblock-rust-matching-test-requests.json.gz"))
    for request in requests:
        for rule in request["filters"]:
            parsed = as_list_line(rule, ListFormat.ADBLOCK)
            if not parsed.rows:
                labels = [p.label for p in parsed.problems] or ["nothing"]
                refused[labels[0]] += 1
                continue
            try:
                verdict = check(request["url"], parsed.entries)
            except InvalidURL as exc:
                tally.add(False, "URL refused", f"{rule} {request['url']}: {exc}")
                continue
            want = Action.ALLOW if rule.startswith("@@") else Action.BLOCK
            tally.add(
                verdict is want,
                adblock_reason(rule, request["url"]),
                f"{rule} {request['url']}: linkwarn {verdict}",
            )
    return tally, refused


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared", help="the shared folder")
    parser.add_argument("--all", action="store_true", help="list every problem and every disagreement")
    args = parser.parse_args()
    real_lists(args.shared / "real-lists", args.all)
    peers = args.shared / "peer-vectors"
    tallies = chrome(peers)
    tallies.append(psl(peers))
    tallies.append(tldextract_cases(peers))
    pairs, refused = adblock(peers)
    tallies.append(pairs)
    print("## Peer test tables\n")
    print("| table | cases | agree | disagree | disagreements, by what in linkwarn's model explains them |")
    print("| --- | ---: | ---: | ---: | --- |")
    for tally in tallies:
        print(tally.row())
    print(
        f"\nChrome patterns read with --force, as Chrome has no such lint ({len(FORCED)}; linkwarn refuses "
        "them as public suffixes or whole shared platforms): " + ", ".join(sorted(FORCED))
    )
    total = sum(refused.values()) + pairs.cases
    print(
        f"\nadblock-rust pairs not loaded ({sum(refused.values()):,} of {total:,}), by why: "
        + ", ".join(f"{n:,} {label}" for label, n in refused.most_common())
    )
    for tally in tallies:
        lines = tally.details(args.all)
        if lines:
            print()
            print("\n".join(lines))


if __name__ == "__main__":
    main()
