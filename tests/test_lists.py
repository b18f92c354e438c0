from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blocklists import Action, Defaults, ListError, ListFormat, expression_for, key_of, parse_list, read_list
from blocklists.lists import detect_format


def _expressions(text: str, fmt: ListFormat = ListFormat.AUTO, **options: object) -> dict[str, str]:
    parsed = parse_list(text, source="t", fmt=fmt, **options)  # type: ignore[arg-type]
    return {str(e.expression): str(e.action) for e in parsed.entries}


def test_domains() -> None:
    text = "# leak mirrors\nLeak.Example\n*.mirror.test  # wildcard\n\nfiles.leak.example.\n"
    assert _expressions(text, ListFormat.DOMAINS) == {
        "leak.example/": "block", "mirror.test/": "block", "files.leak.example/": "block",
    }  # fmt: skip


def test_hosts_file_skips_localhost_names() -> None:
    text = "127.0.0.1 localhost\n0.0.0.0 leak.example www.leak.example # mirrors\n::1 ip6-localhost\n"
    assert _expressions(text, ListFormat.HOSTS) == {
        "leak.example/": "block",
        "www.leak.example/": "block",
    }


def test_adblock_rules() -> None:
    text = (
        "[Adblock Plus 2.0]\n! comment\n||leak.example^\n@@||press.leak.example^\n"
        "|https://mirror.test/files/salaries.xlsx|\n||mirror.test/dump^$document\nleak2.test\n"
    )
    assert _expressions(text, ListFormat.ADBLOCK) == {
        "leak.example/": "block",
        "press.leak.example/": "allow",
        "mirror.test/files/salaries.xlsx": "block",
        "mirror.test/dump": "block",
        "mirror.test/dump/": "block",
        "leak2.test/": "block",
    }


def test_adblock_reports_what_it_cannot_honour() -> None:
    parsed = parse_list(
        "||a.test^$third-party\nexample.test##.banner\n/leak[0-9]+/\n||a*.test^\n||b.test^$script\n"
        "||c.test^$domain=x.test\n-ad-banner.\n||d.test^$frobnicate\n", source="f.txt",
        fmt=ListFormat.ADBLOCK,
    )  # fmt: skip
    assert parsed.entries == ()
    assert [(p.line, p.kind, p.group) for p in parsed.problems] == [
        (1, "not-applicable", "party option"), (2, "not-applicable", "cosmetic"),
        (3, "unsupported", "regular expression"), (4, "unsupported", "wildcard"),
        (5, "not-applicable", "resource-type option"), (6, "not-applicable", "domain= option"),
        (7, "unsupported", "generic rule"), (8, "unsupported", "unknown option"),
    ]  # fmt: skip
    assert str(parsed.problems[0]).startswith("f.txt:1: skipped: party option 'third-party'")
    assert [p.quiet for p in parsed.problems] == [True, True, False, False, True, True, False, False]
    assert parsed.rejected == 0  # an adblock list that does not apply is not a list in the wrong format


def test_url_list_prefix_page_and_query() -> None:
    text = "https://leak.example/dump/\nhttp://mirror.test/a.html\nhttp://mirror.test/get?id=7#x\n"
    assert _expressions(text, ListFormat.URLS) == {
        "leak.example/dump/": "block", "mirror.test/a.html": "block", "mirror.test/get?id=7": "block",
    }  # fmt: skip


def test_csv_with_metadata() -> None:
    text = (
        "url,action,reason,category,incident,expires\n"
        "https://leak.example/,warn,Stolen e-mail archive,leak,2014-11 breach,2030-01-01\n"
        "mirror.test,,,,,\n"
    )
    parsed = parse_list(text, source="l.csv", defaults=Defaults(reason="default reason"))
    assert parsed.format is ListFormat.CSV
    first, second = parsed.entries
    assert (first.expression, first.action, first.reason, first.category, first.incident) == (
        "leak.example/", Action.WARN, "Stolen e-mail archive", "leak", "2014-11 breach",
    )  # fmt: skip
    assert first.expires_at == 1893456000
    assert (second.action, second.reason) == (Action.BLOCK, "default reason")


