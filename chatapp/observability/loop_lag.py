"""How late the event loop runs: the one number that shows work holding it."""

from __future__ import annotations

import asyncio
import contextlib

from prometheus_client import Gauge


class LoopLag:
    """Sleeps `interval` again and again; how much later than asked it wakes is lag.

    The gauge shows the worst lag of the last second, so a stall of a few
    hundred milliseconds between two scrapes still shows.
    """

    def __init__(self, gauge: Gauge, *, interval: float = 0.1, window: float = 1.0) -> None:
        self._gauge = gauge
        self._interval = interval
        self._window = window
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._measure_forever(), name="loop-lag")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _measure_forever(self) -> None:
        loop = asyncio.get_running_loop()
        worst, window_started = 0.0, loop.time()
        while True:
            asked = loop.time()
            await asyncio.sleep(self._interval)
            woke = loop.time()
            worst = max(worst, woke - asked - self._interval)
            if woke - window_started >= self._window:
                self._gauge.set(worst)
                worst, window_started = 0.0, woke
