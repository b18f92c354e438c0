"""The link finder: links in request bodies, however they are spelled or wrapped."""

from __future__ import annotations

import json
import time
from urllib.parse import quote, unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blocklists import InvalidURL, canonicalize, links
from blocklists.canonical import canonicalize_traced, plain_host
from blocklists.links import (
    MAX_FIELDS,
    MAX_LINKS,
    _form_fields,
    _form_fields_of,
    _link_hosts,
    find_links,
    is_text_type,
    link_hosts,
    percent_decoded,
)

LISTED = "http://mirror.test/film"


LISTED_HOSTS = frozenset({"mirror.test", "leak.example", "10.11.12.13", "a.b", "a.example9"})


def found(body: bytes | str, content_type: str) -> list[str]:
    return find_links(body.encode() if isinstance(body, str) else body, content_type)


def may_list(name: str) -> bool:
    """A host test as `Checker.reads_host` answers it, over LISTED_HOSTS: the host or a parent."""
    try:
        host = canonicalize_traced(f"http://{name}/").host
    except InvalidURL:
        return True
    labels = host.split(".")
    return any(".".join(labels[at:]) in LISTED_HOSTS for at in range(len(labels)))


def may_match(link: str) -> bool:
    """As `Checker.may_match` screens a link, over LISTED_HOSTS."""
    host = plain_host(link)
    return host is None or may_list(host)


def screened(body: bytes | str, content_type: str) -> list[str]:
    """The links a share guard screens: found with the host test, those that may match."""
    raw = body.encode() if isinstance(body, str) else body
    return [link for link in find_links(raw, content_type, may_list) if may_match(link)]


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
        ("read \u201chttp://mirror.test/film\u201d now", "text/plain"),  # typographic quotes end a link
        ("\u00abmirror.test/film\u00bb \u2018http://mirror.test/film\u2019", "text/plain"),
        ("\u201ehttp://mirror.test/film\u201c", "text/markdown"),
    ],
)
def test_a_listed_link_is_found_however_it_is_written(body: str, content_type: str) -> None:
    links = found(body, content_type)
    assert has(links) or has(links, "http://www.mirror.test/film"), links
    links = screened(body, content_type)  # and with its host screened first, as a share guard finds it
    assert has(links) or has(links, "http://www.mirror.test/film"), links


def test_a_link_in_typographic_quotes_is_read_without_them() -> None:
    """A host quoted so (\u201c\u2026\u201d) once read as mirror.xn--test-jb7a, and missed its entry."""
    assert found("say \u201chttps://mirror.test\u201d", "text/plain") == ["https://mirror.test"]
    assert found("\u00abmirror.test/film\u00bb", "text/plain") == ["http://mirror.test/film"]


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


# What a post's text is made of, where a host test could be fooled: schemes, escapes, user
# names, ports, brackets, punctuation around links, letters that are no ASCII, full stops.
FRAGMENTS = [
    "http://", "https://", "HTTPS://", "ftp://", "http:\\\\", "//", "www.", "mirror", "test", "leak",
    "example", "a", "b", "x9", "10", "11.12.13", "0x7f", ".", "..", "-", "_", "@", "%", "%2E", "%2e", "%2F",
    "%3A", "%25", "%252E", ":", ":8080", "/", "\\", "?", "#", "[", "]", "[::ffff:", "(", ")", ",", ";", "!",
    "=", "&", "+", " ", "\n", "\t", "'", '"', "<", ">", "{", "|", "`", "^", "&#46;", "&amp;", "&#x2F;",
    "\\u002e", "\\/", "é", "ü", "\u3002", "\uff0e", "\u00a0", "\u201d", "xn--", "a" * 70,
]  # fmt: skip
LINKS = st.tuples(
    st.sampled_from(["", "http://", "https://", "ftp://", "http:/", "http:\\\\", "//", "www.", "@", "_", "%",
                     "\\", "é", "u:p@", "http://u@", "http://[", "(", "a=", "%2F%2F"]),
    st.sampled_from(["a.example", "mirror.test", "www.mirror.test", "x9.a.b", "a.b", "10.11.12.13",
                     "MIRROR.TEST", "mirror.test.", "a.example-x", "a.example9", "mirror.te", "b.c%2Etest",
                     "mirror"]),
    st.sampled_from(["", "/", "?", "#", ":", ":8080", ",", ",x", ").", ")x", ";", "!", "_", "-", "\\", "@",
                     "%", "[", "]", "=", "&", "é", "\u201d", "\u3002test", ".test", "&#46;test", "%2Etest",
                     "\n"]),
    st.sampled_from(["", "/film", "/a.example/x", "x", " ", "'", "mirror.test/film"]),
).map("".join)  # a link-like run with what may stand around its host  # fmt: skip
POSTS = st.lists(st.one_of(st.sampled_from(FRAGMENTS), LINKS), max_size=16).map("".join)
POST_TYPES = ["text/plain", "application/x-www-form-urlencoded", "application/json", "text/html"]