def test_csv_bad_rows_are_reported_with_line_numbers() -> None:
    text = "domain,action,expires\nleak.example,destroy,\nmirror.test,block,someday\n,block,\nok.test,warn,\n"
    parsed = parse_list(text, source="l.csv")
    assert [e.expression for e in parsed.entries] == ["ok.test/"]
    assert [(p.line, p.kind) for p in parsed.problems] == [
        (2, "malformed"),
        (3, "malformed"),
        (4, "malformed"),
    ]
    assert "unknown action 'destroy'" in parsed.problems[0].message
    assert "invalid time 'someday'" in parsed.problems[1].message


def test_csv_without_a_target_column_is_refused() -> None:
    with pytest.raises(ListError, match="names no target column"):
        parse_list("name,reason\nx,y\n", source="l.csv", fmt=ListFormat.CSV)


def test_json_objects_strings_and_hashes() -> None:
    digest = key_of("secret.test/").hex()
    text = (
        '{"entries": [{"url": "https://leak.example/", "action": "audit", "reason": "r"},'
        f' "mirror.test", {{"sha256": "{digest}", "action": "warn"}}, 42, {{"hash": "nothex"}}]}}'
    )
    parsed = parse_list(text, source="l.json")
    assert [(e.expression, e.action) for e in parsed.entries] == [
        ("leak.example/", Action.AUDIT), ("mirror.test/", Action.BLOCK), (None, Action.WARN),
    ]  # fmt: skip
    assert parsed.entries[2].key.hex() == digest
    assert [(p.line, p.kind) for p in parsed.problems] == [(4, "malformed"), (5, "malformed")]


def test_invalid_json_names_the_line() -> None:
    with pytest.raises(ListError, match=r"l.json:2: not valid JSON"):
        parse_list('[\n "a.test",,\n]', source="l.json")


def test_public_suffix_and_shared_platform_need_force() -> None:
    text = "co.uk\nblogspot.com\ngithub.io\ngithub.com\nwww.github.com\nleaker.github.io\n"
    parsed = parse_list(text, source="t", fmt=ListFormat.DOMAINS)
    assert [e.expression for e in parsed.entries] == ["leaker.github.io/"]
    assert [p.kind for p in parsed.problems] == ["public-suffix"] * 3 + ["shared-platform"] * 2
    assert "use --force" in parsed.problems[0].message
    forced = parse_list(text, source="t", fmt=ListFormat.DOMAINS, force=True)
    assert len(forced.entries) == 6
    assert all(not p.skipped for p in forced.problems)


def test_page_on_a_shared_platform_is_fine() -> None:
    assert _expressions("https://github.com/leaker/dump/\n", ListFormat.URLS) == {
        "github.com/leaker/dump/": "block"
    }


def test_duplicates_and_conflicts() -> None:
    text = "||leak.example^\n||leak.example^\n@@||leak.example^\n||leak.example^$important\n"
    parsed = parse_list(text, source="t.txt")
    assert [(e.expression, e.action) for e in parsed.entries] == [("leak.example/", Action.ALLOW)]
    kinds = [(p.line, p.kind, p.skipped) for p in parsed.problems]
    assert kinds == [(2, "duplicate", True), (3, "conflict", False), (4, "conflict", True)]
    assert "listed as block on line 1 and as allow here; keeping allow" in parsed.problems[1].message


def test_unreachable_entries_are_warned_about() -> None:
    parsed = parse_list("https://leak.test/a/b/c/d/\na.b.c.d.leak.test\n", source="t", fmt=ListFormat.URLS)
    assert len(parsed.entries) == 2
    assert [(p.kind, p.skipped) for p in parsed.problems] == [("narrow", False), ("narrow", False)]


