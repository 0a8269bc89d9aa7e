"""Sends on one connection: checked in order, stored without waiting, acknowledged in order."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter, deque

import structlog

from chatapp.errors import RateLimited, Refused, StoreFailed, Unavailable
from chatapp.gateway import frames
from chatapp.gateway.connection import Connection
from chatapp.messaging import AcceptedMessage, Messaging
from chatapp.observability import Metrics

log = structlog.get_logger(__name__)

# Sends waiting for their turn, and sends stored but not yet answered, per
# connection. When both are full the read loop stops reading, so a fast sender
# is slowed by TCP rather than by growing memory.
PENDING_SENDS = 256


class SendPipeline:
    """Checks a connection's sends in one task, and answers them from the store's callbacks.

    Answers leave in the order the sends came: each stored (or refused) send
    waits in `_in_flight` until every send before it has been answered. They
    are sent by the callback of whichever future completes, not by a task of
    their own, since one commit completes many sends at once and a task would
    wake for each.
    """

    def __init__(self, connection: Connection, messaging: Messaging, metrics: Metrics) -> None:
        self.connection = connection
        self._messaging = messaging
        self._metrics = metrics
        self._sends: asyncio.Queue[frames.Send] = asyncio.Queue(PENDING_SENDS)
        self._in_flight: deque[tuple[frames.Send, asyncio.Future[AcceptedMessage]]] = deque()
        # Resolved when an answer left room in `_in_flight` for the check to go on.
        self._room: asyncio.Future[None] | None = None
        # Sends taken and not yet answered (ack or error), by client_msg_id.
        self._unanswered: Counter[str] = Counter()
        self._answered = asyncio.Event()
        self._stopped = False
        self._checks = asyncio.create_task(self._check_sends(), name=f"ws-sends:{connection.id}")
        self._checks.add_done_callback(self._stop)

    async def put(self, frame: frames.Send) -> None:
        await self._sends.put(frame)
        # Counted before anything can store it: the check runs in another task.
        self._unanswered[frame.client_msg_id] += 1

    async def answered(self, client_msg_id: str) -> None:
        """Return once every send with `client_msg_id` taken so far has its ack or error.

        After an ack, `Connection.own` has recorded the send's seq.
        """
        while self._unanswered[client_msg_id] and not self._stopped:
            self._answered.clear()
            await self._answered.wait()

    def _answer_sent(self, client_msg_id: str) -> None:
        self._unanswered[client_msg_id] -= 1
        if self._unanswered[client_msg_id] <= 0:
            del self._unanswered[client_msg_id]
        self._answered.set()

    def _stop(self, _task: asyncio.Task[None] | None = None) -> None:
        """Closed, or the check failed: nothing more will be answered."""
        self._stopped = True
        self._answered.set()

    async def close(self) -> None:
        self._stop()
        self._checks.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._checks

    async def _check_sends(self) -> None:
        """Check sends one at a time, in order, and start storing each without waiting.

        Storing is started in arrival order, so the store assigns ids in the
        order the client sent; waiting for durability is the store's futures'
        business, so several sends of one connection share a group commit.
        """
        messaging = self._messaging
        loop = asyncio.get_running_loop()
        while True:
            frame = await self._sends.get()
            stored: asyncio.Future[AcceptedMessage]
            try:
                checked = await messaging.check(
                    self.connection.user_id,
                    frame.channel_id,
                    frame.client_msg_id,
                    frame.text,
                    reply_to=frame.reply_to,
                )
            except (Refused, StoreFailed) as failure:
                refusal = failure if isinstance(failure, Refused) else _store_unavailable(failure)
                if isinstance(refusal, RateLimited):
                    self._metrics.rate_limited.labels(limit="sends").inc()
                stored = loop.create_future()
                stored.set_exception(refusal)
            else:
                stored = messaging.submit(checked, origin_connection=self.connection.id)
            while len(self._in_flight) >= PENDING_SENDS:
                self._room = loop.create_future()
                await self._room
            self._in_flight.append((frame, stored))
            stored.add_done_callback(self._landed)

    def _landed(self, _stored: asyncio.Future[AcceptedMessage]) -> None:
        """Answer every send at the front whose store has answered, in order."""
        in_flight = self._in_flight
        while in_flight and in_flight[0][1].done():
            frame, stored = in_flight.popleft()
            try:
                if not self._stopped:
                    self._answer(frame, stored)
            finally:
                self._answer_sent(frame.client_msg_id)
        room, self._room = self._room, None
        if room is not None and not room.done():
            room.set_result(None)

    def _answer(self, frame: frames.Send, stored: asyncio.Future[AcceptedMessage]) -> None:
        if stored.cancelled():
            return
        failure = stored.exception()
        if failure is None:
            self._ack(frame, stored.result())
        elif isinstance(failure, Refused):
            self.connection.push(
                frames.error_frame(
                    failure.code, failure.message, ref=frame.ref, client_msg_id=frame.client_msg_id
                )
            )
        else:
            log.error("send_failed", client_msg_id=frame.client_msg_id, exc_info=failure)
            self.connection.push(
                frames.error_frame(
                    "internal_error",
                    "the send failed; send it again",
                    ref=frame.ref,
                    client_msg_id=frame.client_msg_id,
                )
            )

    def _ack(self, frame: frames.Send, accepted: AcceptedMessage) -> None:
        self.connection.own(accepted.seq)
        message_json = accepted.message_json or accepted.message.model_dump_json()
        self.connection.push(
            frames.ack_frame(frame.client_msg_id, message_json, accepted.seq, frame.ref)
        )


def _store_unavailable(failure: StoreFailed) -> Unavailable:
    """A store behind a check (membership, say) failed: refuse the send, keep the pipeline."""
    log.warning("send_check_failed", error=str(failure))
    return Unavailable("store_unavailable", "the server could not check this send now; try again")
