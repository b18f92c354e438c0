from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blocklists import (
    InvalidURL,
    canonicalize,
    canonicalize_traced,
    expression_for,
    expressions,
    expressions_of,
)
from blocklists.canonical import (
    MAX_URL_LENGTH,
    _unescape,
    canonicalize_partial,
    plain_canonical_host,
    plain_host,
    registrable_domain,
)

from .conftest import load_vectors

CANONICAL = load_vectors("canonical.json")
EXPRESSIONS = load_vectors("expressions.json")


@pytest.mark.parametrize("case", CANONICAL, ids=lambda c: f"{c['group']}:{c['input'][:40]!r}")
def test_canonical_vector(case: dict[str, str]) -> None:
    if "canonical" in case:
        assert canonicalize(case["input"]) == case["canonical"]
    else:
        with pytest.raises(InvalidURL, match=re.escape(case["error"])):
            canonicalize(case["input"])


@pytest.mark.parametrize("case", EXPRESSIONS, ids=lambda c: c["input"][:50])
def test_expression_vector(case: dict[str, object]) -> None:
    assert expressions(str(case["input"])) == case["expressions"]


def test_vectors_cover_every_rule() -> None:
    groups = {case["group"] for case in CANONICAL}
    assert groups >= {
        "sb", "unescape", "escape", "ipv4", "ipv6", "idn", "dots", "path", "port",
        "userinfo", "fragment", "whitespace", "scheme", "junk", "long",
    }  # fmt: skip


def test_at_most_five_hosts_and_six_paths() -> None:
    found = expressions("http://a.b.c.d.e.f.leak.test/1/2/3/4/5/6.html?q=1")
    assert len(found) == 30
    assert len({e.split("/", 1)[0] for e in found}) == 5
    assert len({e.split("/", 1)[1] for e in found}) == 6


def test_invalid_url_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="no host"):
        canonicalize("http://")


def test_not_a_string_is_refused() -> None:
    with pytest.raises(InvalidURL, match="expected a URL string"):
        canonicalize(b"http://leak.test/")  # type: ignore[arg-type]


def test_very_long_url_is_refused_with_its_length() -> None:
    with pytest.raises(InvalidURL, match=f"over the limit of {MAX_URL_LENGTH}"):
        canonicalize("http://leak.test/" + "a" * MAX_URL_LENGTH)


def test_hostile_escapes_stay_linear() -> None:
    # 60 KB of escapes nested 30,000 deep ("%252525...25" is "%" after 30,000
    # passes): unescaping with repeated whole-string passes would take minutes.
    url = "http://leak.test/%" + "25" * 30000
    assert canonicalize(url) == "http://leak.test/%25"


def test_trace_names_the_steps() -> None:
    steps = canonicalize_traced("http://%E4%BE%8B.test:80/a/./b#f").steps
    assert "dropped the fragment" in steps
    assert "dropped the port" in steps
    assert any("punycode 'xn--fsq.test'" in step for step in steps)
    assert any("'/a/./b' -> '/a/b'" in step for step in steps)


def test_registrable_domain_uses_private_suffixes_offline() -> None:
    assert registrable_domain("a.b.blogspot.com") == "b.blogspot.com"
    assert registrable_domain("www.example.co.uk") == "example.co.uk"
    assert registrable_domain("co.uk") == ""
    assert registrable_domain("x.leak.test") == "leak.test"


def _unescape_naively(text: str) -> str:
    """The specification's wording: unescape the whole string until nothing changes."""
    pattern = re.compile(r"%([0-9a-fA-F]{2})")
    while True:
        decoded = pattern.sub(lambda m: chr(int(m.group(1), 16)), text)
        if decoded == text:
            return text
        text = decoded


@given(st.text(alphabet="%2534Aa7fz", max_size=40))
def test_linear_unescape_equals_repeated_unescape(text: str) -> None:
    assert _unescape(text) == _unescape_naively(text)


