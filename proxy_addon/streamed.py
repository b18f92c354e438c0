"""A post mitmproxy streams is read as it passes, and decided on what was seen.

mitmproxy streams a request body larger than its ``stream_large_bodies``
option (off by default), and one of unknown length once that option is set:
each chunk goes upstream as it arrives, and no addon sees the whole body
before the server does, nor can answer it with a page. `StreamedPost` is the
stream's filter (mitmproxy's ``request.stream`` callable). It finds the links
in each chunk, read together with the end of the chunk before it so that a
link across two chunks is seen whole, and screens them as `ShareGuard` screens
a post's. A chunk holding a link the index could match is held back, with
every chunk after it, while the store confirms:

- a ``block`` or ``warn`` link: the connection is cut. The server never gets
  that chunk, nor the end of the body, so the post is never complete; the
  share events are recorded; the browser sees its upload fail (a streamed
  request cannot be answered with a warning page, nor sent anyway);
- anything else (``allow``, ``audit``, a prefix that matched nothing): the
  held chunks go on, with the next one or at the end of the body;
- the body ends before the store has answered: cut, since doubt is not a pass.

Only the first ``linkwarn_share_max_body`` bytes are read, as a post over that
size is not scanned at all; what follows passes as it comes.
"""

from __future__ import annotations

import asyncio
import logging
from time import perf_counter
from typing import TYPE_CHECKING

from mitmproxy import http

from proxy_addon.tunnels import close_client

if TYPE_CHECKING:
    from blocklists.checker import Prefiltered
    from proxy_addon.share import ShareGuard

__all__ = ["OVERLAP", "StreamedPost"]

logger = logging.getLogger(__name__)

OVERLAP = 4096  # bytes of the previous chunk read with each chunk: a link is never longer in a post
MAX_HELD = 16 * 1024 * 1024  # held back while the store confirms; a longer wait cuts the upload


class StreamedPost:
    """One post's ``request.stream`` filter: scans chunks, holds them on a hit, cuts on a listed link."""

    def __init__(self, guard: ShareGuard, flow: http.HTTPFlow, content_type: str, limit: int) -> None:
        self.guard, self.flow, self.content_type, self.limit = guard, flow, content_type, limit
        self.seen = 0
        self.tail = b""
        self.held: list[bytes] = []
        self.confirming: asyncio.Task[None] | None = None
        self.cleared: set[str] = (
            set()
        )  # links the store found nothing to hold for (read again in the overlap)
        self.cut = False

    def __call__(self, data: bytes) -> list[bytes]:
        if self.cut:
            return []
        if self.confirming is not None:  # waiting for the store: hold everything
            self.held.append(data)
            if not data:
                self._cut("the body ended before the store confirmed its links")
            elif sum(map(len, self.held)) > MAX_HELD:
                self._cut("too much of the body waited for the store")
            return []
        if data and self.seen < self.limit:
            started, figures = perf_counter(), self.guard.runtime.metrics.scan
            figures.posts += not self.seen
            window = self.tail + data
            self.seen += len(data)
            self.tail = window[-OVERLAP:]
            links = [link for link in self.guard.find(window, self.content_type) if link not in self.cleared]
            hits = self.guard.screen(links)
            figures.seconds += perf_counter() - started
            if hits:
                self.held.append(data)
                self.confirming = asyncio.ensure_future(self._confirm(hits))
                return []
        released, self.held = self.held, []
        return [*released, data] if data else released

    async def _confirm(self, hits: list[tuple[str, Prefiltered]]) -> None:
        try:
            listed = await self.guard.decide_and_record(self.flow, hits)
        except Exception:
            logger.exception("linkwarn: confirming a streamed post's links failed")
            self._cut("its links could not be confirmed")
            return
        if listed:
            logger.info(
                "linkwarn: cut off a streamed post to %s carrying %s",
                self.flow.request.pretty_host,
                listed[0].entry or "a hashed entry",
            )
            self._cut(None)
            return
        self.cleared.update(link for link, _ in hits)
        self.confirming = None

    def _cut(self, why: str | None) -> None:
        if why is not None:
            logger.info("linkwarn: cut off a streamed post to %s: %s", self.flow.request.pretty_host, why)
        self.cut = True
        self.held = []
        if self.flow.killable:
            self.flow.kill()
        close_client(self.flow.client_conn.id)
