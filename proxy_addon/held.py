"""Posts held back for the links they carry, until a person sends them anyway or they expire.

In this proxy's memory only, and bounded: at most `MAX_HELD` posts and
`MAX_HELD_BYTES` of bodies, each for as long as its `HeldPost.expires_at`.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from dataclasses import dataclass

__all__ = ["MAX_HELD", "MAX_HELD_BYTES", "HeldPost", "HeldPosts", "ListedLink"]

MAX_HELD = 200
MAX_HELD_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ListedLink:
    url: str  # as found in the body
    canonical: str
    action: str
    entry: str  # the entry's expression, or "" for a hashed entry
    reason: str
    source: str
    key: bytes


@dataclass(frozen=True, slots=True)
class HeldPost:
    """A request held back for its links, to send on unchanged if a person chooses to."""

    client: str
    method: str
    url: str
    headers: tuple[tuple[bytes, bytes], ...]
    content: bytes
    links: tuple[ListedLink, ...]
    action: str  # the strictest: "block" or "warn"
    expires_at: float

    @property
    def target(self) -> str:
        return self.url.split("?", 1)[0]


class HeldPosts:
    """Held posts by nonce: at most `MAX_HELD`, `MAX_HELD_BYTES` in all, each for `HOLD_SECONDS`."""

    def __init__(self) -> None:
        self._held: OrderedDict[str, HeldPost] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._held)

    def hold(self, post: HeldPost, now: float) -> str:
        self._expire(now)
        while self._held and (
            len(self._held) >= MAX_HELD or self._bytes + len(post.content) > MAX_HELD_BYTES
        ):
            _, oldest = self._held.popitem(last=False)
            self._bytes -= len(oldest.content)
        nonce = secrets.token_urlsafe(16)
        self._held[nonce] = post
        self._bytes += len(post.content)
        return nonce

    def get(self, nonce: str, now: float) -> HeldPost | None:
        self._expire(now)
        return self._held.get(nonce)

    def take(self, nonce: str, now: float) -> HeldPost | None:
        """The held post, removed: it can be sent once."""
        self._expire(now)
        post = self._held.pop(nonce, None)
        if post is not None:
            self._bytes -= len(post.content)
        return post

    def _expire(self, now: float) -> None:
        for nonce in [n for n, post in self._held.items() if post.expires_at <= now]:
            self._bytes -= len(self._held.pop(nonce).content)
