"""The systemd unit: hardened, for the options given, and accepted by systemd-analyze verify."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pytest

from proxy_addon.cli import main
from proxy_addon.service import UnitSpec, render_unit, systemd_quote


def unit_for(*args: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    assert main(["service", "systemd", *args], out, err) == 0, err.getvalue()
    return out.getvalue()


def test_the_unit_is_hardened_and_runs_the_options_given() -> None:
    unit = unit_for(
        "--", "--listen-host", "0.0.0.0", "--metrics", "0.0.0.0:9808", "--secret-file", "/etc/linkwarn/secret"
    )
    lines = unit.splitlines()
    expected = ("DynamicUser=yes", "ProtectSystem=strict", "StateDirectory=linkwarn", "NoNewPrivileges=yes",
                "CapabilityBoundingSet=", "LoadCredential=linkwarn-secret:/etc/linkwarn/secret")  # fmt: skip
    for setting in expected:
        assert setting in lines, setting
    exec_start = next(line for line in lines if line.startswith("ExecStart="))
    assert exec_start.endswith(
        " run --data-dir /var/lib/linkwarn --listen-host 0.0.0.0 --metrics 0.0.0.0:9808"
        " --secret-file ${CREDENTIALS_DIRECTORY}/linkwarn-secret"
    )


def test_a_named_user_and_a_low_port() -> None:
    unit = unit_for("--user", "linkwarn", "--", "--listen-port", "80").splitlines()
    assert "User=linkwarn" in unit
    assert "DynamicUser=yes" not in unit
    assert "AmbientCapabilities=CAP_NET_BIND_SERVICE" in unit


def test_bad_run_options_are_refused() -> None:
    err = io.StringIO()
    assert main(["service", "systemd", "--", "--listen-port", "eighty"], io.StringIO(), err) == 2
    assert "eighty" in err.getvalue()
    with pytest.raises(ValueError, match="system user"):
        render_unit(UnitSpec("/usr/bin/linkwarn", (), user="Bad User"))


def test_quoting() -> None:
    assert systemd_quote("/srv/a b") == '"/srv/a b"'
    assert systemd_quote("100%") == '"100%%"'
    assert systemd_quote("$HOME") == '"$$HOME"'
    assert systemd_quote('say "hi"\\') == '"say \\"hi\\"\\\\"'


def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze is not None, "systemd-analyze is missing: .ci/run installs Debian's systemd"
    unit = tmp_path / "linkwarn.service"
    options = ["--listen-host", "0.0.0.0", "--secret-file", "/etc/linkwarn/secret"]
    options += ["--events-jsonl", "/var/log/linkwarn/events.jsonl", "--help-text", "Ask IT: 100% sure"]
    unit.write_text(unit_for("--", *options))
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "linkwarn.service" not in result.stderr, result.stderr
    broken = tmp_path / "broken.service"
    text = unit.read_text()
    executable = text.split("ExecStart=", 1)[1].split(" ", 1)[0]
    broken.write_text(text.replace(f"ExecStart={executable} ", "ExecStart=/nonexistent/linkwarn ", 1))
    result = subprocess.run([analyze, "verify", str(broken)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0  # the check can fail: a missing command is found
