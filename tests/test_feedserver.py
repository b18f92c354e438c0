"""`linkwarn feed serve`'s server: the feed's own regular files, nothing else in or beside its folder."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from blocklists.feedserver import make_server


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    feed = tmp_path / "feed"
    feed.mkdir()
    server = make_server(feed, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/", feed
    server.shutdown()
    server.server_close()


def test_only_the_feeds_regular_files_are_served(served: tuple[str, Path], tmp_path: Path) -> None:
    url, feed = served
    (feed / "manifest.json").write_bytes(b"manifest")
    (feed / "snapshot-3.jsonl.gz").write_bytes(b"snapshot")
    (tmp_path / "feed.key").write_text("PRIVATE KEY beside the feed")
    (feed / "feed.key").write_text("PRIVATE KEY in the feed")
    os.symlink(tmp_path / "feed.key", feed / "diff-1-2.jsonl.gz")  # a feed name, leading out
    os.symlink(feed / "snapshot-3.jsonl.gz", feed / "snapshot-4.jsonl.gz")  # a link, even inside
    (feed / ".diff-2-3.jsonl.gz.tmp").write_bytes(b"half written")
    (feed / "diff-2-3.jsonl.gz").mkdir()
    with httpx.Client() as client:
        assert client.get(url + "manifest.json").content == b"manifest"
        assert client.get(url + "snapshot-3.jsonl.gz?x=1").content == b"snapshot"
        for path in (
            "feed.key", "diff-1-2.jsonl.gz", "snapshot-4.jsonl.gz", ".diff-2-3.jsonl.gz.tmp",
            "diff-2-3.jsonl.gz", "../feed.key", "%2e%2e/feed.key", "", "sub/manifest.json",
        ):  # fmt: skip
            response = client.get(url + path)
            assert response.status_code == 404, path
            assert b"PRIVATE" not in response.content
