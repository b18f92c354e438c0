"""linkwarn's settings: each defined once, as a mitmproxy option, a ``linkwarn run`` flag and a README row.

`OPTIONS` is the one table. `add_options` registers it with mitmproxy (so
``mitmdump -s proxy_addon/addon.py --set linkwarn_...`` takes the same names),
`add_run_flags` turns it into ``linkwarn run`` flags, and `readme_table` into
the README's option table, which a test keeps in step with this file.
`parse_settings` validates the options into one frozen `Settings`, raising
`ValueError` that names the bad option; the addon turns that into mitmproxy's
`OptionsError`, which rolls the whole change back.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from mitmproxy.utils import human

from blocklists import default_data_dir
from blocklists.entry import parse_duration
from blocklists.feed import FeedError
from blocklists.sync import FeedSubscription, parse_subscription
from proxy_addon.pac import parse_direct_patterns
from proxy_addon.syslog import SyslogTarget, parse_syslog_target

__all__ = [
    "DEFAULT_OWN_HOST",
    "OPTIONS",
    "Listen",
    "Option",
    "Organisation",
    "Settings",
    "add_options",
    "add_run_flags",
    "parse_listen",
    "parse_settings",
    "readme_table",
]

DEFAULT_OWN_HOST = "linkwarn.internal"
SECRET_ENV = "LINKWARN_SECRET"  # noqa: S105 - the name of an environment variable
MIN_FEED_INTERVAL = 30
MAX_TEXT = 2000
_HOST_NAME = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$"
)


@dataclass(frozen=True, slots=True)
class Option:
    """One setting: its mitmproxy option, its ``linkwarn run`` flag (None: none) and its help."""

    name: str
    type: Any
    default: Any
    help: str
    flag: str | None = None
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    shown_default: str | None = None  # for the README, where the default is not literal


OPTIONS: tuple[Option, ...] = (
    Option("linkwarn_data_dir", str, "",
           "Directory of linkwarn's store and secrets (default: $LINKWARN_DATA_DIR, "
           "else ~/.local/share/linkwarn).",
           shown_default="`~/.local/share/linkwarn`"),
    Option("linkwarn_fail_mode", str, "open",
           "What to do when the lists cannot be used: 'open' lets traffic through and logs loudly; "
           "'closed' answers every request with an error.",
           flag="--fail-mode", choices=("open", "closed")),
    Option("linkwarn_proceed", bool, True,
           "Offer 'Proceed anyway' on the warning page of 'warn' entries. Off: no way through anywhere.",
           flag="--no-proceed"),
    Option("linkwarn_proceed_ttl", str, "15m",
           "How long a proceed pass lasts, as a duration (90s, 15m, 2h).",
           flag="--proceed-ttl", metavar="DURATION"),
    Option("linkwarn_require_reason", bool, False,
           "Ask for a typed reason before 'Proceed anyway' for every 'warn' entry (entries can also ask "
           "for one themselves); the reason is stored with the proceed event.",
           flag="--require-reason"),
    Option("linkwarn_own_host", str, DEFAULT_OWN_HOST,
           "The host name linkwarn answers itself (warning page, Proceed, Report, CA certificate) and "
           "never forwards. Browsers reach it only through the proxy.",
           flag="--own-host", metavar="HOST"),
    Option("linkwarn_org_name", str, "",
           "Your organisation's name, shown on the warning page.", flag="--org-name", metavar="NAME"),
    Option("linkwarn_contact", str, "",
           "Whom to ask about a warning: an e-mail address or an http(s) URL, shown on the warning page.",
           flag="--contact", metavar="MAIL_OR_URL"),
    Option("linkwarn_help_text", str, "",
           "A short text of your own for the warning page (plain text, up to 2000 characters).",
           flag="--help-text", metavar="TEXT"),
    Option("linkwarn_reports_per_hour", int, 10,
           "How many 'report a mistake' forms one client may send an hour; more are refused.",
           flag="--reports-per-hour", metavar="N"),
    Option("linkwarn_secret", str, "",
           "Secret that signs tickets and passes (16 characters or more), for a fleet whose proxies "
           "accept each other's passes. Prefer linkwarn_secret_file or $LINKWARN_SECRET: a command "
           "line is visible to every user of the machine.",
           shown_default="random, in the data dir"),
    Option("linkwarn_secret_file", str, "",
           "A file holding the fleet secret (see linkwarn_secret); $LINKWARN_SECRET works too.",
           flag="--secret-file", metavar="FILE"),
    Option("linkwarn_events_jsonl", str, "",
           "Also append every event (warning, block, proceed, audit, report) as a JSON line to this "
           "file, for a log pipeline.",
           flag="--events-jsonl", metavar="FILE"),
    Option("linkwarn_events_days", int, 90,
           "Keep events (warnings, blocks, proceeds, reports) this many days in the store; older ones are "
           "deleted hourly. 0: keep them all.",
           flag="--events-days", metavar="DAYS"),
    Option("linkwarn_sample", bool, True,
           "Load the bundled sample list (hosts under .example and .test) when the store has no lists "
           "at all.",
           flag="--no-sample"),
    Option("linkwarn_feeds", Sequence[str], [],
           "Signed feeds to follow, each 'URL KEY [KEY...]' where KEY is the publisher's 'ed25519:...' "
           "public key or a file holding it. (linkwarn run: --feed URL --feed-key KEY.)",
           shown_default="none"),
    Option("linkwarn_feed_interval", str, "5m",
           "How often to poll each feed (never sooner than 30s, nor than the feed's own minimum).",
           flag="--feed-interval", metavar="DURATION"),
    Option("linkwarn_api_port", int, 8089,
           "Port of the local API for the browser extension, on 127.0.0.1 only. 0: no API.",
           flag="--api-port", metavar="PORT"),
    Option("linkwarn_metrics", str, "",
           "Serve Prometheus metrics at /metrics, and /healthz and /readyz for load balancers, on "
           "HOST:PORT (a bare PORT listens on 127.0.0.1). No URL or client address is ever a label.",
           flag="--metrics", metavar="HOST:PORT"),
    Option("linkwarn_events_syslog", str, "",
           "Also send every event to this syslog collector, udp://HOST:PORT or tcp://HOST:PORT, as an "
           "RFC 5424 message holding the event as JSON. A slow or absent collector never slows requests; "
           "the store keeps its copy.",
           flag="--events-syslog", metavar="URL"),
    Option("linkwarn_pac_proxy", str, "",
           "The proxy address the PAC file at http://OWN_HOST/proxy.pac names, HOST:PORT (default: the "
           "address the browser reached this proxy on). Behind a load balancer, give its name.",
           flag="--pac-proxy", metavar="HOST:PORT", shown_default="the address reached"),
    Option("linkwarn_pac_direct", Sequence[str], [],
           "Host patterns (intranet.example, *.corp.example) the PAC file sends DIRECT, bypassing the "
           "proxy: linkwarn never sees, and never checks, a request to them.",
           shown_default="none"),
    Option("linkwarn_share", bool, True,
           "Warn before a post passes a listed link on: text bodies of POST, PUT and PATCH requests are "
           "scanned for links, and one holding a block or warn link is held back.",
           flag="--no-share"),
    Option("linkwarn_share_max_body", str, "1m",
           "The largest request body scanned for links (1m, 256k); larger ones pass unscanned.",
           flag="--share-max-body", metavar="SIZE"),
    Option("linkwarn_share_sites", Sequence[str], [],
           "The sites where posts are scanned for links, and which are decrypted for it, listed or not "
           "(host names; a name covers its subdomains). Replaces the bundled list of social networks, "
           "webmail, chat and paste sites (proxy_addon/share_sites.txt); '*' is every site.",
           flag="--share-site", metavar="HOST", shown_default="the bundled list"),
    Option("linkwarn_intercept", str, "listed",
           "Which TLS connections are decrypted: 'listed', only hosts an entry could match and the share "
           "sites (every other one passes as an untouched tunnel); 'all', every one.",
           flag="--intercept", choices=("listed", "all")),
)  # fmt: skip


def add_options(loader: Any) -> None:
    """Register every option with mitmproxy's loader."""
    for option in OPTIONS:
        loader.add_option(option.name, option.type, option.default, option.help, choices=option.choices)