def test_malformed_lines_skip_and_the_rest_loads() -> None:
    parsed = parse_list("leak.example\nnot a domain\nhttp://[::zz]/\nmirror.test\n", source="d.txt",
                        fmt=ListFormat.DOMAINS)  # fmt: skip
    assert [e.expression for e in parsed.entries] == ["leak.example/", "mirror.test/"]
    assert [str(p).split(": skipped")[0] for p in parsed.problems] == ["d.txt:2", "d.txt:3"]


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("a.csv", "anything", ListFormat.CSV),
        ("a.json", "[]", ListFormat.JSON),
        ("a.txt", '{"entries": []}', ListFormat.JSON),
        ("a.txt", "[Adblock Plus 2.0]\n||a.test^", ListFormat.ADBLOCK),
        ("a.txt", "# hosts\n0.0.0.0 a.test\n0.0.0.0 b.test", ListFormat.HOSTS),
        ("a.txt", "https://a.test/x\nhttps://b.test/", ListFormat.URLS),
        ("a.txt", "a.test\nb.test", ListFormat.DOMAINS),
        ("a.txt", "url,reason\nhttps://a.test/,r", ListFormat.CSV),
        ("a.txt", "", ListFormat.DOMAINS),
    ],
)
def test_detect_format(name: str, text: str, expected: ListFormat) -> None:
    assert detect_format(name, text) is expected


def test_read_list_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ListError, match=r"missing\.txt: No such file"):
        read_list(tmp_path / "missing.txt")
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("leak.example\nbücher.test\n".encode("latin-1"))
    with pytest.raises(ListError, match=r"latin1\.txt:2: not UTF-8 text: byte 0xfc"):
        read_list(latin1)
    utf16 = tmp_path / "utf16.txt"
    utf16.write_bytes("leak.example\n".encode("utf-16-le"))  # no byte-order mark
    with pytest.raises(ListError, match=r"utf16\.txt:1: a NUL character: not a text file"):
        read_list(utf16)
    nul = tmp_path / "nul.txt"
    nul.write_bytes(b"a.test\nb.test\nc\x00.test\n")
    with pytest.raises(ListError, match=r"nul\.txt:3: a NUL character"):
        read_list(nul)


def test_read_list_strips_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "bom.txt"
    path.write_bytes(b"\xef\xbb\xbfleak.example\n")
    assert [e.expression for e in read_list(path).entries] == ["leak.example/"]


def test_read_list_reads_utf16_with_a_byte_order_mark_and_crlf(tmp_path: Path) -> None:
    for encoding in ("utf-16", "utf-32", "utf-8-sig"):
        path = tmp_path / f"{encoding}.txt"
        path.write_bytes("leak.example\r\nbücher-leaks.test\r\n".encode(encoding))
        parsed = read_list(path)
        assert [e.expression for e in parsed.entries] == ["leak.example/", "xn--bcher-leaks-thb.test/"]
        assert parsed.problems == ()


# -- the shapes real lists come in -----------------------------------------------

UNICODE_NAMES = ("bücher-leaks.test", "ελληνικά-leaks.test", "mirror-leaks。test")
UNICODE_EXPRESSIONS = [
    "xn--bcher-leaks-thb.test/",
    "xn---leaks-owe5esaulja3a.test/",
    "mirror-leaks.test/",
]


def test_unicode_expressions_are_what_canonicalization_makes() -> None:
    assert [expression_for(name) for name in UNICODE_NAMES] == UNICODE_EXPRESSIONS


