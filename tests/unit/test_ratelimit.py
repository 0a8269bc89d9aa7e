"""The token bucket behind every abuse limit, on a manual clock."""

from __future__ import annotations

import pytest

from chatapp.clock import ManualClock
from chatapp.ratelimit import KeyedRateLimiter


def test_allows_capacity_then_refuses_with_a_wait() -> None:
    """`capacity` events pass at once; the next is refused with the time until a token frees."""
    clock = ManualClock()
    limiter = KeyedRateLimiter(clock, capacity=3, window_seconds=60)
    assert [limiter.try_acquire("k") for _ in range(3)] == [None, None, None]
    assert limiter.try_acquire("k") == pytest.approx(20.0)


def test_refills_over_time_and_keys_are_independent() -> None:
    """Tokens come back at capacity/window per second; another key has its own bucket."""
    clock = ManualClock()
    limiter = KeyedRateLimiter(clock, capacity=2, window_seconds=10)
    limiter.try_acquire("a")
    limiter.try_acquire("a")
    assert limiter.try_acquire("a") is not None
    assert limiter.try_acquire("b") is None
    clock.advance(5)
    assert limiter.try_acquire("a") is None
    assert limiter.try_acquire("a") is not None


def test_memory_stays_bounded() -> None:
    """Keys whose bucket has refilled are forgotten once the table is large."""
    clock = ManualClock()
    limiter = KeyedRateLimiter(clock, capacity=1, window_seconds=1)
    for i in range(10_000):
        limiter.try_acquire(f"k{i}")
    clock.advance(2)
    limiter.try_acquire("one more")
    limiter.try_acquire("and another")
    assert limiter.try_acquire("and another") is not None
    assert len(limiter._buckets) < 10
