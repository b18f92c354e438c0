"""The link finder: links in request bodies, however they are spelled or wrapped."""

from __future__ import annotations

import json
import time
from urllib.parse import quote, unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blocklists import InvalidURL, canonicalize
from blocklists.links import MAX_LINKS, find_links, is_text_type, percent_decoded

LISTED = "http://mirror.test/film"


def found(body: bytes | str, content_type: str) -> list[str]:
    return find_links(body.encode() if isinstance(body, str) else body, content_type)


def has(links: list[str], wanted: str = LISTED) -> bool:
    """Whether a link reads, as the matcher reads it, as *wanted* (or a page under it)."""
    return any(_canonical(link).startswith(canonicalize(wanted)) for link in links)


def _canonical(link: str) -> str:
    try:
        return canonicalize(link)
    except InvalidURL:
        return ""


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("status=see+http%3A%2F%2Fmirror.test%2Ffilm+now", "application/x-www-form-urlencoded"),
        ("a=http%253A%252F%252Fmirror.test%252Ffilm", "application/x-www-form-urlencoded"),  # escaped twice
        ("a=http://mirror.&b=test/film", "application/x-www-form-urlencoded"),  # split across fields
        ('{"text": "look: http:\\/\\/mirror.test\\/film"}', "application/json"),
        ('{"t": "\\u0068ttp://mirror.test/fil\\u006d"}', "application/json; charset=utf-8"),
        ('{"a": [{"b": {"c": ["deep http://mirror.test/film"]}}]}', "application/vnd.api+json"),
        ('<p><a href="http://mirror.test/film">x</a></p>', "text/html"),
        ("<p>http&#58;//mirror&#46;test/film</p>", "text/html"),
        ("go to mirror.test/film today", "text/plain"),
        ("mirror%2Etest%2Ffilm", "text/plain"),
        ("HTTP://MIRROR.TEST/film", "text/plain"),
        ("(see http://mirror.test/film).", "text/markdown"),
        ('{"x": "www.mirror.test/film"}', "application/json"),
        ("mirror\u3002test/film", "text/plain"),  # an ideographic full stop, which browsers read as "."
        ("see http://mirror.test\\film now", "text/plain"),  # a backslash, which browsers read as "/"
        ("see mirror.test\\film now", "text/plain"),
        ('{"x": "http&#58;//mirror.test/film"}', "application/json"),  # entities inside a JSON string
    ],
)
def test_a_listed_link_is_found_however_it_is_written(body: str, content_type: str) -> None:
    links = found(body, content_type)
    assert has(links) or has(links, "http://www.mirror.test/film"), links


@pytest.mark.parametrize(
    "link", ["http://168496141/share", "https://0x0a0b0c0d/", "http://[::ffff:10.11.12.13]/share", "http://[2001:db8::7]/",
             "http:\\\\intranet\\share"],
)  # fmt: skip
def test_a_link_to_a_host_without_a_dot_is_found(link: str) -> None:
    assert link in found(f"first a.example then {link} and more", "text/plain")
    assert link in found(f"a={quote(link, safe='')}&b=c", "application/x-www-form-urlencoded")


def test_multipart_text_parts_nested_are_read_and_binary_bodies_are_not_text() -> None:
    inner = "--inner\r\nContent-Type: text/plain\r\n\r\nhttp://mirror.test/film\r\n--inner--\r\n"
    body = (
        '--outer\r\nContent-Disposition: form-data; name="caption"\r\n\r\nhello\r\n'
        "--outer\r\nContent-Type: multipart/mixed; boundary=inner\r\n\r\n" + inner + "--outer--\r\n"
    )
    assert has(found(body, "multipart/form-data; boundary=outer"))
    assert not is_text_type("image/png")
    assert not is_text_type("application/octet-stream")
    assert is_text_type("application/activity+json")


def test_hundreds_of_unlisted_links_around_one_listed() -> None:
    posts = [{"text": f"read https://news{i}.example/story/{i}"} for i in range(300)]
    posts.insert(150, {"text": "and " + LISTED})
    links = found(json.dumps({"posts": posts}), "application/json")
    assert has(links)
    assert len(links) >= 301


def test_large_and_hostile_bodies_are_linear_and_bounded() -> None:
    for body in (
        "a." * 500_000,
        "http://" * 100_000,
        "%25" * 300_000,
        "x" * 1_000_000,
        "[" * 100_000,
        "{" * 200_000,
        " ".join(f"h{i}.example/p" for i in range(50_000)),
    ):
        started = time.perf_counter()
        links = found(body, "application/json")
        assert time.perf_counter() - started < 2.0
        assert len(links) <= MAX_LINKS


@pytest.mark.parametrize("body", [b"\xff\xfe\x00garbage", b"--x\r\n\r\n", b"", b"{", quote("%").encode()])
def test_malformed_bodies_never_crash(body: bytes) -> None:
    for content_type in ("multipart/form-data; boundary=x", "application/json", "text/html; charset=nope"):
        find_links(body, content_type)


@settings(max_examples=300)
@given(st.text(st.sampled_from("%%%0123456789abcdefABCDEFxyz+\\ü/."), max_size=40))
def test_percent_decoding_is_unquote(text: str) -> None:
    assert percent_decoded(text) == unquote(text)
