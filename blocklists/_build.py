"""Hatchling's build hook: compile `blocklists/_scan.c`, the share scan's readers.

Run by ``uv sync`` / ``uv run`` (an editable install: the module is compiled in
place, next to its source) and by ``uv build`` (a wheel: it is compiled into the
wheel, which is then tagged for this Python and platform). With no C compiler the
build goes on without it and `blocklists.links` reads every post in Python,
which answers the same, only slower; `links.COMPILED` says which is in use.
Not part of the package at run time (it imports hatchling).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SOURCE = "blocklists/_scan.c"
TARGET = "blocklists/_scan" + (sysconfig.get_config_var("EXT_SUFFIX") or ".so")


def compile_module(source: Path, target: Path) -> str | None:
    """Compile *source* into the extension module *target*; the reason it could not be, or None."""
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return "no C compiler (cc or gcc) found"
    command = [compiler, "-shared", "-fPIC", "-O2", "-Wall",
               "-I", sysconfig.get_paths()["include"], str(source), "-o", str(target)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603 (our own command)
    return None if done.returncode == 0 else f"{' '.join(command)} failed: {done.stderr.strip()}"


class CompileHosts(BuildHookInterface):  # type: ignore[misc]  # hatchling is not installed to check it
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        root = Path(self.root)
        if version == "editable":
            why = compile_module(root / SOURCE, root / TARGET)
        else:
            built = Path(tempfile.mkdtemp(prefix="linkwarn-build-")) / Path(TARGET).name
            why = compile_module(root / SOURCE, built)
            if why is None:
                build_data["force_include"][str(built)] = TARGET
                build_data["pure_python"] = False
                build_data["infer_tag"] = True
        if why is not None:
            self.app.display_warning(f"linkwarn: the compiled readers are not built ({why}); "
                                     "posts are read in Python, which is slower")  # fmt: skip
