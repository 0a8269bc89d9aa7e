"""Retention: messages older than `message_retention_days` become deleted messages.

A sweep walks every channel that has messages. A channel's messages are in
`message_id` order and `created_at` grows with the id (ids are handed out in
the order sends are accepted, each stamped with the clock then), so the
expired ones are a prefix of the channel: the sweep reads on from where the
last one stopped (the channel's cursor, kept by a `RetentionLedger` in the
message store's engine) and stops at the first message that is not old
enough. A message that came out of order (the wall clock went back, or two
cluster nodes' clocks disagree) is deleted by a later sweep, once the one
before it has expired too.

Each expired message becomes a `Deletion` by `SERVER_ID`, submitted to the
store like a member's deletion and written in the writer's batches with the
sends: every member gets its `update` entry, live connections get the frame
(`MessageUpdated` on the bus), and the old text leaves the files. The work is
cut into small batches (at most `BATCH_MESSAGES` deletions and about
`BATCH_ENTRIES` inbox entries), each followed by a pause twice as long as it
took, so a first sweep over years of history never holds the writer, the
disk or the loop for long, and leaves them to the users two thirds of the
time.
A channel's cursor moves only after its batch is durable, so it is never
ahead of what the store holds (after a crash, or in a backup, it may be
behind: the next sweep walks the difference again, and deleting what is
deleted changes nothing).

In a cluster one node sweeps at a time (`RetentionTurn`): the others find
the turn taken and skip that round.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

import structlog

from chatapp.bus import Bus
from chatapp.clock import Clock
from chatapp.messaging.events import MessageUpdated
from chatapp.messaging.models import ChangeOutcome, Deletion, StoredMessage
from chatapp.messaging.store import ChangeRefused, MessageMissing, MessageStore, MessageStoreError

SERVER_ID: Final = 0
"""`deleted_by` of a message the server deleted: user ids start at 1, so 0 is nobody's."""
DAY_MS: Final = 86_400_000
SWEEP_INTERVAL_S: Final = 60.0
"""Seconds between two sweeps' starts: a message is deleted within a minute of expiring."""
FIRST_SWEEP_AFTER_S: Final = 5.0
"""A server sweeps this soon after it starts, once its start-up work is done."""
BATCH_MESSAGES: Final = 64
"""The most deletions one batch submits (their texts are read first: 64 at most)."""
BATCH_ENTRIES: Final = 2048
"""About the most inbox entries one batch writes: fewer deletions in a channel of many members."""
BATCH_PAUSE_S: Final = 0.02
PAUSE_PER_WORK: Final = 2.0
"""After each batch that deleted something, a pause twice as long as the batch took (at
least `BATCH_PAUSE_S`): a sweep takes at most about a third of the server's time, on any
machine, however much has expired."""
CHANNELS_PER_READ: Final = 256

_log = structlog.get_logger(__name__)

Pause = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ChannelCursor:
    """A channel that has messages, and how far retention got in it."""

    channel_id: int
    expired_through: int
    """Every message up to this id had expired and is deleted; 0 before the first sweep."""
    last_message_id: int


class RetentionLedger(Protocol):
    """Where retention keeps its cursors: in the message store's own engine, beside the
    deletions, so that a copy or a crash never leaves a cursor ahead of them."""

    async def channels(self, *, after: int, limit: int) -> list[ChannelCursor]:
        """At most `limit` channels with messages whose id is above `after`, ascending."""
        ...

    async def advance(self, channel_id: int, message_id: int) -> None:
        """Note that every message of the channel up to `message_id` expired and is deleted.

        Called only once those deletions are durable; a cursor never moves back.
        """
        ...


class RetentionTurn(Protocol):
    """Whose turn it is to sweep: one process at a time."""

    def hold(self) -> contextlib.AbstractAsyncContextManager[bool]:
        """Take the turn for one sweep: True inside when it is this process's, else False."""
        ...


class OnlyProcess:
    """The turn of a server that is alone on its data: always its own."""

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[bool]:
        yield True


class Members(Protocol):
    """What retention needs from social: who gets a channel's `update` entries."""

    async def members(self, channel_id: int) -> frozenset[int] | None:
        """The channel's members; None when there is no such channel."""
        ...


@dataclass(frozen=True, slots=True)
class Sweep:
    """What one sweep did."""

    ran: bool
    """False when another process had the turn."""
    expired: int = 0
    """Messages that became deleted messages."""
    channels: int = 0
    """Channels looked at."""