# Posts where each rule of `link_hosts` matters: a link whose host is not the run of host
# characters it holds (a user name, an escape, a port, punctuation, a letter that is no
# ASCII), a scheme without a dot in its host, a link split across form fields.
TRICKY = [
    "_a.example/x", "x_a.example", "http://a.example,x/", "http://a.example)x", "http://u@a.example/",
    "http://a.example@b.example/", "http://a.example:8080/", "http://a.example:/",
    "http://localhost/a.example", "http://168496141/", "http://[::ffff:1.2.3.4]/a.b", "ftp://a.example9/x",
    "a.example\\x", "http:\\\\a.example\\", "http://a%2Eexample/", "http://%61.example/", "a.exampl\u00e9/x",
    "b\u00fccher.example/x", "\u201chttp://a.example\u201d", "http://a.example[x]/", "http://a.example&x=1",
    "www.a.example./x", "A.EXAMPLE/x", "a" * 300 + ".example/x", "http://a.example%40b.example/",
    "mirror\u3002test/film", "http://10.11.12.13/x", "http://a.example9/x", "http://0x0a.11.12.13/",
    "HTTPS://A.Example9./x",
]  # fmt: skip


def assert_screened_as_found(text: str, content_type: str) -> None:
    """Every link a share guard would look up whole is still found when hosts are screened first."""
    if content_type == "application/json":
        text = '{"text": "' + text + '"}'  # JSON escapes decoded where it parses, else read as text
    elif content_type == "application/x-www-form-urlencoded":
        text = "a=" + quote(text) + "&b=" + text
    full = {link for link in found(text, content_type) if may_match(link)}
    assert full <= set(screened(text, content_type)), text


@pytest.mark.parametrize("content_type", POST_TYPES)
@pytest.mark.parametrize("text", TRICKY)
def test_the_host_test_leaves_out_only_links_it_clears(text: str, content_type: str) -> None:
    assert_screened_as_found(text, content_type)
    assert_screened_as_found(f"see {text} and https://b.example/", content_type)


@settings(max_examples=1500, deadline=None)
@given(POSTS, st.sampled_from(POST_TYPES))
def test_the_host_test_leaves_out_only_links_it_clears_whatever_the_post(
    text: str, content_type: str
) -> None:
    assert_screened_as_found(text, content_type)


@pytest.mark.parametrize(
    ("reading", "hosts"),
    [
        ("see https://site41.example/p/0 and www.news.example/x", ["site41.example", "www.news.example"]),
        ("end. Next, mail bob@corp.example (or Corp.Example).", ["corp.example", "Corp.Example"]),
        ("mirror.test9/x and a.example-b", ["mirror.test", "a.example"]),
        ("no link here", []),
        ("http://localhost/a.b", None),  # a host without a dot
        ("http://user@a.example/", None),
        ("http://a.example:8080/", None),
        ("http://a.example,x/", None),
        ("snake_case.example", None),
        ("b\u00fccher.example", None),
        ("http:\\\\a.example\\", None),
        ("http://[::ffff:10.11.12.13]/", None),
        ("http://a.example,mirror.test/", None),  # the host is "a.example,mirror.test"
        ("(http://a.example), and b.example, or c.example!", ["a.example", "b.example", "c.example"]),
        ("http://a.example)x/", None),
        ("http://a.example%2F@mirror.test/", None),
        ("It ends. So: a.example. Then (b.example).", ["a.example", "b.example"]),  # full stops passed over
        ("http://localhost. and", None),  # a host after "://" ending at its only dot is not read
        ("_x. \\y. \u00e9z. end.", []),  # nor is a run whose only dot ends it, whatever stands before
    ],
)
def test_link_hosts_names_each_host_or_says_it_cannot(reading: str, hosts: list[str] | None) -> None:
    assert link_hosts(reading) == hosts


# -- the compiled host reader (blocklists/_scan.c) answers as the Python one -----------------


