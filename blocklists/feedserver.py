"""Serve a feed directory as static files, with ETag and If-None-Match, for demos and tests.

Any static web server, CDN or object store serves a feed as well; this one
exists so that a feed can be tried on one machine. It serves only the feed's
own files (``manifest.json``, ``snapshot-*.jsonl.gz``, ``diff-*.jsonl.gz``),
and only when they are regular files directly in the directory: never a
symbolic link (which could lead out of it), a dot file, a subdirectory or
anything else that happens to lie there, such as a private key.
"""

from __future__ import annotations

import hashlib
import io
import re
import stat
from functools import partial
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

__all__ = ["FeedRequestHandler", "feed_file", "make_server"]

_FEED_NAME = re.compile(r"manifest\.json|(?:snapshot-\d+|diff-\d+-\d+)\.jsonl\.gz")


def feed_file(directory: Path, request_path: str) -> Path | None:
    """The feed file *request_path* names in *directory*, or None when it may not be served."""
    name = request_path.split("?", 1)[0].split("#", 1)[0].lstrip("/")
    if not _FEED_NAME.fullmatch(name):
        return None
    path = directory / name
    try:
        mode = path.lstat().st_mode  # lstat: a symbolic link is refused, never followed
    except OSError:
        return None
    return path if stat.S_ISREG(mode) else None


class FeedRequestHandler(SimpleHTTPRequestHandler):
    server_version = "linkwarn-feed"

    def list_directory(self, path: str | Path) -> None:  # type: ignore[override]
        self.send_error(HTTPStatus.NOT_FOUND, "no directory listings")

    def send_head(self):  # type: ignore[no-untyped-def]
        path = feed_file(Path(self.directory), self.path)
        if path is None:
            self.send_error(HTTPStatus.NOT_FOUND, "no such feed file")
            return None
        try:
            data = path.read_bytes()
        except OSError:
            self.send_error(HTTPStatus.NOT_FOUND, "no such feed file")
            return None
        etag = '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
        if etag in [tag.strip() for tag in self.headers.get("if-none-match", "").split(",")]:
            self.send_response(HTTPStatus.NOT_MODIFIED)
            self.send_header("etag", etag)
            self.end_headers()
            return None
        self.send_response(HTTPStatus.OK)
        self.send_header("content-type", "application/json" if path.suffix == ".json" else "application/gzip")
        self.send_header("content-length", str(len(data)))
        self.send_header("etag", etag)
        self.send_header("cache-control", "no-cache")
        self.end_headers()
        return io.BytesIO(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


def make_server(directory: Path, host: str = "127.0.0.1", port: int = 8088) -> ThreadingHTTPServer:
    handler = partial(FeedRequestHandler, directory=str(directory))
    return ThreadingHTTPServer((host, port), handler)
