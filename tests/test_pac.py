"""PAC files evaluated by a real PAC engine (pacparser: Mozilla's JavaScript and PAC functions)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pacparser
import pytest

from proxy_addon.cli import main
from proxy_addon.pac import PAC_MEDIA_TYPE, parse_direct_patterns, render_pac

from .support.hooks import proxy_with


@pytest.fixture
def engine() -> Iterator[None]:
    pacparser.init()
    yield
    pacparser.cleanup()


def find_proxy(pac: str, url: str) -> str:
    pacparser.parse_pac_string(pac)
    host = url.split("://", 1)[1].split("/", 1)[0].split(":", 1)[0]
    return str(pacparser.find_proxy(url, host))


def test_everything_goes_to_the_proxy_but_the_direct_hosts(engine: None) -> None:
    pac = render_pac("proxy.corp.example:3128", ["intranet.example", "*.build.example"])
    assert find_proxy(pac, "https://leak.example/inbox") == "PROXY proxy.corp.example:3128"
    assert find_proxy(pac, "http://news.example/") == "PROXY proxy.corp.example:3128"
    assert find_proxy(pac, "https://intranet.example/") == "DIRECT"
    assert find_proxy(pac, "https://wiki.intranet.example/page") == "DIRECT"
    assert find_proxy(pac, "https://ci.build.example/") == "DIRECT"
    assert find_proxy(pac, "https://build.example/") == "PROXY proxy.corp.example:3128"  # *. means below it
    assert find_proxy(pac, "https://notintranet.example/") == "PROXY proxy.corp.example:3128"
    assert find_proxy(pac, "https://INTRANET.example/") == "DIRECT"


@pytest.mark.parametrize(
    "pattern", ["intra net.example", 'x.example"); alert(1', "*", "a.*.example", "http://x.example"]
)
def test_a_pattern_that_is_not_a_host_pattern_is_refused(pattern: str) -> None:
    with pytest.raises(ValueError, match="not a host pattern"):
        parse_direct_patterns([pattern])


def test_the_proxy_must_be_host_and_port() -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        render_pac('proxy.example:80"; return "DIRECT')


def test_linkwarn_pac_prints_one(engine: None) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert main(["pac", "--proxy", "10.0.0.5:8080", "--direct", "intranet.example"], out, err) == 0
    assert find_proxy(out.getvalue(), "https://leak.example/") == "PROXY 10.0.0.5:8080"
    assert find_proxy(out.getvalue(), "https://intranet.example/") == "DIRECT"
    assert main(["pac", "--proxy", "nothing"], io.StringIO(), err) == 2
    assert "HOST:PORT" in err.getvalue()


def test_the_help_says_direct_hosts_are_never_checked(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pac", "--help"]) == 0
    assert "never checks it" in " ".join(capsys.readouterr().out.split())


async def test_the_own_origin_serves_it_over_plain_http(tmp_path: Path, engine: None) -> None:
    async with proxy_with(tmp_path, [], linkwarn_pac_direct=["intranet.example"]) as proxy:
        flow = proxy.flow("http://linkwarn.internal/proxy.pac")
        flow.client_conn.sockname = ("192.0.2.10", 3128)
        await proxy.send(flow)
        assert flow.response is not None
        assert flow.response.status_code == 200
        assert flow.response.headers["content-type"] == PAC_MEDIA_TYPE
        pac = flow.response.get_text() or ""
        assert find_proxy(pac, "https://leak.example/") == "PROXY 192.0.2.10:3128"  # the address reached
        assert find_proxy(pac, "https://intranet.example/") == "DIRECT"
    async with proxy_with(tmp_path / "lb", [], linkwarn_pac_proxy="proxy.corp.example:8080") as proxy:
        flow = await proxy.request("http://linkwarn.internal/proxy.pac")
        assert flow.response is not None
        assert (
            find_proxy(flow.response.get_text() or "", "https://leak.example/")
            == "PROXY proxy.corp.example:8080"
        )


async def test_bad_pac_options_are_refused(tmp_path: Path) -> None:
    from mitmproxy.exceptions import OptionsError

    with pytest.raises(OptionsError, match="not a host pattern"):
        async with proxy_with(tmp_path, [], linkwarn_pac_direct=["a b"]):
            pass
