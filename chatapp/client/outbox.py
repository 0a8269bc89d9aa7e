"""Sends waiting for their ack: written again on every new connection, each settled once."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiohttp

from chatapp.client.frames import Ack
from chatapp.client.lifecycle import RealtimeError


@dataclass
class PendingSend:
    frame: str
    answer: asyncio.Future[Ack]
    written_on: int = 0
    """The connection it was last written to; each new connection writes it again."""

    def settle(self, ack: Ack) -> None:
        if not self.answer.done():
            self.answer.set_result(ack)

    def refuse(self, error: RealtimeError) -> None:
        if not self.answer.done():
            self.answer.set_exception(error)


class Outbox:
    """Unacknowledged sends in the order they were made, and the connection they go out on.

    Connections are numbered as they become ready, so that each send is written
    once per connection: at least once on the wire, exactly once in the store
    (the server recognises the repeated `client_msg_id`).
    """

    def __init__(self) -> None:
        self._pending: dict[str, PendingSend] = {}
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._connections = 0
        self._write_lock = asyncio.Lock()

    def __len__(self) -> int:
        return len(self._pending)

    def holds(self, client_msg_id: str) -> bool:
        return client_msg_id in self._pending

    def get(self, client_msg_id: str) -> PendingSend | None:
        return self._pending.get(client_msg_id)

    def add(self, client_msg_id: str, frame: str) -> PendingSend:
        answer: asyncio.Future[Ack] = asyncio.get_running_loop().create_future()
        # Read the outcome even when nobody waits for it any more.
        answer.add_done_callback(lambda done: done.cancelled() or done.exception())
        pending = PendingSend(frame, answer)
        self._pending[client_msg_id] = pending
        return pending

    def take(self, client_msg_id: str) -> PendingSend | None:
        """The send out of the outbox, to be settled or refused; None if it is not there."""
        return self._pending.pop(client_msg_id, None)

    def fail_all(self, error: RealtimeError) -> None:
        pending, self._pending = self._pending, {}
        for outgoing in pending.values():
            outgoing.refuse(error)

    def attach(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """A new connection is ready: every send is due on it."""
        self._connections += 1
        self._ws = ws

    def detach(self) -> None:
        self._ws = None

    async def write_unwritten(self) -> None:
        """Write, in order, every queued send not yet written on the current connection."""
        async with self._write_lock:
            ws, number = self._ws, self._connections
            if ws is None:
                return
            for outgoing in list(self._pending.values()):
                if outgoing.written_on == number or outgoing.answer.done():
                    continue
                outgoing.written_on = number
                try:
                    await ws.send_str(outgoing.frame)
                except (aiohttp.ClientError, ConnectionError):
                    return  # the reader sees the drop; the next connection writes it again
