"""The extension's own checks, run inside the suite: ``node --test``, eslint and the type check.

The JavaScript tests run the shared vector files (``tests/vectors/``: canonical,
expressions, precedence, evasion) through the extension's canonicalization and
matcher, and a differential corpus with the suffix list the local API serves,
both made here by the proxy's own code (`tests.support.jsfixtures`) and passed
as ``LINKWARN_FIXTURES``, so the two implementations cannot drift.
eslint and TypeScript (``checkJs`` over ``// @ts-check`` files) come from
``extension/package-lock.json``; they are installed here with ``npm ci`` when
missing, so the one test command needs nothing else.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import jsfixtures, jstables

EXTENSION = Path(__file__).resolve().parent.parent / "extension"


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=EXTENSION, capture_output=True, text=True, check=False, timeout=600)


@pytest.fixture(scope="module")
def npm_tools() -> Path:
    npm = shutil.which("npm")
    assert npm, "Node.js and npm are needed for the extension's checks (.ci/run installs them)"
    installed = EXTENSION / "node_modules" / ".package-lock.json"
    lock = EXTENSION / "package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
        result = _run(npm, "ci", "--no-audit", "--no-fund", "--loglevel=error")
        assert result.returncode == 0, result.stdout + result.stderr
    return EXTENSION / "node_modules" / ".bin"


def _run_with(env: dict[str, str], *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        cwd=EXTENSION,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
        env={**os.environ, **env},
    )


def test_javascript_unit_tests_pass(tmp_path: Path) -> None:
    node = shutil.which("node")
    assert node, "Node.js is needed for the extension's tests (.ci/run installs it)"
    jsfixtures.write(tmp_path)
    result = _run_with({"LINKWARN_FIXTURES": str(tmp_path)}, node, "--test", "test/")
    assert result.returncode == 0, result.stdout + result.stderr
    passed = int(re.search(r"^# pass (\d+)$", result.stdout, re.M).group(1))  # type: ignore[union-attr]
    assert passed >= 60, result.stdout
    assert re.search(r"^# fail 0$", result.stdout, re.M), result.stdout


def test_eslint_is_clean(npm_tools: Path) -> None:
    result = _run(str(npm_tools / "eslint"), "--max-warnings=0", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_typescript_check_is_clean(npm_tools: Path) -> None:
    result = _run(str(npm_tools / "tsc"), "-p", "jsconfig.json")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_firefox_build_passes_web_ext_lint(npm_tools: Path, tmp_path: Path) -> None:
    """The Firefox package, built from the same sources, is clean by Mozilla's linter."""
    node = shutil.which("node")
    assert node
    out = tmp_path / "firefox"
    built = _run(node, "scripts/build-firefox.mjs", str(out))
    assert built.returncode == 0, built.stdout + built.stderr
    manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    assert manifest["background"] == {"scripts": ["background.js"], "type": "module"}
    lint = _run(str(npm_tools / "web-ext"), "lint", "--source-dir", str(out), "--output", "json",
                "--warnings-as-errors", "--no-config-discovery")  # fmt: skip
    report = json.loads(lint.stdout[lint.stdout.index("{") :])
    problems = [
        (m["code"], m.get("file"), m["message"]) for k in ("errors", "warnings", "notices") for m in report[k]
    ]
    assert problems == []
    assert lint.returncode == 0, lint.stderr


def test_the_javascript_tests_refuse_missing_fixtures(tmp_path: Path) -> None:
    """Pointed at fixtures that are not there, the tests fail; they never skip the proxy's answers."""
    node = shutil.which("node")
    assert node
    result = _run_with(
        {"LINKWARN_FIXTURES": str(tmp_path / "none")}, node, "--test", "test/canonical.test.js"
    )
    assert result.returncode != 0
    assert "holds no psl.json" in result.stdout + result.stderr


def test_the_unicode_tables_are_what_their_generator_makes() -> None:
    assert (EXTENSION / "lib" / "unicode.js").read_text("utf-8") == jstables.render()
