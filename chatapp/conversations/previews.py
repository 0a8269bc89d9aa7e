"""Channels' counters and the previews of their last messages, read in batches and kept.

A preview stays right for as long as its channel's `last_message_id` has not
moved and its message was not changed (edited, deleted: `MessageUpdated` on
the bus, from any node, makes `forget` drop it): each preview is kept with the
counter it was checked against, and read again once the counter differs. The
channel objects of one change to a 100-member group (one per member) then
cost one read, not a hundred, and a second `GET /channels` reads only the
channels that moved since the first.

A channel never seen is read before its counter is asked for: on LevelDB
the seek that finds the last message also tells the counter (and keeps it
in memory), where asking for the counter first would read the same table
block twice. Several requests that need the same unseen channels at once
share one read of each.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from chatapp.messaging import MessagePreview, Messaging

KEPT: Final = 4096
"""Previews kept, the least recently used dropped first: at most 200 characters each, so
a few MiB at most, and room for the channels of several users with 1,000 each."""


@dataclass(slots=True)
class _Kept:
    preview: MessagePreview | None
    counter: int | None
    """The `last_message_id` the preview is known to be the last of; None until checked."""


class LastMessages:
    def __init__(self, messaging: Messaging, *, max_chars: int, kept: int = KEPT) -> None:
        self._messaging = messaging
        self._max_chars = max_chars
        self._size = kept
        self._kept: OrderedDict[int, _Kept] = OrderedDict()
        self._reading: dict[int, asyncio.Future[None]] = {}

    async def of(
        self, channel_ids: Sequence[int]
    ) -> tuple[dict[int, int], dict[int, MessagePreview]]:
        """`(channel_id -> last_message_id, channel_id -> preview)`; no preview without messages.

        Each preview is the last message as of the counter returned, or newer
        (a message stored in between): never older.
        """
        unseen = [channel_id for channel_id in channel_ids if channel_id not in self._kept]
        # What this call read itself, so a list longer than what is kept is read once.
        fresh = await self._read(unseen, share=True) if unseen else {}
        counters = await self._messaging.last_message_ids(channel_ids)
        previews: dict[int, MessagePreview] = {}
        stale: list[int] = []
        for channel_id, last in counters.items():
            if not last:
                continue
            kept = self._checked(channel_id, fresh.get(channel_id), last)
            if kept is None:
                stale.append(channel_id)
            elif kept.preview is not None:
                previews[channel_id] = kept.preview
        if stale:
            read = await self._read(stale, share=False)
            for channel_id in stale:
                read[channel_id].counter = counters[channel_id]
                preview = read[channel_id].preview
                if preview is not None:
                    previews[channel_id] = preview
        return counters, previews

    def forget(self, channel_id: int, message_id: int) -> None:
        """A message of the channel changed: a kept preview of it is read again when next asked."""
        kept = self._kept.get(channel_id)
        if kept is not None and (kept.preview is None or kept.preview.message_id == message_id):
            del self._kept[channel_id]

    def _checked(self, channel_id: int, fresh: _Kept | None, last: int) -> _Kept | None:
        """The preview read now or kept, if it is the last message as of counter `last`."""
        kept = fresh or self._kept.get(channel_id)
        if kept is None:
            return None
        if kept.counter is None and kept.preview is not None and kept.preview.message_id == last:
            kept.counter = last  # read before the counter was known, and it is the last
        if kept.counter != last:
            return None
        if channel_id in self._kept:
            self._kept.move_to_end(channel_id)
        return kept

    async def _read(self, channel_ids: list[int], *, share: bool) -> dict[int, _Kept]:
        """Read the channels' previews and keep them; with `share`, wait for reads running.

        Returns what this call read. A channel another request is reading is
        not read again: this one waits, then finds the preview kept (or, if
        that read failed, not, and its counter check sends it to be read anew).
        """
        waiting = [self._reading[c] for c in channel_ids if share and c in self._reading]
        mine = [c for c in channel_ids if not (share and c in self._reading)]
        read: dict[int, _Kept] = {}
        if mine:
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            for channel_id in mine:
                self._reading.setdefault(channel_id, done)
            try:
                found = await self._messaging.last_messages(mine, max_chars=self._max_chars)
                for channel_id in mine:
                    read[channel_id] = self._keep(channel_id, _Kept(found.get(channel_id), None))
            finally:
                for channel_id in mine:
                    if self._reading.get(channel_id) is done:
                        del self._reading[channel_id]
                done.set_result(None)
        if waiting:
            # Shielded: a request that gives up must not cancel another's read.
            await asyncio.gather(*(asyncio.shield(flight) for flight in set(waiting)))
        return read

    def _keep(self, channel_id: int, kept: _Kept) -> _Kept:
        self._kept[channel_id] = kept
        self._kept.move_to_end(channel_id)
        while len(self._kept) > self._size:
            self._kept.popitem(last=False)
        return kept
