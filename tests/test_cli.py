from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from proxy_addon.cli import main


class Run:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        command, *rest = argv
        code = main([command, "--data-dir", str(self.data_dir), *rest], out, err)
        return code, out.getvalue(), err.getvalue()


@pytest.fixture
def run(tmp_path: Path) -> Run:
    return Run(tmp_path / "data")


@pytest.fixture
def adblock(tmp_path: Path) -> Path:
    path = tmp_path / "mirrors.txt"
    path.write_text(
        "! leak mirrors\n||leak.example^\n@@||press.leak.example^\n||co.uk^\n"
        "|https://mirror.test/files/salaries.xlsx|\nthis is not a rule\n"
    )
    return path


def test_import_reports_a_summary_and_problems(run: Run, adblock: Path) -> None:
    code, out, err = run("import", str(adblock), "--reason", "Leaked studio e-mail")
    assert code == 0
    assert "adblock list, 6 lines -> source 'mirrors.txt': 3 added, 0 updated, 0 unchanged" in out
    assert "2 skipped (1 public-suffix, 1 malformed)" in out
    assert "mirrors.txt:4: skipped: co.uk is a public suffix" in err
    assert "mirrors.txt:6: skipped" in err
    code, out, _ = run("import", str(adblock))
    assert "0 added, 3 updated" in out  # the reason changed back to empty


