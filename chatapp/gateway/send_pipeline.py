"""Sends on one connection: checked in order, stored without waiting, acknowledged in order."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter

import structlog

from chatapp.errors import RateLimited, Refused, StoreFailed, Unavailable
from chatapp.gateway import frames
from chatapp.gateway.connection import Connection
from chatapp.messaging import AcceptedMessage, Messaging
from chatapp.observability import Metrics

log = structlog.get_logger(__name__)

# Sends waiting for their turn, and sends stored but not yet acknowledged, per
# connection. When both are full the read loop stops reading, so a fast sender
# is slowed by TCP rather than by growing memory.
PENDING_SENDS = 256


class SendPipeline:
    def __init__(self, connection: Connection, messaging: Messaging, metrics: Metrics) -> None:
        self.connection = connection
        self._messaging = messaging
        self._metrics = metrics
        self._sends: asyncio.Queue[frames.Send] = asyncio.Queue(PENDING_SENDS)
        self._acks: asyncio.Queue[tuple[frames.Send, asyncio.Future[AcceptedMessage]]] = (
            asyncio.Queue(PENDING_SENDS)
        )
        # Sends taken and not yet answered (ack or error), by client_msg_id.
        self._unanswered: Counter[str] = Counter()
        self._answered = asyncio.Event()
        self._stopped = False
        name = connection.id
        self._tasks = [
            asyncio.create_task(self._check_sends(), name=f"ws-sends:{name}"),
            asyncio.create_task(self._acknowledge(), name=f"ws-acks:{name}"),
        ]
        for task in self._tasks:
            task.add_done_callback(self._stop)

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

    def _stop(self, _task: asyncio.Task[None]) -> None:
        """A task ended (closed, or failed): nothing more will be answered."""
        self._stopped = True
        self._answered.set()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _check_sends(self) -> None:
        """Check sends one at a time, in order, and start storing each without waiting.

        Storing is started in arrival order, so the store assigns ids in the
        order the client sent; waiting for durability happens in `_acknowledge`,
        so several sends of one connection share a group commit.
        """
        messaging = self._messaging
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
                stored = asyncio.get_running_loop().create_future()
                stored.set_exception(refusal)
            else:
                stored = messaging.submit(checked, origin_connection=self.connection.id)
            await self._acks.put((frame, stored))

    async def _acknowledge(self) -> None:
        while True:
            frame, stored = await self._acks.get()
            try:
                accepted = await stored
            except Refused as refusal:
                self.connection.push(
                    frames.error_frame(
                        refusal.code,
                        refusal.message,
                        ref=frame.ref,
                        client_msg_id=frame.client_msg_id,
                    )
                )
            except Exception:
                log.exception("send_failed", client_msg_id=frame.client_msg_id)
                self.connection.push(
                    frames.error_frame(
                        "internal_error",
                        "the send failed; send it again",
                        ref=frame.ref,
                        client_msg_id=frame.client_msg_id,
                    )
                )
            else:
                self._ack(frame, accepted)
            finally:
                self._answer_sent(frame.client_msg_id)

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
