from __future__ import annotations

import pytest

from proxy_addon.answers import header_safe, redirect_response, referrer_host


@pytest.mark.parametrize(
    "value", ["a\r\nSet-Cookie: x=1", "a\nb", "a\rb", "\x00", "ä", "a\tb", "\x7f", "\u2028", "\udcff"]
)
def test_no_control_byte_or_non_ascii_survives(value: str) -> None:
    for url in (False, True):
        safe = header_safe(value, url=url)
        assert all(0x20 <= ord(c) < 0x7F for c in safe), safe
    assert " " not in header_safe("a b", url=True)
    assert header_safe("warn; entry=x/") == "warn; entry=x/"


def test_a_redirect_location_is_always_one_clean_line() -> None:
    response = redirect_response("https://leak.test/a\r\nSet-Cookie: x=1 y")
    assert response.headers["location"] == "https://leak.test/a%0D%0ASet-Cookie:%20x=1%20y"
    assert "set-cookie" not in response.headers


@pytest.mark.parametrize(
    ("value", "host"), [("https://a.test/x", "a.test"), ("http://[bad", None), (None, None), ("", None)]
)
def test_referrer_host(value: str | None, host: str | None) -> None:
    assert referrer_host(value) == host