@pytest.mark.parametrize(
    ("name", "text", "fmt"),
    [
        ("d.txt", "\n".join(UNICODE_NAMES), ListFormat.DOMAINS),
        ("h.txt", "\n".join(f"0.0.0.0 {n}" for n in UNICODE_NAMES), ListFormat.HOSTS),
        ("a.txt", "! list\n" + "\n".join(f"||{n}^" for n in UNICODE_NAMES), ListFormat.ADBLOCK),
        ("u.txt", "\n".join(f"https://{n}/" for n in UNICODE_NAMES), ListFormat.URLS),
        ("l.csv", "domain,reason\n" + "\n".join(f"{n},r" for n in UNICODE_NAMES), ListFormat.CSV),
        ("l.json", json.dumps({"entries": list(UNICODE_NAMES)}, ensure_ascii=False), ListFormat.JSON),
        ("l.jsonl", "\n".join(json.dumps({"host": n}, ensure_ascii=False) for n in UNICODE_NAMES),
         ListFormat.JSONL),
    ],
)  # fmt: skip
def test_unicode_names_and_ideographic_full_stops_load_in_every_format(
    name: str, text: str, fmt: ListFormat
) -> None:
    parsed = parse_list(text, source=name)
    assert parsed.format is fmt
    assert [e.expression for e in parsed.entries] == UNICODE_EXPRESSIONS
    assert parsed.problems == ()


def test_a_ubo_list_mixing_plain_hosts_and_url_rules() -> None:
    text = "\n".join(
        ["! Title: mirrors", *(f"mirror{n}.test" for n in range(30)), "1.2.3.4", "203.0.113.9",
         "||leak.test/dump/files.zip^$all", "||leak.test/paste^$document", "||pop.test^$popup",
         "||doc.test/x/^$doc", "0.0.0.0 hosts-style.test", "||shared.test/a%c3%b3b^$all",
         "leak.test##.ad", "||img.test^$image", "||site.test^$domain=other.test"]
    )  # fmt: skip
    parsed = parse_list(text, source="urlhaus-filter.txt")
    assert parsed.format is ListFormat.ADBLOCK
    assert "adblock rules" in parsed.why
    listed = {e.expression for e in parsed.entries}
    assert {f"mirror{n}.test/" for n in range(30)} <= listed
    assert {"1.2.3.4/", "203.0.113.9/", "leak.test/dump/files.zip", "leak.test/dump/files.zip/",
            "leak.test/paste", "leak.test/paste/", "pop.test/", "doc.test/x/", "hosts-style.test/",
            "shared.test/a%C3%B3b"} <= listed  # fmt: skip
    assert len(listed) == 30 + 11
    assert parsed.skipped_by_label() == {"cosmetic": 1, "resource-type option": 1, "domain= option": 1}
    assert parsed.rejected == 0


def test_an_adblock_rule_ending_mid_segment_says_what_it_became() -> None:
    parsed = parse_list("||leak.test/dump-\n||leak.test/get?id=\n", source="a.txt", fmt=ListFormat.ADBLOCK)
    assert [e.expression for e in parsed.entries] == [
        "leak.test/dump-",
        "leak.test/dump-/",
        "leak.test/get?id=",
    ]
    first, second = parsed.problems
    assert (first.kind, first.skipped, first.line) == ("approximate", False, 1)
    assert "ends mid-segment" in first.message
    assert "listed as the page leak.test/dump- and the folder leak.test/dump-/" in first.message
    assert "listed as exactly leak.test/get?id=" in second.message


def test_adblock_wildcard_top_level_domains_are_not_listed_as_hosts() -> None:
    parsed = parse_list(
        "||mirror.\n||10.1.2.\n||cacheserve.*/promo/\n", source="a.txt", fmt=ListFormat.ADBLOCK
    )
    assert parsed.entries == ()
    assert [p.group for p in parsed.problems] == ["wildcard"] * 3


def test_a_plain_list_mixing_domains_and_urls() -> None:
    text = "leak.example\nhttps://paste.test/raw/abc\nmirror.test/dump/\n# note\nhttp://files.test/a?b=1\n"
    parsed = parse_list(text, source="mixed.txt")
    assert parsed.format in (ListFormat.DOMAINS, ListFormat.URLS)
    assert [e.expression for e in parsed.entries] == [
        "leak.example/", "paste.test/raw/abc", "mirror.test/dump/", "files.test/a?b=1",
    ]  # fmt: skip
    assert parsed.problems == ()


