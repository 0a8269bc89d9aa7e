"""A sender has read what they sent: their read marker follows their own messages.

Moving the marker on every send would put a SQLite write on the hottest path,
so the marks are kept in memory, merged into every read of the markers, and
written in one transaction every `interval` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from chatapp.messaging.events import MessageAccepted
from chatapp.social.store import ChannelStore

log = structlog.get_logger(__name__)


class SenderReadMarks:
    def __init__(self, store: ChannelStore, *, interval: float = 0.5) -> None:
        self._store = store
        self._interval = interval
        self._pending: dict[tuple[int, int], int] = {}
        self._task: asyncio.Task[None] | None = None

    async def message_accepted(self, event: MessageAccepted) -> None:
        message = event.message
        key = (message.channel_id, message.sender_id)
        self._pending[key] = max(self._pending.get(key, 0), message.message_id)

    def merged(self, channel_id: int, user_id: int, stored: int) -> int:
        """The marker as stored, moved up to what the user has sent since."""
        return max(stored, self._pending.get((channel_id, user_id), 0))

    def start(self) -> None:
        self._task = asyncio.create_task(self._flush_forever(), name="sender-read-marks")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()

    async def flush(self) -> None:
        if not self._pending:
            return
        marks, self._pending = self._pending, {}
        try:
            await self._store.advance_read_markers(
                [
                    (channel_id, user_id, message_id)
                    for (channel_id, user_id), message_id in marks.items()
                ]
            )
        except Exception:
            # Put them back (keeping any newer marks) to try again next time.
            for key, message_id in marks.items():
                self._pending[key] = max(self._pending.get(key, 0), message_id)
            log.exception("sender_read_marks_not_written", count=len(marks))

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.flush()