def test_import_force_and_format(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "plain"
    path.write_text("co.uk\n")
    code, out, _ = run("import", str(path), "--format", "domains", "--force", "--action", "audit")
    assert code == 0
    assert "1 added" in out
    _, out, _ = run("list", "--entries")
    assert out.split() == ["audit", "co.uk/", "plain"]


def test_import_of_an_unreadable_file_is_an_error_and_others_still_load(run: Run, tmp_path: Path) -> None:
    good = tmp_path / "good.txt"
    good.write_text("leak.example\n")
    code, out, err = run("import", str(tmp_path / "missing.txt"), str(good))
    assert code == 2
    assert "missing.txt: No such file or directory" in err
    assert "1 added" in out


def test_check_trace_and_exit_status(run: Run, adblock: Path) -> None:
    run("import", str(adblock), "--reason", "Leaked studio e-mail")
    code, out, _ = run("check", "https://WWW.Leak.Example:443/a/../b#top")
    assert code == 1
    assert "canonical:  https://www.leak.example/b" in out
    assert "  * leak.example/" in out
    assert "    www.leak.example/b" in out
    assert "verdict:    BLOCK by leak.example/ from source 'mirrors.txt'" in out
    assert "reason:     Leaked studio e-mail" in out
    code, out, _ = run("check", "http://press.leak.example/story")
    assert code == 1
    assert "it wins because it is more specific than leak.example/ (block, mirrors.txt)" in out
    code, out, _ = run("check", "http://clean.test/")
    assert (code, "verdict:    no entry matches" in out) == (0, True)


def test_check_json_lines(run: Run, adblock: Path) -> None:
    run("import", str(adblock))
    code, out, _ = run(
        "check", "--json", "http://clean.test/", "https://mirror.test/files/salaries.xlsx?dl=1"
    )
    assert code == 1
    clean, hit = (json.loads(line) for line in out.splitlines())
    assert clean["action"] is None
    assert clean["entry"] is None
    assert clean["canonical"] == "http://clean.test/"
    assert hit["action"] == "block"
    assert hit["entry"]["expression"] == "mirror.test/files/salaries.xlsx"
    assert hit["expressions"][:2] == [
        "mirror.test/files/salaries.xlsx?dl=1",
        "mirror.test/files/salaries.xlsx",
    ]


def test_check_bad_input_exits_2(run: Run) -> None:
    code, out, err = run("check", "javascript:alert(1)", "http://clean.test/")
    assert code == 2
    assert "'javascript:alert(1)': scheme 'javascript' has no host" in err
    code, out, _ = run("check", "--json", "http://")
    assert code == 2
    assert json.loads(out)["error"] == "no host"


def test_list_and_remove(run: Run, adblock: Path) -> None:
    run("import", str(adblock))
    code, out, _ = run("list")
    assert out.split() == ["mirrors.txt", "local", "3", "entries"]
    _, out, _ = run("list", "--entries", "--json")
    assert sorted(json.loads(line)["expression"] for line in out.splitlines()) == [
        "leak.example/", "mirror.test/files/salaries.xlsx", "press.leak.example/",
    ]  # fmt: skip
    code, out, _ = run("remove", "LEAK.example")
    assert (code, out) == (0, "removed 1 entries\n")
    code, _, err = run("remove", "leak.example")
    assert code == 1
    assert "nothing listed as leak.example/" in err
    code, out, _ = run("remove", "--source", "mirrors.txt", "--all")
    assert "removed source 'mirrors.txt' and its 2 entries" in out
    _, out, _ = run("list")
    assert "no lists yet" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["remove"], "name what to remove"),
        (["remove", "--all"], "give --source NAME"),
        (["remove", "sha256:xyz"], "is not sha256: and 64 hex digits"),
        (["list", "--source", "nope"], "no source named 'nope'"),
        (["import", "x", "--expires", "soonish"], "neither a duration"),
        (["import", "x", "--action", "explode"], "invalid choice"),
    ],
)
def test_bad_arguments_are_named(
    run: Run, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(*argv)
    assert code == 2
    assert message in err + capsys.readouterr().err


def test_console_script_runs(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "proxy_addon.cli", "check", "--data-dir", str(tmp_path), "http://clean.test/"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "no entry matches" in result.stdout


def test_events_are_shown_without_terminal_escapes(run: Run) -> None:
    from blocklists import Store
    from blocklists.store import Event

    async def add() -> None:
        async with Store.in_dir(run.data_dir) as store:
            await store.add_events(
                [
                    Event(
                        at=1.0,
                        kind="report",
                        client="addr:10.0.0.7",
                        action="warn",
                        expression="leak.test/",
                        url="https://leak.test/",
                        detail="not a leak\x1b]0;pwned\x07\x1b[2J",
                    )
                ]
            )

    asyncio.run(add())
    code, out, _ = run("events")
    assert code == 0
    assert "\x1b" not in out
    assert "not a leak\\x1b]0;pwned\\x07\\x1b[2J" in out
    assert "report" in out
    code, out, _ = run("events", "--json", "--kind", "report")
    assert json.loads(out)["detail"] == "not a leak\x1b]0;pwned\x07\x1b[2J"  # JSON keeps it, escaped
    code, out, _ = run("events", "--since", "1h")
    assert out == "no events\n"


def test_check_lists_every_matching_entry_with_its_list_and_the_winner(run: Run, tmp_path: Path) -> None:
    (tmp_path / "feedlike.txt").write_text("||leak.example^\n@@||press.leak.example^\n")
    (tmp_path / "it.csv").write_text(
        "url,action,reason,require_reason\nhttps://press.leak.example/,warn,Press copy,yes\n"
    )
    run("import", str(tmp_path / "feedlike.txt"), str(tmp_path / "it.csv"))
    code, out, _ = run("check", "http://press.leak.example/story")
    assert code == 1
    assert "entries that match (3, * the winner):" in out
    assert "  * allow  press.leak.example/  (list 'feedlike.txt')" in out
    assert (
        "    warn   press.leak.example/  (list 'it.csv'; reason required to proceed; reason: Press copy)"
        in out
    )
    assert "    block  leak.example/  (list 'feedlike.txt')" in out
    _, out, _ = run("check", "--json", "http://press.leak.example/story")
    verdict = json.loads(out)
    assert [(m["winner"], m["action"], m["source"], m["require_reason"]) for m in verdict["matches"]] == [
        (True, "allow", "feedlike.txt", False),
        (False, "warn", "it.csv", True),
        (False, "block", "feedlike.txt", False),
    ]
    assert verdict["matches"][2]["matched_expression"] == "leak.example/"
    _, out, _ = run("check", "--json", "http://www.leak.example/")
    assert json.loads(out)["entry"]["require_reason"] is False
    run("import", str(tmp_path / "it.csv"), "--source", "strict")
    _, out, _ = run("check", "http://x.press.leak.example/")
    assert "proceeding: needs a typed reason" not in out  # allow wins
    (tmp_path / "warn.txt").write_text("warned.test\n")
    run("import", str(tmp_path / "warn.txt"), "--action", "warn", "--require-reason")
    _, out, _ = run("check", "http://warned.test/")
    assert "proceeding: needs a typed reason" in out
    _, out, _ = run("list", "--source", "warn.txt")
    assert out.split() == ["warn", "warned.test/", "warn.txt", "[a", "typed", "reason", "to", "proceed]"]
    _, out, _ = run("list", "--source", "warn.txt", "--json")
    assert json.loads(out)["require_reason"] is True


def test_a_file_mostly_rejected_is_not_imported_and_says_how_it_was_read(run: Run, tmp_path: Path) -> None:
    page = tmp_path / "list.txt"
    page.write_text("<html>\n<body>\n<h1>Not Found</h1>\n</body>\n</html>\nleak.example\n")
    code, out, err = run("import", str(page))
    assert code == 2
    assert "list.txt: 5 of 6 lines rejected, read as a domains list (mostly names of 6 lines sampled" in err
    assert "nothing imported from it" in err
    assert "--format" in err
    _, out, _ = run("list")
    assert "no lists yet" in out
    csv_as_txt = tmp_path / "urls.txt"
    csv_as_txt.write_text("https://a.test/ x\nhttps://b.test/ y\nhttps://c.test/ z\n")
    code, _, err = run("import", str(csv_as_txt), "--format", "hosts")
    assert code == 2
    assert "read as a hosts list (--format says so)" in err


def test_import_counts_what_does_not_apply_and_lists_it_only_when_verbose(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "ubo.txt"
    path.write_text(
        "! uBO\nmirror.test\n||leak.test/dump^$all\nleak.test##.ad\n||img.test^$image\n||x.test/a-\n"
    )
    code, out, err = run("import", str(path))
    assert code == 0
    assert "2 skipped (1 cosmetic, 1 resource-type option), 1 loaded approximately" in out
    assert "ubo.txt:4" not in err
    assert "ubo.txt:6: warning: '||x.test/a-' ends mid-segment" in err
    code, out, err = run("import", str(path), "--verbose")
    assert "ubo.txt:4: skipped: 'leak.test##.ad': a cosmetic rule" in err
    assert "ubo.txt:5: skipped: resource-type option 'image' in '||img.test^$image'" in err


def test_an_expiry_past_the_year_9999_is_bad_input(
    run: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "l.txt"
    path.write_text("leak.example\n")
    code, _, _ = run("import", str(path), "--expires", "99999999999999d")
    assert code == 2
    assert "after the year 9999" in capsys.readouterr().err  # argparse writes to the process's stderr
    assert run("import", str(path), "--expires", "30d")[0] == 0
