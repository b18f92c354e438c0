from __future__ import annotations

from proxy_addon.limits import RateLimiter


def test_a_client_gets_its_limit_per_window() -> None:
    limiter = RateLimiter(3, 60)
    assert [limiter.allow("a", t) for t in (0, 1, 2, 3)] == [True, True, True, False]
    assert limiter.allow("b", 3)  # each client its own
    assert limiter.allow("a", 60.5)  # the first one left the window
    assert limiter.refused == 1


def test_memory_is_bounded_by_forgetting_the_least_recent_client() -> None:
    limiter = RateLimiter(1, 3600, clients=100)
    for n in range(1000):
        limiter.allow(f"client-{n}", n)
    assert len(limiter._seen) == 100
    assert not limiter.allow("client-999", 1000)  # the recent are remembered
    assert limiter.allow("client-0", 1000)  # the forgotten start again


def test_a_zero_limit_refuses_everything() -> None:
    assert not RateLimiter(0, 60).allow("a", 0)