def test_a_hosts_file_with_a_bare_host_and_odd_spacing() -> None:
    text = "127.0.0.1\tlocalhost\n::1  localhost #[IPv6]\n0.0.0.0 Ads.Example #[WebBug]\nbare.test\n"
    assert _expressions(text) == {"ads.example/": "block", "bare.test/": "block"}


def test_broken_csv_quoting_names_its_line_and_keeps_the_rest() -> None:
    text = 'url,reason\nhttps://a.test/,"fine, quoted"\nhttps://b.test/,"never closed\nhttps://c.test/,r\n'
    text += 'https://d.test/,"x"y\nhttps://e.test/,"say ""hi"""\n'
    parsed = parse_list(text, source="l.csv")
    assert [(e.expression, e.reason) for e in parsed.entries] == [
        ("a.test/", "fine, quoted"), ("c.test/", "r"), ("e.test/", 'say "hi"'),
    ]  # fmt: skip
    assert [(p.line, p.kind) for p in parsed.problems] == [(3, "malformed"), (5, "malformed")]
    assert "CSV quoting" in parsed.problems[0].message


def test_csv_host_and_path_columns_list_the_path() -> None:
    text = (
        "# comment\n# another\n"
        '"host","path","message","updated"\n'
        '"whole.test","","malicious","2025-07-19T12:11:28Z"\n'
        '"files.test","/dump/leak.pdf","malicious","2025-07-19T12:11:28Z"\n'
    )
    parsed = parse_list(text, source="splunk.txt")
    assert parsed.format is ListFormat.CSV
    assert [e.expression for e in parsed.entries] == ["whole.test/", "files.test/dump/leak.pdf"]


def test_a_csv_header_after_comments_is_found_in_a_big_file() -> None:
    text = (
        "# generated\n# by a tool\n" + '"host","path"\n' + "".join(f'"h{n}.test",""\n' for n in range(20_000))
    )
    parsed = parse_list(text, source="export.txt")
    assert (parsed.format, len(parsed.entries), parsed.problems) == (ListFormat.CSV, 20_000, ())


def test_json_lines() -> None:
    text = '{"url": "https://a.test/", "action": "warn"}\n"b.test"\n{"url": \n{"domain": "c.test"}\n'
    for name in ("l.jsonl", "l.json", "l.txt"):
        parsed = parse_list(text, source=name)
        assert parsed.format is ListFormat.JSONL, name
        assert [(e.expression, e.action) for e in parsed.entries] == [
            ("a.test/", Action.WARN), ("b.test/", Action.BLOCK), ("c.test/", Action.BLOCK),
        ]  # fmt: skip
        assert [(p.line, p.kind) for p in parsed.problems] == [(3, "malformed")]


def test_json_object_of_deny_and_allow_lists() -> None:
    text = json.dumps(
        {"allow": ["github.io", "*.fleek.co", "safe.leak.test"], "deny": ["leak.test", "trailing.test."],
         "denySub": ["x.com/LeakAccount"]}
    )  # fmt: skip
    parsed = parse_list(text, source="all.json")
    assert {(e.expression, str(e.action)) for e in parsed.entries} == {
        ("fleek.co/", "allow"), ("safe.leak.test/", "allow"), ("leak.test/", "block"),
        ("trailing.test/", "block"), ("x.com/LeakAccount", "block"),
    }  # fmt: skip
    assert [p.kind for p in parsed.problems] == ["public-suffix"]  # github.io


def test_require_reason_column() -> None:
    text = "url,action,require_reason\na.test,warn,yes\nb.test,warn,False\nc.test,warn,1\nd.test,warn,\n"
    text += "e.test,warn,maybe\n"
    parsed = parse_list(text, source="l.csv", defaults=Defaults(require_reason=False))
    assert [(e.expression, e.require_reason) for e in parsed.entries] == [
        ("a.test/", True), ("b.test/", False), ("c.test/", True), ("d.test/", False),
    ]  # fmt: skip
    (problem,) = parsed.problems
    assert (problem.line, problem.kind) == (6, "malformed")
    assert "require_reason 'maybe' is not true/false" in problem.message
    jsonl = '{"url": "a.test", "require_reason": true}\n{"url": "b.test", "require_reason": "no"}\n'
    jsonl += '{"url": "c.test", "require_reason": 2}\n'
    parsed = parse_list(jsonl, source="l.jsonl", defaults=Defaults(require_reason=True))
    assert [(e.expression, e.require_reason) for e in parsed.entries] == [
        ("a.test/", True),
        ("b.test/", False),
    ]
    assert "require_reason '2'" in parsed.problems[0].message
    assert all(
        e.require_reason
        for e in parse_list("x.test\n", source="d", defaults=Defaults(require_reason=True)).entries
    )


