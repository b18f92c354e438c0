"""The settings table: each setting once, as a mitmproxy option, a ``linkwarn run`` flag and a README row."""

from __future__ import annotations

import argparse
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from proxy_addon.cli import build_parser
from proxy_addon.settings import OPTIONS, add_run_flags, parse_settings, readme_table, run_updates

README = Path(__file__).parent.parent / "README.md"


def defaults(**changes: Any) -> SimpleNamespace:
    values = {option.name: option.default for option in OPTIONS} | changes
    return SimpleNamespace(**values)


def test_the_readme_shows_the_table_made_from_the_settings() -> None:
    text = README.read_text("utf-8")
    start = text.index("<!-- options:")
    table = text[text.index("\n", start) + 1 : text.index("<!-- /options -->")]
    assert table == readme_table(), (
        "run: python -c 'from proxy_addon.settings import readme_table; print(readme_table())'"
    )


def test_every_flag_is_a_linkwarn_run_flag_and_sets_its_option() -> None:
    parser = build_parser()
    args = parser.parse_args(["run"])
    assert run_updates(args) == {o.name: o.default for o in OPTIONS if o.flag is not None}
    changed = parser.parse_args(["run", "--no-proceed", "--require-reason", "--proceed-ttl", "2m",
                                 "--own-host", "warn.example", "--reports-per-hour", "3"])  # fmt: skip
    updates = run_updates(changed)
    assert updates["linkwarn_proceed"] is False
    assert updates["linkwarn_require_reason"] is True
    assert updates["linkwarn_proceed_ttl"] == "2m"
    assert updates["linkwarn_own_host"] == "warn.example"
    assert updates["linkwarn_reports_per_hour"] == 3


def test_flags_are_unique_and_named_after_the_option() -> None:
    flags = [o.flag for o in OPTIONS if o.flag]
    assert len(flags) == len(set(flags))
    parser = argparse.ArgumentParser()
    add_run_flags(parser)
    for option in OPTIONS:
        assert option.name.startswith("linkwarn_")
        assert option.help.strip()


def test_the_defaults_are_valid_settings() -> None:
    settings = parse_settings(defaults())
    assert settings.own_host == "linkwarn.internal"
    assert settings.proceed_seconds == 900
    assert settings.reports_per_hour == 10


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"linkwarn_proceed_ttl": "soon"}, "linkwarn_proceed_ttl: invalid duration"),
        ({"linkwarn_feed_interval": "5s"}, "linkwarn_feed_interval must be at least 30s"),
        ({"linkwarn_own_host": "10.0.0.1"}, "linkwarn_own_host"),
        ({"linkwarn_own_host": "bad host"}, "linkwarn_own_host"),
        ({"linkwarn_own_host": ""}, "linkwarn_own_host"),
        ({"linkwarn_contact": "javascript:alert(1)"}, "linkwarn_contact"),
        ({"linkwarn_help_text": "x" * 2001}, "linkwarn_help_text is longer than 2000"),
        ({"linkwarn_org_name": "a\x1bb"}, "linkwarn_org_name holds control characters"),
        ({"linkwarn_reports_per_hour": -1}, "linkwarn_reports_per_hour"),
        ({"linkwarn_api_port": -1}, "linkwarn_api_port"),
        ({"linkwarn_feeds": ["http://x.test/"]}, "linkwarn_feeds"),
    ],
)
def test_bad_values_name_the_option(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_settings(defaults(**changes))


def test_the_own_host_is_normalized() -> None:
    assert parse_settings(defaults(linkwarn_own_host="Warn.Corp.Example.")).own_host == "warn.corp.example"


async def test_linkwarn_run_keeps_mitmproxys_proxy_core_and_safety_nets() -> None:
    from mitmproxy import options
    from mitmproxy.master import Master

    from proxy_addon.runner import mitmproxy_addons

    master = Master(options.Options())
    master.addons.add(*mitmproxy_addons())
    for name in ("block_global", "proxyauth", "upstream_auth", "ssl_insecure", "stream_large_bodies",
                 "ignore_hosts", "scripts", "mode", "connection_strategy", "dns_name_servers"):  # fmt: skip
        assert name in master.options, name
    assert "modify_headers" not in master.options  # mitmdump's toolbox stays out
