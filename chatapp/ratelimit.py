"""Token buckets keyed by a string: the shape of every abuse limit in the server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from chatapp.clock import Clock


class RateLimiter(Protocol):
    """One abuse limit: this process's buckets, or a cluster's shared ones."""

    async def acquire(self, key: str) -> float | None:
        """Take one token for `key`; None if allowed, else seconds until one is free."""
        ...


# Makes the limiter named `limit` allowing `capacity` per `window_seconds`.
LimiterFactory = Callable[[str, int, float], RateLimiter]


class KeyedRateLimiter:
    """Allows `capacity` events per `window_seconds` per key, refilling smoothly.

    Memory stays bounded: once the table is large, keys whose bucket has refilled
    completely carry no information and are forgotten.
    """

    _PRUNE_AT = 10_000

    def __init__(self, clock: Clock, *, capacity: int, window_seconds: float) -> None:
        self._clock = clock
        self._capacity = float(capacity)
        self._refill_per_second = capacity / window_seconds
        self._buckets: dict[str, tuple[float, float]] = {}

    def try_acquire(self, key: str) -> float | None:
        """Take one token for `key`; return None if allowed, else seconds until one is free."""
        now = self._clock.monotonic()
        tokens = self._tokens(key, now)
        if tokens < 1.0:
            return (1.0 - tokens) / self._refill_per_second
        self._buckets[key] = (tokens - 1.0, now)
        if len(self._buckets) > self._PRUNE_AT:
            self._prune(now)
        return None

    async def acquire(self, key: str) -> float | None:
        """`try_acquire`, as the `RateLimiter` protocol asks."""
        return self.try_acquire(key)

    def _tokens(self, key: str, now: float) -> float:
        tokens, updated = self._buckets.get(key, (self._capacity, now))
        return min(self._capacity, tokens + (now - updated) * self._refill_per_second)

    def _prune(self, now: float) -> None:
        full = [key for key in self._buckets if self._tokens(key, now) >= self._capacity]
        for key in full:
            del self._buckets[key]


def local_limiters(clock: Clock) -> LimiterFactory:
    """Limiters that count in this process (the embedded default)."""

    def make(limit: str, capacity: int, window_seconds: float) -> RateLimiter:
        return KeyedRateLimiter(clock, capacity=capacity, window_seconds=window_seconds)

    return make
