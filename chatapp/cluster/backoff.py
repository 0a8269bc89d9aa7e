"""Waits between attempts to reach Redis: doubling, capped, with jitter."""

from __future__ import annotations

import random


class Backoff:
    """`next()` gives the wait before the next attempt; `reset()` after a success."""

    def __init__(self, *, initial: float = 0.05, maximum: float = 5.0) -> None:
        self._initial = initial
        self._maximum = maximum
        self._current = initial

    def next(self) -> float:
        wait = self._current
        self._current = min(self._maximum, self._current * 2)
        # Jitter, so that nodes that lost Redis together do not return in step.
        return wait * random.uniform(0.5, 1.0)

    def reset(self) -> None:
        self._current = self._initial