def add_run_flags(parser: argparse.ArgumentParser) -> None:
    """The ``linkwarn run`` flags of the options that have one; each stores into the option's name."""
    for option in OPTIONS:
        if option.flag is None:
            continue
        if option.type is bool:
            parser.add_argument(
                option.flag,
                dest=option.name,
                action="store_false" if option.default else "store_true",
                help=option.help,
            )
        elif option.type == Sequence[str]:
            parser.add_argument(
                option.flag, dest=option.name, action="append", default=None, metavar=option.metavar,
                help=option.help + " (repeatable)",
            )  # fmt: skip
        else:
            parser.add_argument(
                option.flag,
                dest=option.name,
                type=option.type,
                default=option.default,
                choices=option.choices,
                metavar=option.metavar,
                help=f"{option.help} (default: {option.default})" if option.default != "" else option.help,
            )


def run_updates(args: argparse.Namespace) -> dict[str, Any]:
    """The option values a parsed ``linkwarn run`` command line sets."""
    updates = {option.name: getattr(args, option.name) for option in OPTIONS if option.flag is not None}
    return {name: [] if value is None else value for name, value in updates.items()}


def _default_text(option: Option) -> str:
    if option.shown_default is not None:
        return option.shown_default
    if option.type is bool:
        return "`true`" if option.default else "`false`"
    return f"`{option.default}`" if option.default != "" else "off"


