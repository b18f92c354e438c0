"""A feed publisher and a real HTTP server on 127.0.0.1 that can misbehave on request."""

from __future__ import annotations

import gzip
import threading
import time
from dataclasses import dataclass
from functools import partial
from http.server import ThreadingHTTPServer
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from blocklists import Action, Entry
from blocklists.feed import publish
from blocklists.feedserver import FeedRequestHandler

ENDLESS_CHUNKS = 1600  # of 64 KiB: 100 MB


class MisbehavingHandler(FeedRequestHandler):
    """Serves the feed directory, or fails the way the server's ``mode`` says."""

    server: FeedHost.Server

    def do_GET(self) -> None:
        mode = self.server.mode
        self.server.requests.append(self.path)
        if mode == "500":
            self.send_error(500, "feed host is having a bad day")
            return
        if mode == "slow":
            time.sleep(self.server.slow_seconds)
        if mode in ("trickle", "endless", "compressed") and self.path.endswith(".json"):
            self._hostile(mode)
            return
        if mode == "truncate" and self.path.endswith(".gz"):
            data = Path(self.translate_path(self.path)).read_bytes()
            self.send_response(200)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()

    def _hostile(self, mode: str) -> None:
        """trickle: a byte every 0.1 s for a minute; endless: 100 MB with no length (far more than the
        kernel buffers between two local sockets hold, so a client that stops reading stops it);
        compressed: the real manifest gzip'd under Content-Encoding: gzip."""
        self.send_response(200)
        if mode == "compressed":
            data = gzip.compress(Path(self.translate_path(self.path)).read_bytes())
            self.send_header("content-encoding", "gzip")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self.send_header("connection", "close")
        self.end_headers()
        self.close_connection = True
        try:
            for _ in range(600 if mode == "trickle" else ENDLESS_CHUNKS):
                self.wfile.write(b"x" if mode == "trickle" else b"x" * 65536)
                self.wfile.flush()
                self.server.sent += 1
                if mode == "trickle":
                    time.sleep(0.1)
        except OSError:
            pass  # the client gave up, as it should


@dataclass
class FeedHost:
    class Server(ThreadingHTTPServer):
        daemon_threads = True
        mode = "normal"
        slow_seconds = 3.0
        sent = 0  # chunks a hostile mode wrote
        requests: list[str]

    server: Server
    directory: Path

    @classmethod
    def start(cls, directory: Path) -> FeedHost:
        directory.mkdir(parents=True, exist_ok=True)
        server = cls.Server(("127.0.0.1", 0), partial(MisbehavingHandler, directory=str(directory)))
        server.requests = []
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return cls(server, directory)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def entries(*expressions: str, action: Action = Action.BLOCK) -> list[Entry]:
    return [Entry.listing(e, action, reason=f"listed: {e}", added_at=1) for e in expressions]


def publish_version(
    host: FeedHost, key: Ed25519PrivateKey, listed: list[Entry], *, now: int | None = None, **options: object
) -> int:
    result = publish(listed, host.directory, key, now=now or int(time.time()), min_interval=1, **options)  # type: ignore[arg-type]
    return result.version
