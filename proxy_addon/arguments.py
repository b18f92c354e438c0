"""Argument pieces the ``linkwarn`` subcommands share: one definition each."""

from __future__ import annotations

import argparse
from pathlib import Path

from blocklists import Action, ListFormat, default_data_dir
from blocklists.entry import parse_duration

__all__ = ["data_dir_parent", "duration", "list_reading_parent"]


def duration(text: str) -> int:
    """An argparse type: seconds in ``90s``, ``15m``, ``12h``, ``7d``."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def data_dir_parent() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help=f"where linkwarn keeps its store and secrets (default: {default_data_dir()})",
    )
    return parent


def list_reading_parent() -> argparse.ArgumentParser:
    """How to read list files: shared by ``import`` and ``feed publish``."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--format",
        choices=[f.value for f in ListFormat],
        default="auto",
        help="the files' format (default: detected from name and content)",
    )
    parent.add_argument(
        "--action",
        choices=[a.value for a in Action],
        default="block",
        help="action for lines that do not name one (default: block)",
    )
    return parent
