"""Closing connections that have said nothing for too long, with one timer for all of them.

A timeout on each connection's `receive` costs each idle socket a timeout
object and a timer handle for its whole life, and makes both again for every
frame. Instead each connection notes when it last heard a frame
(`Connection.heard_at`, the loop's clock) and one task looks over all of
them a few times per idle period.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable

from chatapp.gateway.connection import CLOSE_HELLO_TIMEOUT, Connection

# A silent connection is closed at most an eighth of the idle period late, and
# at most 5 s (60 s by default: 7.5 s). A look over 19,000 connections takes a
# few milliseconds, so looking every 5 s costs well under 1% of a core.
LOOKS_PER_PERIOD = 8
MAX_LOOK_INTERVAL = 5.0


class IdleWatch:
    def __init__(
        self, connections: Callable[[], Iterable[Connection]], idle_seconds: float
    ) -> None:
        self._connections = connections
        self.idle_seconds = idle_seconds
        self._interval = min(MAX_LOOK_INTERVAL, idle_seconds / LOOKS_PER_PERIOD)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start looking, if not yet (the gateway calls this for each new connection)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._look_forever(), name="ws-idle-watch"
            )

    def close_idle(self, now: float) -> int:
        """Close (4408) every connection that heard nothing since `now - idle_seconds`."""
        closed = 0
        since = now - self.idle_seconds
        for connection in self._connections():
            if connection.heard_at <= since and not connection.is_closing:
                connection.close(CLOSE_HELLO_TIMEOUT, "no frame for too long")
                closed += 1
        return closed

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _look_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._interval)
            self.close_idle(loop.time())
