"""Retention's ledger in memory, over any `MessageStore`: for tests of `Retention` on fakes."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from chatapp.messaging.retention import ChannelCursor
from chatapp.messaging.store import MessageStore

_LAST_ID = 2**64 - 1


class FakeRetentionLedger:
    """`RetentionLedger` with its cursors in a dict; the channels are the store's own.

    `advanced` records every `advance` call, in order, so a test can see that
    a cursor moved only after its deletions were stored.
    """

    def __init__(self, store: MessageStore) -> None:
        self._store = store
        self.cursors: dict[int, int] = {}
        self.advanced: list[tuple[int, int]] = []

    async def channels(self, *, after: int, limit: int) -> list[ChannelCursor]:
        """See `RetentionLedger.channels`: found by a walk over the store's messages."""
        found: list[ChannelCursor] = []
        while len(found) < limit:
            first = await self._store.scan_messages(after=(after, _LAST_ID), limit=1)
            if not first:
                break
            after = first[0].channel_id
            found.append(
                ChannelCursor(
                    channel_id=after,
                    expired_through=self.cursors.get(after, 0),
                    last_message_id=await self._store.last_message_id(after),
                )
            )
            if after == _LAST_ID:
                break
        return found

    async def advance(self, channel_id: int, message_id: int) -> None:
        """See `RetentionLedger.advance`."""
        self.advanced.append((channel_id, message_id))
        self.cursors[channel_id] = max(self.cursors.get(channel_id, 0), message_id)


class TakenTurn:
    """`RetentionTurn` of a process whose turn another has: every sweep is skipped."""

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[bool]:
        yield False