def test_the_host_reader_is_compiled() -> None:
    """The build compiles it (`blocklists/_build.py`, with a C compiler: `apt-get install gcc`);
    without it the links are read in Python, and none of the tests below compares anything."""
    assert links.COMPILED, "blocklists/_scan.c is not compiled: is there a C compiler (cc, gcc)?"


def test_the_compiled_readers_refuse_bounds_they_cannot_keep() -> None:
    """A bound its fixed tables cannot hold is refused, and the one in force stays."""
    scan = links._scan
    assert scan is not None
    with pytest.raises(ValueError, match="longest host of 1 to 511"):
        scan.configure(bytes(128), 512)
    with pytest.raises(ValueError, match="128 classes"):
        scan.configure(bytes(127), 255)
    with pytest.raises(ValueError, match="positive max_fields"):
        scan.form_fields("a=b", 0)
    assert scan.link_hosts("see site.example now") == ["site.example"]


# Characters each rule of the reader turns on, and runs long enough to pass MAX_HOST.
HOST_PIECES = st.sampled_from(
    [*"ab.-_:/\\ 9,;!)]?#[\n@%\x00\t\x1c\x7f=&'\"<>`{}|^", "://", ":\\", ".example", "www.", "WWW.", "http",
     "..", "1.2.3.4", "x.yz", "a" * 120, "a." * 70]
)  # fmt: skip


@pytest.mark.parametrize(
    "reading", [*TRICKY, "", ".", ":", "://", "a.", "a.b" * 200, "\x00.ab", "a" * 256 + ".bc"]
)
def test_the_compiled_host_reader_answers_as_the_python_one(reading: str) -> None:
    for text in (reading, f"see {reading} and https://b.example/", f"{reading}, ({reading}).", reading * 3):
        assert link_hosts(text) == _link_hosts(text), text


@settings(max_examples=3000, deadline=None)
@given(
    st.one_of(
        st.lists(HOST_PIECES, max_size=40).map("".join), POSTS, st.text(st.characters(max_codepoint=127))
    )
)
def test_the_compiled_host_reader_answers_as_the_python_one_whatever_the_text(reading: str) -> None:
    assert link_hosts(reading) == _link_hosts(reading)


FORM_PIECES = st.sampled_from(
    [*"ab=&+%.-/:\\ \x00\x7f", "%2", "%4", "%41", "%2e", "%2E", "%25", "%zz", "%C3%A9", "%C3", "%FF",
     "%E2%80%9D", "%+1", "==", "&&", "a" * 50]
)  # fmt: skip


@pytest.mark.parametrize(
    "form",
    ["", "&", "=", "a", "a=", "=b", "a=b&", "&a=b", "a=b=c", "%", "a=%", "a=%4", "a=%41%", "+=+",
     "&".join(["a=1"] * (MAX_FIELDS + 5)), "&".join(["b"] * MAX_FIELDS) + "&c=d"],
)  # fmt: skip
def test_the_compiled_form_reader_answers_as_the_python_one(form: str) -> None:
    assert _form_fields_of(form) == _form_fields(form)


@settings(max_examples=2000, deadline=None)
@given(st.one_of(st.lists(FORM_PIECES, max_size=40).map("".join), st.text(st.characters(max_codepoint=127))))
def test_the_compiled_form_reader_answers_as_the_python_one_whatever_the_form(form: str) -> None:
    assert _form_fields_of(form) == _form_fields(form)


@pytest.mark.parametrize("junk", [MAX_FIELDS - 1, MAX_FIELDS, MAX_FIELDS + 3])
def test_a_link_past_the_form_field_bound_is_found(junk: int) -> None:
    """A receiver reads every field: what lies past MAX_FIELDS is read as text, not dropped."""
    body = ("&".join(["a=1"] * junk) + "&x=http%3A%2F%2Fmirror.test%2Ffilm+now").encode()
    content_type = "application/x-www-form-urlencoded"
    assert "http://mirror.test/film" in find_links(body, content_type)
    assert "http://mirror.test/film" in find_links(body, content_type, may_list)
    assert "http://mirror.test/film" in find_links(body, content_type, lambda name: name == "mirror.test")


def test_a_post_to_unlisted_hosts_is_not_searched_link_by_link() -> None:
    body = "status=" + quote(" ".join(f"see https://site{i}.example/p/{i}" for i in range(5)) + " x" * 900)
    asked: list[str] = []

    def clears(name: str) -> bool:
        asked.append(name)
        return False

    assert find_links(body.encode(), "application/x-www-form-urlencoded", clears) == []
    assert asked == [f"site{i}.example" for i in range(5)]
    assert len(found(body, "application/x-www-form-urlencoded")) == 5
