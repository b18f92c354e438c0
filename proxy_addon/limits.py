"""A per-client rate limit with bounded memory. Pure: the caller passes the time."""

from __future__ import annotations

from collections import OrderedDict, deque

__all__ = ["RateLimiter"]


class RateLimiter:
    """At most *limit* events per *window* seconds for each client; at most *clients* remembered.

    The least recently seen clients are forgotten first, so a flood of made-up
    client names cannot grow it without bound (it can only make a forgotten
    client's count start again).
    """

    def __init__(self, limit: int, window: float, clients: int = 10_000) -> None:
        self.limit, self.window, self.clients = limit, window, clients
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()
        self.refused = 0

    def allow(self, client: str, now: float) -> bool:
        """Count one event for *client* and say whether it is within the limit."""
        times = self._seen.pop(client, None)
        if times is None:
            times = deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        self._seen[client] = times
        if len(self._seen) > self.clients:
            self._seen.popitem(last=False)
        if len(times) >= self.limit:
            self.refused += 1
            return False
        times.append(now)
        return True
