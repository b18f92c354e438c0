from __future__ import annotations

from pathlib import Path

import pytest

from blocklists import Action, Defaults, ListError, ListFormat, key_of, parse_list, read_list
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
        "||a.test^$third-party\nexample.test##.banner\n/leak[0-9]+/\n||a*.test^\n", source="f.txt",
        fmt=ListFormat.ADBLOCK,
    )  # fmt: skip
    assert parsed.entries == ()
    assert [(p.line, p.kind) for p in parsed.problems] == [
        (1, "unsupported"), (2, "unsupported"), (3, "unsupported"), (4, "unsupported"),
    ]  # fmt: skip
    assert str(parsed.problems[0]).startswith("f.txt:1: skipped: rule options ['third-party']")


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
    binary = tmp_path / "bin.txt"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ListError, match=r"bin\.txt: not UTF-8 text"):
        read_list(binary)


def test_read_list_strips_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "bom.txt"
    path.write_bytes(b"\xef\xbb\xbfleak.example\n")
    assert [e.expression for e in read_list(path).entries] == ["leak.example/"]
