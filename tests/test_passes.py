"""Passes on the listed origin: codes stripped, cookies taken off every forwarded request."""

from __future__ import annotations

from mitmproxy import http

from proxy_addon.origin import CODE_PARAM, SHARE_CODE_PARAM
from proxy_addon.passes import PASS_COOKIE, strip_code, take_passes


def test_strip_code_keeps_the_rest_of_the_query() -> None:
    assert strip_code(f"/a?{CODE_PARAM}=c") == ("/a", "c")
    assert strip_code(f"/a?x=1&{CODE_PARAM}=c") == ("/a?x=1", "c")
    assert strip_code(f"/a?{CODE_PARAM}=c&x=1") == ("/a?x=1", "c")
    assert strip_code(f"/a?x=1&{CODE_PARAM}=c&y=2") == ("/a?x=1&y=2", "c")
    assert strip_code("/a?x=1") == ("/a?x=1", None)
    assert strip_code(f"/a?x=1&{SHARE_CODE_PARAM}=s", SHARE_CODE_PARAM) == ("/a?x=1", "s")


def test_every_pass_cookie_is_taken_off_and_the_others_stay() -> None:
    request = http.Request.make(
        "GET", "http://a.test/", b"", {"cookie": f"a=1; {PASS_COOKIE}=x; {PASS_COOKIE}=y; b=2"}
    )
    assert take_passes(request) == ["x", "y"]
    assert request.headers["cookie"] == "a=1; b=2"
    only = http.Request.make("GET", "http://a.test/", b"", {"cookie": f"{PASS_COOKIE}=x"})
    assert take_passes(only) == ["x"]
    assert "cookie" not in only.headers