class Retention:
    """Deletes expired messages in the background, a batch at a time (see the module)."""

    def __init__(
        self,
        store: MessageStore,
        ledger: RetentionLedger,
        members: Members,
        bus: Bus,
        clock: Clock,
        *,
        days: int,
        turn: RetentionTurn | None = None,
        on_expired: Callable[[int], None] | None = None,
        on_sweep: Callable[[str], None] | None = None,
        pause: Pause = asyncio.sleep,
        interval_s: float = SWEEP_INTERVAL_S,
    ) -> None:
        """`on_expired(n)` counts deleted messages; `on_sweep(outcome)` counts each sweep
        (`done`, `failed`, or `elsewhere` when another process had the turn)."""
        if days <= 0:
            raise ValueError("retention needs at least one day; 0 keeps messages forever")
        self.days = days
        self._store = store
        self._ledger = ledger
        self._members = members
        self._bus = bus
        self._clock = clock
        self._turn = turn or OnlyProcess()
        self._on_expired = on_expired or (lambda count: None)
        self._on_sweep = on_sweep or (lambda outcome: None)
        self._pause = pause
        self._interval_s = interval_s
        self._sweeping = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    def cutoff_ms(self) -> int:
        """Messages created before this are expired."""
        return self._clock.now_ms() - self.days * DAY_MS

    def start(self) -> None:
        """Sweep soon, then every `interval_s`, until `close`."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="message-retention")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def sweep(self) -> Sweep:
        """One sweep over every channel, now (after one already running).

        Raises `MessageStoreError` when the store cannot read or write; what
        was deleted until then stays deleted, and the next sweep goes on.
        """
        async with self._sweeping, self._turn.hold() as mine:
            if not mine:
                self._on_sweep("elsewhere")
                return Sweep(ran=False)
            try:
                done = await self._sweep_channels(self.cutoff_ms())
            except Exception:
                self._on_sweep("failed")
                raise
            self._on_sweep("done")
            return done

    async def _run(self) -> None:
        await self._pause(min(FIRST_SWEEP_AFTER_S, self._interval_s))
        while True:
            started = self._clock.monotonic()
            try:
                done = await self.sweep()
            except (MessageStoreError, ChangeRefused) as failure:
                _log.warning("retention_sweep_failed", error=str(failure))
            except Exception:
                # A bug must not end retention for the life of the process.
                _log.exception("retention_sweep_crashed")
            else:
                if done.expired:
                    _log.info(
                        "retention_swept",
                        expired=done.expired,
                        channels=done.channels,
                        days=self.days,
                    )
            took = self._clock.monotonic() - started
            await self._pause(max(self._interval_s - took, 1.0))

    async def _sweep_channels(self, cutoff_ms: int) -> Sweep:
        expired = channels = 0
        after = 0
        while True:
            page = await self._ledger.channels(after=after, limit=CHANNELS_PER_READ)
            for cursor in page:
                channels += 1
                if cursor.expired_through < cursor.last_message_id:
                    expired += await self._expire_channel(cursor, cutoff_ms)
                else:
                    await asyncio.sleep(0)  # a long list of quiet channels still lets others in
            if len(page) < CHANNELS_PER_READ:
                return Sweep(ran=True, expired=expired, channels=channels)
            after = page[-1].channel_id

    async def _expire_channel(self, cursor: ChannelCursor, cutoff_ms: int) -> int:
        """Delete the channel's expired prefix past its cursor, a batch at a time."""
        channel_id, through = cursor.channel_id, cursor.expired_through
        members = await self._members.members(channel_id) or frozenset()
        per_batch = max(1, min(BATCH_MESSAGES, BATCH_ENTRIES // max(len(members), 1)))
        # One message first: most channels have nothing expired past their cursor.
        limit, expired = 1, 0
        while True:
            started = self._clock.monotonic()
            page = await self._store.history(channel_id, after=through, limit=limit)
            old = _expired_prefix(page.messages, cutoff_ms)
            if not old:
                return expired
            if limit < per_batch and page.has_more:
                limit = per_batch  # there is work: read a whole batch from the same place
                continue
            expired += await self._delete(old, members)
            through = old[-1].message_id
            await self._ledger.advance(channel_id, through)
            if len(old) < len(page.messages) or not page.has_more:
                return expired
            took = self._clock.monotonic() - started
            await self._pause(max(BATCH_PAUSE_S, PAUSE_PER_WORK * took))

    async def _delete(self, messages: Sequence[StoredMessage], members: frozenset[int]) -> int:
        """Delete the messages not deleted yet, in one go; how many this deleted."""
        member_ids = sorted(members)
        pending = [
            self._store.submit_change(
                Deletion(
                    channel_id=message.channel_id,
                    message_id=message.message_id,
                    deleted_by=SERVER_ID,
                ),
                member_ids=member_ids,
            )
            for message in messages
            if not message.deleted
        ]
        # Every outcome is looked at, so that the deletions that landed are told
        # even when another of the batch failed.
        outcomes = await asyncio.gather(*pending, return_exceptions=True)
        deleted = 0
        failure: BaseException | None = None
        for outcome in outcomes:
            if isinstance(outcome, MessageMissing):
                continue  # nothing to delete
            if isinstance(outcome, BaseException):
                failure = failure or outcome
                continue
            if _deleted_now(outcome, members):
                deleted += 1
                self._bus.publish(
                    MessageUpdated(
                        update="deleted",
                        message=outcome.message,
                        inbox_seqs=outcome.inbox_seqs,
                        deleted_by=SERVER_ID,
                    )
                )
        if deleted:
            self._on_expired(deleted)
        if failure is not None:
            raise failure
        return deleted


def _deleted_now(outcome: ChangeOutcome, members: frozenset[int]) -> bool:
    """Whether this deletion changed the message (not one a member deleted meanwhile).

    A channel nobody is in gets no update entries, so its deletions show as
    changing nothing; the message says who deleted it.
    """
    if outcome.changed:
        return True
    return not members and outcome.message.deleted_by == SERVER_ID


def _expired_prefix(messages: Sequence[StoredMessage], cutoff_ms: int) -> list[StoredMessage]:
    """The messages before the first one created at or after the cutoff."""
    old: list[StoredMessage] = []
    for message in messages:
        if message.created_at >= cutoff_ms:
            break
        old.append(message)
    return old