def test_a_file_read_in_the_wrong_format_is_mostly_rejected() -> None:
    text = "url,reason\nhttps://a.test/,r\nhttps://b.test/,r\nhttps://c.test/,r\n"
    as_hosts = parse_list(text, source="l.txt", fmt=ListFormat.HOSTS)
    assert as_hosts.mostly_rejected
    assert (as_hosts.rejected, as_hosts.content_lines, as_hosts.why) == (4, 4, "--format says so")
    html = "<html>\n<head><title>404 Not Found</title></head>\n<body>\n<h1>Not Found</h1>\n</body>\n</html>\n"
    as_detected = parse_list(html, source="list.txt")
    assert as_detected.mostly_rejected
    assert as_detected.format is ListFormat.DOMAINS
    assert "lines sampled" in as_detected.why
    fine = parse_list("a.test\nb.test\n<bad>\n", source="d.txt")
    assert not fine.mostly_rejected


def test_hostile_lines_are_refused_with_short_messages() -> None:
    huge = "a" * 200_000 + ".test/" + "b" * 100
    text = f"{huge}\njavascript:alert(1)\nhttp://\u202eevil.test/\nok.test\nfoo\u3000bar.test\n"
    parsed = parse_list(text, source="h.txt")
    assert [e.expression for e in parsed.entries] == ["ok.test/"]
    assert [p.line for p in parsed.problems] == [1, 2, 3, 5]
    assert all(len(p.message) < 400 for p in parsed.problems)
    assert "200106 characters" in parsed.problems[0].message


def test_hostile_lines_take_linear_time() -> None:
    import time

    started = time.perf_counter()
    hostile = ":" * 200_000 + "x host.test\n" + "a." * 100_000 + "\n" + "|" * 100_000 + "^\n"
    for fmt in ListFormat:
        if fmt not in (ListFormat.AUTO, ListFormat.JSON, ListFormat.CSV):
            parse_list(hostile, source="h.txt", fmt=fmt)
    parse_list("url\n" + hostile, source="h.csv")
    assert time.perf_counter() - started < 5


def test_unknown_punycode_top_level_domains_are_refused() -> None:
    text = "http://login.example.xn--com/x\nhttp://a.co.xn--kr/\nshop.xn--tckwe\nintranet.corp\n"
    parsed = parse_list(text, source="u.txt")
    assert [e.expression for e in parsed.entries] == ["shop.xn--tckwe/", "intranet.corp/"]
    assert [p.line for p in parsed.problems] == [1, 2]
    assert "does not exist" in parsed.problems[0].message


@pytest.mark.parametrize(
    "host",
    ["leak.example", "a.b.c.d.e.f.example.com", "x.co.uk", "co.uk", "a.b.workers.dev", "x.s3.amazonaws.com",
     "foo.amazonaws.com", "a.b.compute.amazonaws.com", "www.ck", "a.www.ck", "b.a.ck", "x.city.kawasaki.jp",
     "a.b.kawasaki.jp", "github.io", "leaker.github.io", "a.xn--p1ai", "xn--d1aqfkf.xn--p1ai", "intranet",
     "a.b.test", "q.blogspot.com", "my.sub.blogspot.co.uk"],
)  # fmt: skip
def test_the_registrable_domain_shortcut_agrees_with_tldextract(host: str) -> None:
    from blocklists.canonical import registrable_domain
    from blocklists.lists import _Registrable

    assert _Registrable()(host) == registrable_domain(host)


