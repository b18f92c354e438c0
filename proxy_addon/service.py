"""A hardened systemd unit for ``linkwarn run`` with given options (``linkwarn service systemd``).

The unit runs the proxy as an unprivileged user (`DynamicUser=yes`, or a named
user), keeps its data in ``/var/lib/linkwarn`` (`StateDirectory=`, mode 0700),
makes the rest of the file system read-only (`ProtectSystem=strict`), and
forbids gaining privileges (`NoNewPrivileges=yes`), along with the usual
sandboxing. A fleet secret given with ``--secret-file`` is handed over as a
systemd credential (`LoadCredential=`), so the file can stay root's, mode
0600, and the service reads its copy under ``$CREDENTIALS_DIRECTORY``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

__all__ = ["UnitSpec", "render_unit", "systemd_quote"]

STATE_DIR = "/var/lib/linkwarn"
SECRET_CREDENTIAL = "linkwarn-secret"  # noqa: S105 - a credential's name, not a secret
_PLAIN = re.compile(r"^[A-Za-z0-9_@+=:,./-]+$")
_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,30}$")


def systemd_quote(word: str) -> str:
    """*word* as one argument of ``ExecStart=``: quoted where needed, ``%`` and ``$`` escaped."""
    escaped = word.replace("%", "%%").replace("$", "$$")
    if _PLAIN.match(word):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True, slots=True)
class UnitSpec:
    executable: str  # absolute path of the linkwarn command
    run_args: tuple[str, ...] = ()  # linkwarn run's options, as given
    user: str | None = None  # None: DynamicUser
    interpreter: str | None = None  # the Python the command runs on, when known


def _value_of(args: Sequence[str], flag: str) -> tuple[int, str] | None:
    """Where *flag*'s value is in *args* (``--flag VALUE`` or ``--flag=VALUE``), and the value."""
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            return i + 1, args[i + 1]
        if arg.startswith(flag + "="):
            return i, arg[len(flag) + 1 :]
    return None


def render_unit(spec: UnitSpec) -> str:
    """The unit file's text; raises ValueError for a relative executable or a bad user name."""
    if not PurePosixPath(spec.executable).is_absolute():
        raise ValueError(f"the executable must be an absolute path, not {spec.executable!r}")
    if spec.user is not None and not _USER.match(spec.user):
        raise ValueError(f"{spec.user!r} is not a system user name")
    args = list(spec.run_args)
    words = [systemd_quote(spec.executable), "run"]
    extra: list[str] = []
    data_dir = _value_of(args, "--data-dir")
    if data_dir is None:
        args[:0] = ["--data-dir", STATE_DIR]
    elif not data_dir[1].startswith(STATE_DIR):
        extra.append(f"ReadWritePaths={systemd_quote(data_dir[1])}")
    secret = _value_of(args, "--secret-file")
    if secret is not None:
        extra.append(f"LoadCredential={SECRET_CREDENTIAL}:{secret[1]}")
    jsonl = _value_of(args, "--events-jsonl")
    if jsonl is not None:
        extra.append(f"ReadWritePaths={systemd_quote(str(PurePosixPath(jsonl[1]).parent))}")
    for i, arg in enumerate(args):
        if secret is not None and i == secret[0]:
            # The service's copy of the credential; ${...} is expanded by systemd, so left unescaped.
            value = "${CREDENTIALS_DIRECTORY}/" + SECRET_CREDENTIAL
            words.append(value if arg == secret[1] else "--secret-file=" + value)
        else:
            words.append(systemd_quote(arg))
    port = _value_of(args, "--listen-port")
    low_port = port is not None and port[1].isdigit() and int(port[1]) < 1024
    capabilities = "CAP_NET_BIND_SERVICE" if low_port else ""
    user_lines = ["DynamicUser=yes"] if spec.user is None else [f"User={spec.user}", f"Group={spec.user}"]
    home = any(p.startswith(("/home/", "/root/")) for p in (spec.executable, spec.interpreter or ""))
    lines = [
        "[Unit]",
        "Description=linkwarn proxy: warns before links to leak mirrors are opened or shared",
        "After=network-online.target",
        "Wants=network-online.target",
        "",
        "[Service]",
        "Type=simple",
        f"ExecStart={' '.join(words)}",
        *user_lines,
        "StateDirectory=linkwarn",
        "StateDirectoryMode=0700",
        "UMask=0077",
        "Restart=on-failure",
        "RestartSec=2s",
        "TimeoutStopSec=30s",
        "LimitNOFILE=65536",
        *extra,
        "# Sandboxing: read-only system, no privileges to gain, no devices, kernel or other users' files.",
        "ProtectSystem=strict",
        # The command or its Python lives in a home directory (a uv project, pyenv): readable, not writable.
        f"ProtectHome={'read-only' if home else 'yes'}",
        "PrivateTmp=yes",
        "PrivateDevices=yes",
        "NoNewPrivileges=yes",
        f"CapabilityBoundingSet={capabilities}",
        f"AmbientCapabilities={capabilities}",
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectKernelLogs=yes",
        "ProtectControlGroups=yes",
        "ProtectClock=yes",
        "ProtectHostname=yes",
        "ProtectProc=invisible",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        "RestrictNamespaces=yes",
        "RestrictRealtime=yes",
        "RestrictSUIDSGID=yes",
        "LockPersonality=yes",
        "SystemCallArchitectures=native",
        "SystemCallFilter=@system-service",
        "SystemCallFilter=~@privileged",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ]
    return "\n".join(lines)
