"""Time as a dependency, so that timeouts can be tested without sleeping."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Where every module reads the time."""

    def now_ms(self) -> int:
        """Wall-clock milliseconds since the Unix epoch (for timestamps people see)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (for timeouts and rate limits)."""
        ...


class SystemClock:
    """The real clock."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock:
    """A clock that moves only when told to; tests use it to run 30 s in no time."""

    def __init__(self, start_ms: int = 1_700_000_000_000) -> None:
        self._now_ms = start_ms
        self._monotonic = 1000.0

    def now_ms(self) -> int:
        return self._now_ms

    def monotonic(self) -> float:
        return self._monotonic

    def advance(self, seconds: float) -> None:
        self._now_ms += round(seconds * 1000)
        self._monotonic += seconds