def test_a_top_level_domain_under_a_wildcard_rule_is_a_public_suffix() -> None:
    parsed = parse_list("ck\nmm\nintranet\n", source="d.txt", fmt=ListFormat.DOMAINS)
    assert [e.expression for e in parsed.entries] == ["intranet/"]
    assert [p.kind for p in parsed.problems] == ["public-suffix", "public-suffix"]


@pytest.mark.parametrize(
    "name",
    ["Leak.Example", "leak.example.", "*.leak.example", "a_b.test", "-x.test", "0x10.test", "1.2.3.4",
     "0000153.0000255.0000011.0000125", "1.2.3.04", "010.1", "xn--bcher-kva.test", "a.b.c.d.e.f.g.test",
     "x.test..", "a..b.test", "github.com", "co.uk", "0.0.0.0"],
)  # fmt: skip
def test_the_fast_path_for_names_gives_what_canonicalization_gives(name: str) -> None:
    fast = parse_list(name, source="d.txt", fmt=ListFormat.DOMAINS)
    slow = parse_list(
        f"http://{name.removeprefix('*.')}/", source="u.txt", fmt=ListFormat.URLS
    )  # canonicalized
    assert [e.expression for e in fast.entries] == [e.expression for e in slow.entries]
    assert [(p.kind, p.message) for p in fast.problems] == [(p.kind, p.message) for p in slow.problems]


def test_json_nested_too_deeply_and_times_out_of_range() -> None:
    with pytest.raises(ListError, match=r"l\.json: JSON nested too deeply"):
        parse_list("[" * 100_000, source="l.json")
    parsed = parse_list('"a.test"\n' + "[" * 100_000 + "\n", source="l.jsonl")
    assert [e.expression for e in parsed.entries] == ["a.test/"]
    assert [(p.line, p.kind) for p in parsed.problems] == [(2, "malformed")]
    text = "url,expires,added\na.test,99999999999999999999999,\nb.test,,9999-12-31\nc.test,2030-01-01,\n"
    parsed = parse_list(text, source="l.csv")
    assert [e.expression for e in parsed.entries] == ["b.test/", "c.test/"]
    assert "expires: '99999999999999999999999' is not a time from 1970 to 9999" in parsed.problems[0].message
    jsonl = '{"url": "a.test", "expires": 100000000000000000000000}\n{"url": "b.test", "added": -1}\n'
    assert parse_list(jsonl, source="l.jsonl").entries == ()


# -- fuzzing: any text, any format: a parsed list or a ListError, never a crash ------------------

_LIST_TEXT = st.one_of(
    st.text(max_size=400),
    st.lists(
        st.sampled_from(
            [
                "||a.test^",
                "@@||b.test^",
                "0.0.0.0 c.test",
                "https://d.test/p?q",
                "url,action",
                "{",
                "}",
                '{"url": "e.test", "action": "warn"}',
                '["f.test"]',
                "\ufeff",
                "\x00",
                "\udc80",
                "[" * 50,
                "# comment",
                "g.test,block,reason",
                "*.h.test",
                "xn--",
                "..",
                "1e999",
                "%",
                "\t \r",
            ]
        )
        | st.text(max_size=30),
        max_size=30,
    ).map("\n".join),
)


@settings(max_examples=300, deadline=None)
@given(text=_LIST_TEXT, fmt=st.sampled_from(list(ListFormat)), force=st.booleans())
def test_any_text_in_any_format_parses_or_raises_list_error(text: str, fmt: ListFormat, force: bool) -> None:
    try:
        parsed = parse_list(text, source="fuzz", fmt=fmt, force=force, now=1)
    except ListError as exc:
        problem = str(exc)
    else:
        problem = None
    if problem is not None:
        assert problem  # a clear error, naming what is wrong
        return
    for entry in parsed.entries:
        assert len(entry.key) == 32
        assert entry.action in Action