def readme_table() -> str:
    """The README's option table, made from `OPTIONS`."""
    rows = ["| option | `linkwarn run` flag | default | meaning |", "| --- | --- | --- | --- |"]
    for option in OPTIONS:
        flag = f"`{option.flag}`" if option.flag else ""
        rows.append(f"| `{option.name}` | {flag} | {_default_text(option)} | {option.help} |")
    return "\n".join(rows) + "\n"


@dataclass(frozen=True, slots=True)
class Listen:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_listen(text: str) -> Listen:
    """``PORT``, ``:PORT``, ``HOST:PORT`` or ``[V6]:PORT`` (loopback unless a host is given); ValueError."""
    value = text.strip()
    host, port = "127.0.0.1", value
    if value.startswith("["):
        end = value.find("]:")
        if end < 0:
            raise ValueError(f"{text!r} is not HOST:PORT")
        host, port = value[1:end], value[end + 2 :]
    elif ":" in value:
        host, _, port = value.rpartition(":")
        host = host or "127.0.0.1"
    if not port.isdigit() or not 0 < int(port) <= 65535:
        raise ValueError(f"{text!r} is not HOST:PORT with a port from 1 to 65535")
    if not host or any(c.isspace() or c in "/?#@" for c in host):
        raise ValueError(f"{text!r} has no usable host")
    return Listen(host, int(port))


@dataclass(frozen=True, slots=True)
class Organisation:
    """What the warning page says about who runs it. All of it is escaped when shown."""

    name: str = ""
    contact: str = ""
    help_text: str = ""

    @property
    def contact_link(self) -> str | None:
        """A mailto: or http(s) link for the contact, or None when it is neither."""
        value = self.contact
        if re.fullmatch(r"[^@\s<>\"']+@[^@\s<>\"']+", value):
            return f"mailto:{value}"
        if re.fullmatch(r"https?://[^\s<>\"']+", value, re.IGNORECASE):
            return value
        return None


