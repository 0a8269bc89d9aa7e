"""Pending pushes: messages whose push work no notifier has done yet, taken over when late.

In a cluster, the node that accepts a message does its push work: it hears
its own `MessageAccepted` and opens the collapse windows of the recipients'
offline devices. A node killed after the message's transaction committed and
before the windows were written would lose those pushes for good, so the
transaction also writes the message's pending row. The node's notifier takes
the row off once it has handled the message, and every node runs a sweeper
that takes over rows older than a lease: it reads the message and who got it
from the store and runs the notifier's own handling for it.

No push is sent twice when the accepting node was merely slow, because the
row is taken off by the very statement that opens the message's windows, and
that statement opens them only if it found the row (`PushWindows` on
PostgreSQL). Of the slow node and the sweeper, both may work the message out,
but only the first to open its windows does; the other finds the row gone
and opens nothing. Claiming the row before the live path runs would cost the
hot path a round trip per message, and making a window remember every
message it counted would grow it without bound; the one statement costs
nothing more than opening the windows did. A message that needed no window
(everyone online, nobody wanting it, no target) has its row taken off in a
batch a moment later: if the sweeper takes it over first, it runs the same
checks again, which send a push only to someone who went offline meanwhile.

So the lease decides only how soon a dead node's messages are taken over,
and how often a slow node's are worked out twice for nothing; it is never
what keeps a push from being sent twice. Sweepers of several nodes claim
rows with `FOR UPDATE SKIP LOCKED` under the lease, so that they do not all
work on the same message at once, and a sweeper that dies has its claim
taken over once its lease runs out.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Final, Protocol

import structlog

from chatapp.messaging.events import MessageAccepted

log = structlog.get_logger(__name__)

FLUSH_SECONDS: Final = 0.1
"""How often the rows of messages that needed no window are taken off, in one statement."""


class PendingPushes(Protocol):
    """The messages whose push work is not done yet."""

    def handled(self, channel_id: int, message_id: int) -> None:
        """The message needed no window: its row goes with the next `flush_handled`."""
        ...

    async def flush_handled(self) -> None:
        """Take off the rows `handled` has named since the last flush."""
        ...

    async def claim_stale(self) -> list[MessageAccepted]:
        """Messages whose row has outlived the lease and no live sweeper holds, each now
        this process's for a lease, as the event their node heard (their rows stay, for the
        statement that opens their windows to take off)."""
        ...


class PendingSweeper:
    """Takes the handled rows off, and hands the stale messages to the notifier."""

    def __init__(
        self,
        pending: PendingPushes,
        handle: Callable[[MessageAccepted], Awaitable[None]],
        *,
        sweep_seconds: float,
    ) -> None:
        self._pending = pending
        self._handle = handle
        self._flushes_per_sweep = max(round(sweep_seconds / FLUSH_SECONDS), 1)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run_forever(), name="notify:pending")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        # What is left is taken over by a sweeper later: a few messages worked out twice.
        with contextlib.suppress(Exception):
            await self._pending.flush_handled()

    async def sweep(self) -> int:
        """Do the push work of every stale message claimed now; how many there were."""
        events = await self._pending.claim_stale()
        for event in events:
            try:
                await self._handle(event)
            except Exception:  # one message must not keep the others waiting
                log.exception("pending_push_failed", message_id=event.message.message_id)
        if events:
            log.info("pending_pushes_taken_over", messages=len(events))
        return len(events)

    async def _run_forever(self) -> None:
        flushes = 0
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            flushes += 1
            try:
                await self._pending.flush_handled()
                if flushes % self._flushes_per_sweep == 0:
                    await self.sweep()
            except Exception:  # a failed look must not stop later ones
                log.exception("pending_push_sweep_failed")