url_chars = st.sampled_from(list("abcXYZ019-._~/%25%2e%2F?&=# @:\t\u00e9\u4f8b"))


@given(st.lists(url_chars, max_size=30).map("".join))
def test_canonical_form_is_stable(path: str) -> None:
    try:
        once = canonicalize("http://leak.test/" + path)
    except InvalidURL:
        return
    # A "%3F" in the path stays escaped, so the canonical form is a fixed point.
    assert canonicalize(once) == once


anything = st.text(
    alphabet=st.characters(codec=None, exclude_categories=())
    | st.sampled_from(list("%/\\?#@:[].\udcff\ud800")),
    max_size=60,
)
schemes = st.sampled_from(["http://", "https://", "", "HTTP://", "//", "http:\\\\", "ftp://", "javascript:"])


@given(scheme=schemes, rest=anything)
def test_canonicalization_raises_nothing_but_invalid_url(scheme: str, rest: str) -> None:
    for canonical in (canonicalize_traced, canonicalize_partial):
        try:
            result = canonical(scheme + rest)
        except InvalidURL:
            continue
        assert result.host
        assert all(0x21 <= ord(c) < 0x7F for c in result.url), result.url  # escaped, one clean line


@given(
    scheme=st.sampled_from(["http://", "https://"]),
    host=st.sampled_from(["leak.test", "a.b.c.leak.test", "10.1.2.3", "[2001:db8::1]", "b\u00fccher.test"]),
    path=st.lists(url_chars, max_size=20).map("".join),
)
def test_every_expression_of_a_url_is_the_expression_of_an_entry_made_from_it(
    scheme: str, host: str, path: str
) -> None:
    """The list side and the request side agree: list any expression of a URL, and the URL matches it."""
    try:
        found = expressions(scheme + host + "/" + path)
    except InvalidURL:
        return
    for expression in found:
        assert expression_for(expression) == expression
        assert expression in expressions_of(canonicalize_traced("http://" + expression))


# -- the shortcuts for plain host names ---------------------------------------------------

_LDH = st.text("abcXYZ0123456789-", min_size=1, max_size=12)
_SPECIAL_LABELS = ["0x7f", "0", "08", "255", "4294967295", "xn--nxasmq6b", "ex"]


@given(
    labels=st.lists(_LDH | st.sampled_from(_SPECIAL_LABELS), min_size=1, max_size=5),
    trailing=st.booleans(),
    path=st.sampled_from(["/", "/a/b.html", "?q=1", "#f", ""]),
    port=st.sampled_from(["", ":80", ":", ":99999"]),
    scheme=st.sampled_from(["http", "https", "HTTPS"]),
)
def test_the_plain_host_shortcuts_read_what_canonicalization_reads(
    labels: list[str], trailing: bool, path: str, port: str, scheme: str
) -> None:
    name = ".".join(labels) + ("." if trailing else "")
    url = f"{scheme}://{name}{port}{path}"
    try:
        canonical = canonicalize_traced(url)
    except InvalidURL:
        try:
            canonical = canonicalize_partial(url)
        except InvalidURL:
            canonical = None
    host = plain_host(url)
    assert host == name  # every such authority is plain
    shortcut = plain_canonical_host(host)
    if shortcut is None:
        return  # an xn-- label: read the long way
    assert canonical is not None, url
    assert shortcut == (canonical.host, canonical.is_ip), url


@pytest.mark.parametrize(
    "url",
    ["http://user@mirror.test/", "http://mirror.test\\x/", "http://mirror%2Etest/", "http:///mirror.test/",
     "http://mirror.test:8080x/", "http://[::1]/", "http://bücher.test/", " http://mirror.test/",
     "http://mir\tror.test/", "ftp://mirror.test/", "http:mirror.test"],
)  # fmt: skip
def test_an_authority_that_is_not_plain_is_read_the_long_way(url: str) -> None:
    assert plain_host(url) is None
