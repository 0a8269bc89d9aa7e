"""The protocol spoken on one connection after `hello`: one method per frame type."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog

from chatapp.bus import Bus
from chatapp.errors import Refused, StoreFailed
from chatapp.gateway import frames
from chatapp.gateway.budget import frame_bytes
from chatapp.gateway.connection import Connection, State
from chatapp.gateway.events import TypingStarted
from chatapp.gateway.send_pipeline import SendPipeline
from chatapp.messaging import Messaging, StoredMessage
from chatapp.observability import Metrics
from chatapp.presence.events import HeartbeatReceived
from chatapp.presence.tracker import HeartbeatSink
from chatapp.social import Social

log = structlog.get_logger(__name__)

REPLAY_BATCH = 1000
# A gap fill the store refused is tried again after these pauses (doubling).
FILL_RETRY_FIRST_S = 0.05
FILL_RETRY_MAX_S = 2.0
# Between nodes, how long a gap waits for the missing entries to arrive live
# before they are read from the store. Pub/sub delivers two nodes' events in
# any order, so most gaps close by themselves within milliseconds; reading the
# store for each one made a storm of reads once the cluster fell behind.
CLUSTER_GAP_GRACE_S = 0.05


@dataclass(frozen=True)
class SessionModules:
    """What a session calls: the same for every connection of the gateway."""

    messaging: Messaging
    social: Social
    bus: Bus
    metrics: Metrics
    # A replay batch ends at this much message text, as a /sync page does.
    page_max_bytes: int = 4 * 1024 * 1024
    # How a failed gap fill waits before it reads again (tests pass one that does not).
    pause: Callable[[float], Awaitable[None]] = asyncio.sleep
    # Presence, taking heartbeats without an event each; None: each is a bus event.
    heartbeats: HeartbeatSink | None = None
    # How long a gap waits for what is missing to arrive live (CLUSTER_GAP_GRACE_S on a
    # cluster; 0 in one process, whose bus keeps every inbox in order).
    gap_grace_s: float = 0.0


class Session:
    __slots__ = ("_filling", "_modules", "_replaying", "_sends", "connection")

    def __init__(self, connection: Connection, modules: SessionModules) -> None:
        self.connection = connection
        self._modules = modules
        # Made on the first send: an idle connection (most of them) keeps no
        # task and no queue for sends (two of each, ~6 KiB).
        self._sends: SendPipeline | None = None
        # One replay at a time: a `sync` frame and a gap being filled share the
        # cursor (made by the first replay: a hello without last_seq has none).
        self._replaying: asyncio.Lock | None = None
        self._filling: asyncio.Task[None] | None = None
        connection.on_gap = self.fill_gap

    async def close(self) -> None:
        if self._filling is not None:
            self._filling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._filling
        if self._sends is not None:
            await self._sends.close()

    def fill_gap(self) -> None:
        """Live delivery skipped a seq, or the bus may have dropped some: send them from the store.

        The store is the truth, so a device never has a gap it must find by
        itself; what arrives live meanwhile is held and released in order.
        """
        if self._filling is None or self._filling.done():
            self._filling = asyncio.create_task(
                self._catch_up(), name=f"ws-fill:{self.connection.id}"
            )

    async def _catch_up(self) -> None:
        """Fill the gap from the store, trying again until it answers.

        Going live with the gap unfilled would leave the device stuck: the
        next message held is again behind the gap, and asks for a fill while
        this one is still running. So a failed fill waits and reads again
        (held live messages wait with it, and are read from the store if
        they overflow the hold).
        """
        if self._modules.gap_grace_s:
            await self._modules.pause(self._modules.gap_grace_s)
            if self.connection.release_if_whole():
                return
        pause = FILL_RETRY_FIRST_S
        while True:
            try:
                await self._replay(self.connection.delivered_seq, limit=None)
                if self.connection.state is not State.CATCHING_UP:
                    return
                # Going live released a held message that had overtaken one not
                # yet read (a bus between nodes reorders): that is a new gap, and
                # its `fill_gap` found this fill still running. Fill it now, or
                # the device would wait behind it for good.
                continue
            except (Refused, StoreFailed) as failure:
                log.warning(
                    "gap_not_filled",
                    seq=self.connection.delivered_seq,
                    error=str(failure),
                    retry_in_s=pause,
                )
            if self.connection.state is State.CLOSING:
                return
            await self._modules.pause(pause)
            pause = min(pause * 2, FILL_RETRY_MAX_S)

    async def handle(self, frame: frames.ClientFrame) -> None:
        """Answer one frame; a refusal becomes an `error` frame and the connection goes on."""
        try:
            if isinstance(frame, frames.Send):
                if self._sends is None:
                    self._sends = SendPipeline(
                        self.connection, self._modules.messaging, self._modules.metrics
                    )
                await self._sends.put(frame)
            elif isinstance(frame, frames.Heartbeat):
                self._heartbeat(frame)
            elif isinstance(frame, frames.Sync):
                await self.replay(frame.since, ref=frame.ref)
            elif isinstance(frame, frames.Read):
                await self._read(frame)
            elif isinstance(frame, frames.Typing):
                await self._typing(frame)
            elif isinstance(frame, frames.Hello):
                raise frames.FrameError("hello was already said on this connection")
        except Refused as refusal:
            self.connection.push(frames.error_frame(refusal.code, refusal.message, ref=frame.ref))
        except StoreFailed:
            log.exception("store_failed", frame=type(frame).__name__)
            self.connection.push(
                frames.error_frame(
                    "store_unavailable",
                    "the server could not do that now; try again",
                    ref=frame.ref,
                )
            )

    async def replay(self, since: int, *, ref: str | None = None) -> None:
        """Send inbox entries after `since` (at most one batch), then `synced`."""
        synced = await self._replay(since, limit=REPLAY_BATCH)
        await self.connection.put(frames.with_ref(synced, ref))

    async def _replay(self, since: int, *, limit: int | None) -> dict[str, Any]:
        """Send entries after `since` until the present (or `limit`); the `synced` to answer."""
        connection = self.connection
        user_id = connection.user_id
        if self._replaying is None:
            self._replaying = asyncio.Lock()
        async with self._replaying:
            connection.start_catching_up(since)
            cursor, sent, sent_bytes = since, 0, 0
            while True:
                if limit is not None and (
                    sent >= limit or sent_bytes >= self._modules.page_max_bytes
                ):
                    return {"type": "synced", "seq": cursor, "has_more": True}
                batch, left = REPLAY_BATCH if limit is None else limit - sent, None
                if limit is not None and sent:
                    # What is left of this batch's budget, not a whole page's more
                    # (the first page always carries one entry, however long).
                    left = self._modules.page_max_bytes - sent_bytes
                page = await self._modules.messaging.inbox(
                    user_id, since=cursor, limit=batch, max_bytes=left
                )
                for entry in page.entries:
                    if entry.update is None:
                        await self._own_send_answered(entry.message)
                    frame = frames.entry_frame(entry)
                    sent_bytes += frame_bytes(frame)
                    await connection.replayed(entry.seq, frame)
                    cursor = entry.seq
                sent += len(page.entries)
                if page.has_more and not page.entries:
                    # The next entry does not fit in what is left of the budget.
                    return {"type": "synced", "seq": cursor, "has_more": True}
                if page.has_more:
                    continue
                # Reached the present. If live messages overflowed the hold while
                # replaying, read again rather than leave a gap.
                if connection.go_live():
                    return {"type": "synced", "seq": connection.delivered_seq, "has_more": False}

    async def _own_send_answered(self, message: StoredMessage) -> None:
        """Wait, if `message` is a send of this connection still unanswered, for its answer.

        The store shows a send as soon as it is stored, which is a few steps
        before the send pipeline hears of it and records the ack's seq
        (`Connection.own`); a replay reading the store in between would send
        this connection's own send as a `message` as well as its `ack`.
        `(sender_id, client_msg_id)` names one send, so a stored entry with this
        user as sender and a client_msg_id the pipeline has not answered is
        that send (or the original it repeats, which its ack carries). Waiting
        for the answer, rather than skipping the entry, is right whatever it
        is: after an ack the seq is recorded as own and `replayed` skips it;
        after an error the entry is an ordinary message and is sent. The wait
        is short: acks go in the order sent, and the sends before this one
        reached the store before it did.
        """
        sends = self._sends
        if sends is not None and message.sender_id == self.connection.user_id:
            await sends.answered(message.client_msg_id)

    async def skip_history(self, max_seq: int, *, ref: str | None = None) -> None:
        """For a hello without last_seq: deliver only what arrives after `max_seq`."""
        self.connection.skip_to(max_seq)
        synced = {"type": "synced", "seq": max_seq, "has_more": False}
        await self.connection.put(frames.with_ref(synced, ref))

    def _heartbeat(self, frame: frames.Heartbeat) -> None:
        connection = self.connection
        if frame.ref is None:
            connection.push(frames.HEARTBEAT_ACK)
        else:
            connection.push(frames.with_ref({"type": "heartbeat_ack"}, frame.ref))
        sink = self._modules.heartbeats
        if sink is not None and sink.heard(connection.user_id, connection.device_id):
            return
        self._modules.bus.publish(
            HeartbeatReceived(
                user_id=connection.user_id,
                device_id=connection.device_id,
                connection_id=connection.id,
            )
        )

    async def _read(self, frame: frames.Read) -> None:
        messaging = self._modules.messaging
        last = await messaging.last_message_id(frame.channel_id)
        await self._modules.social.mark_read(
            self.connection.user_id,
            frame.channel_id,
            min(frame.message_id, last),
            origin_connection=self.connection.id,
        )

    async def _typing(self, frame: frames.Typing) -> None:
        # Typing is something new in the channel, as a send is: refused where one is.
        members = await self._modules.social.require_sender(
            self.connection.user_id, frame.channel_id
        )
        self._modules.bus.publish(
            TypingStarted(
                channel_id=frame.channel_id,
                user_id=self.connection.user_id,
                member_ids=tuple(sorted(members)),
            )
        )