@dataclass(frozen=True, slots=True)
class Settings:
    """The options, validated: built in `configure`, replaced whole on change."""

    data_dir: Path
    fail_closed: bool
    proceed: bool
    proceed_seconds: int
    require_reason: bool
    own_host: str
    organisation: Organisation
    reports_per_hour: int
    secret_text: str  # "" : the data directory's own (or the file, or the environment)
    secret_file: Path | None
    events_jsonl: Path | None
    sample: bool
    feeds: tuple[FeedSubscription, ...]
    feed_interval: int
    api_port: int
    metrics: Listen | None = None
    events_syslog: SyslogTarget | None = None
    pac_proxy: Listen | None = None
    pac_direct: tuple[str, ...] = ()
    share: bool = True
    share_max_body: int = 1024 * 1024
    share_sites: frozenset[str] = frozenset()
    share_everywhere: bool = False  # share_sites is '*'
    intercept_all: bool = False

    def scans_posts_to(self, host: str) -> bool:
        """Whether posts to *host* are scanned for links: a share site or a subdomain of one."""
        if not self.share:
            return False
        if self.share_everywhere:
            return True
        labels = host.lower().rstrip(".").split(".")
        sites = self.share_sites
        return any(".".join(labels[at:]) in sites for at in range(len(labels) - 1))

    ca_cert: Path | None = None
    events_days: int = 90
    ignore_hosts: tuple[str, ...] = ()  # mitmproxy's own options, read for what they mean to the lists
    allow_hosts: tuple[str, ...] = ()

    def passes_untouched(self, host: str) -> bool:
        """Whether mitmproxy's ignore_hosts/allow_hosts would relay *host*'s TLS tunnels untouched."""
        addresses = (f"{host}:443", f"{host}:80")
        if self.allow_hosts and not any(
            re.search(rex, a, re.IGNORECASE) for rex in self.allow_hosts for a in addresses
        ):
            return True
        return any(re.search(rex, a, re.IGNORECASE) for rex in self.ignore_hosts for a in addresses)


def _duration(options: Any, name: str) -> int:
    try:
        return parse_duration(getattr(options, name))
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None


def _size(options: Any, name: str) -> int:
    value = str(getattr(options, name)).strip().lower()
    try:
        size = human.parse_size(value)
    except ValueError:
        size = None
    if size is None:
        raise ValueError(f"{name} must be a size such as 256k or 1m, not {value!r}")
    return size


def bundled_share_sites() -> list[str]:
    """The bundled list of sites where people post links (``proxy_addon/share_sites.txt``)."""
    text = resources.files("proxy_addon").joinpath("share_sites.txt").read_text("utf-8")
    return [line for line in (raw.split("#", 1)[0].strip() for raw in text.splitlines()) if line]


def _sites(values: Sequence[str]) -> tuple[frozenset[str], bool]:
    """The share sites as given (else the bundled list), and whether they are every site ('*')."""
    if list(values) == ["*"]:
        return frozenset(), True
    sites = set()
    for value in values or bundled_share_sites():
        site = value.strip().lower().rstrip(".").removeprefix("*.")
        if not _HOST_NAME.match(site):
            raise ValueError(f"linkwarn_share_sites: {value!r} is not a host name ('*' alone: every site)")
        sites.add(site)
    return frozenset(sites), False


def _text(options: Any, name: str) -> str:
    value: str = getattr(options, name)
    if len(value) > MAX_TEXT:
        raise ValueError(f"{name} is longer than {MAX_TEXT} characters")
    if any(ord(c) < 0x20 and c not in "\n\t" for c in value):
        raise ValueError(f"{name} holds control characters")
    return value.strip()


