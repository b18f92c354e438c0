from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from blocklists import Store

VECTORS = Path(__file__).parent / "vectors"


def load_vectors(name: str) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = json.loads((VECTORS / name).read_text("utf-8"))["cases"]
    return cases


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with Store.in_dir(tmp_path) as opened:
        yield opened
