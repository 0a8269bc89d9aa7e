"""Incoming events on their way to the application, and the end that follows the last."""

from __future__ import annotations

import asyncio

from chatapp.client.frames import Event


class EventStream:
    """Events in the order they arrived; once ended, every reader sees the end."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue()

    def put(self, event: Event) -> None:
        self._queue.put_nowait(event)

    def end(self) -> None:
        self._queue.put_nowait(None)

    async def take(self) -> Event | None:
        """The next event; None once the stream has ended and every event was taken."""
        event = await self._queue.get()
        if event is None:
            self._queue.put_nowait(None)  # every later reader sees the end too
        return event