def parse_settings(options: Any) -> Settings:
    """Turn mitmproxy options into `Settings`; raises ValueError naming the bad option."""
    share_sites, share_everywhere = _sites(options.linkwarn_share_sites)
    seconds = _duration(options, "linkwarn_proceed_ttl")
    if seconds <= 0:
        raise ValueError("linkwarn_proceed_ttl must be longer than zero")
    try:
        feeds = tuple(parse_subscription(text) for text in options.linkwarn_feeds)
    except FeedError as exc:
        raise ValueError(f"linkwarn_feeds: {exc}") from None
    feed_interval = _duration(options, "linkwarn_feed_interval")
    if feed_interval < MIN_FEED_INTERVAL:
        raise ValueError(f"linkwarn_feed_interval must be at least {MIN_FEED_INTERVAL}s")
    if options.linkwarn_fail_mode not in ("open", "closed"):
        raise ValueError(f"linkwarn_fail_mode must be 'open' or 'closed', not {options.linkwarn_fail_mode!r}")
    if options.linkwarn_intercept not in ("listed", "all"):
        raise ValueError(f"linkwarn_intercept must be 'listed' or 'all', not {options.linkwarn_intercept!r}")
    secret_text = options.linkwarn_secret
    if secret_text and len(secret_text.strip().encode()) < 16:
        raise ValueError("linkwarn_secret must be at least 16 characters")
    own_host = options.linkwarn_own_host.strip().lower().rstrip(".")
    if not _HOST_NAME.match(own_host) or own_host.replace(".", "").isdigit():
        given = options.linkwarn_own_host
        raise ValueError(f"linkwarn_own_host must be a host name such as {DEFAULT_OWN_HOST}, not {given!r}")
    port = options.linkwarn_api_port
    if not 0 <= port <= 65535:
        raise ValueError(f"linkwarn_api_port must be 0 (off) or a port up to 65535, not {port}")
    if options.linkwarn_events_days < 0:
        raise ValueError(
            f"linkwarn_events_days must be 0 (keep all) or more, not {options.linkwarn_events_days}"
        )
    reports = options.linkwarn_reports_per_hour
    if reports < 0:
        raise ValueError(f"linkwarn_reports_per_hour must be 0 or more, not {reports}")
    organisation = Organisation(
        name=_text(options, "linkwarn_org_name"),
        contact=_text(options, "linkwarn_contact"),
        help_text=_text(options, "linkwarn_help_text"),
    )
    if organisation.contact and organisation.contact_link is None:
        raise ValueError(
            f"linkwarn_contact must be an e-mail address or an http(s) URL, not {organisation.contact!r}"
        )
    try:
        metrics = parse_listen(options.linkwarn_metrics) if options.linkwarn_metrics else None
    except ValueError as exc:
        raise ValueError(f"linkwarn_metrics: {exc}") from None
    try:
        syslog = (
            parse_syslog_target(options.linkwarn_events_syslog) if options.linkwarn_events_syslog else None
        )
    except ValueError as exc:
        raise ValueError(f"linkwarn_events_syslog: {exc}") from None
    try:
        pac_proxy = parse_listen(options.linkwarn_pac_proxy) if options.linkwarn_pac_proxy else None
        pac_direct = parse_direct_patterns(options.linkwarn_pac_direct)
    except ValueError as exc:
        raise ValueError(f"linkwarn_pac_proxy/linkwarn_pac_direct: {exc}") from None
    confdir = getattr(options, "confdir", None)
    return Settings(
        data_dir=Path(options.linkwarn_data_dir).expanduser()
        if options.linkwarn_data_dir
        else default_data_dir(),
        fail_closed=options.linkwarn_fail_mode == "closed",
        proceed=options.linkwarn_proceed,
        proceed_seconds=seconds,
        require_reason=options.linkwarn_require_reason,
        own_host=own_host,
        organisation=organisation,
        reports_per_hour=reports,
        secret_text=secret_text.strip(),
        secret_file=Path(options.linkwarn_secret_file).expanduser() if options.linkwarn_secret_file else None,
        events_jsonl=Path(options.linkwarn_events_jsonl).expanduser()
        if options.linkwarn_events_jsonl
        else None,
        sample=options.linkwarn_sample,
        feeds=feeds,
        feed_interval=feed_interval,
        api_port=port,
        metrics=metrics,
        events_syslog=syslog,
        pac_proxy=pac_proxy,
        pac_direct=pac_direct,
        share=options.linkwarn_share,
        share_max_body=_size(options, "linkwarn_share_max_body"),
        share_sites=share_sites,
        share_everywhere=share_everywhere,
        intercept_all=options.linkwarn_intercept == "all",
        ca_cert=Path(confdir).expanduser() / "mitmproxy-ca-cert.pem" if confdir else None,
        events_days=options.linkwarn_events_days,
        ignore_hosts=tuple(getattr(options, "ignore_hosts", ()) or ()),
        allow_hosts=tuple(getattr(options, "allow_hosts", ()) or ()),
    )
