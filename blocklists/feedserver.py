"""Serve a feed directory as static files, with ETag and If-None-Match, for demos and tests.

Any static web server, CDN or object store serves a feed as well; this one
exists so that a feed can be tried on one machine. It serves regular files in
the directory only, never a path outside it.
"""

from __future__ import annotations

import hashlib
import io
from functools import partial
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

__all__ = ["FeedRequestHandler", "make_server"]


class FeedRequestHandler(SimpleHTTPRequestHandler):
    server_version = "linkwarn-feed"

    def list_directory(self, path: str | Path) -> None:  # type: ignore[override]
        self.send_error(HTTPStatus.NOT_FOUND, "no directory listings")

    def send_head(self):  # type: ignore[no-untyped-def]
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(HTTPStatus.NOT_FOUND, "no such file")
            return None
        data = path.read_bytes()
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
