"""The WebSocket side of the client: one connection kept up, caught up, and sent through.

    async with RealtimeClient(ws_url, token, last_seq=stored) as live:
        ack = await live.send(channel_id, "hi")
        async for event in live.events():
            ...

Sends wait in an outbox until the server acknowledges them and are written
again, with the same `client_msg_id`, on every new connection: at least once
on the wire, exactly once in the store. Incoming messages are delivered once
each, in inbox order, across any number of reconnects.

This module is the client's face; the connection's life is in `conversation`,
the sends in `outbox`, the seq bookkeeping in `inbox_position`, the waits
between attempts in `reconnect`.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Self

import aiohttp
import structlog

from chatapp.client.conversation import (
    CLOSE_UNAUTHORIZED,
    MAX_FRAME_BYTES,
    MIN_SILENCE_SECONDS,
    SILENT_BEATS,
    Conversation,
)
from chatapp.client.event_stream import EventStream
from chatapp.client.frames import Ack, Event, Ready
from chatapp.client.inbox_position import InboxPosition
from chatapp.client.lifecycle import RealtimeError, State, TokenRefused
from chatapp.client.outbox import Outbox
from chatapp.client.outgoing_frames import read_frame, send_frame, typing_frame
from chatapp.client.reconnect import Backoff, keep_connecting

__all__ = [
    "CLOSE_UNAUTHORIZED",
    "MAX_FRAME_BYTES",
    "MIN_SILENCE_SECONDS",
    "SILENT_BEATS",
    "Backoff",
    "RealtimeClient",
    "RealtimeError",
    "State",
]

log = structlog.get_logger(__name__)


class RealtimeClient:
    """A device's live connection to the gateway, reconnecting and resyncing by itself.

    `last_seq=None` starts without replay (a new device); afterwards `last_seq`
    always tracks the highest inbox seq processed, and every reconnection
    catches up from it. Messages this client sent come back from `send()`,
    not from `events()`; every other message comes from `events()` once.
    A token the server refuses (close code 4401) stops the client with a
    `RealtimeError` instead of reconnecting.
    """

    def __init__(
        self,
        ws_url: str,
        token: str,
        *,
        last_seq: int | None = None,
        backoff: Backoff | None = None,
        session: aiohttp.ClientSession | None = None,
        handshake_timeout: float = 10.0,
        discover: Callable[[], Awaitable[str]] | None = None,
    ) -> None:
        self.ws_url = ws_url
        # Asked for the URL again before each reconnection (a cluster's node
        # may be gone): ChatClient.discovery answers it.
        self._discover = discover
        self._attempts = 0
        self._position = InboxPosition(last_seq)
        self._backoff = backoff or Backoff()
        self._session = session
        self._owns_session = session is None
        self.state = State.CONNECTING
        self.error: RealtimeError | None = None
        """Why the client stopped by itself, if it did."""
        self.user_id: int | None = None
        self.device_id: int | None = None
        self._outbox = Outbox()
        self._events = EventStream()
        self._conversation = Conversation(
            ws_url,
            token,
            handshake_timeout=handshake_timeout,
            outbox=self._outbox,
            position=self._position,
            events=self._events,
            on_ready=self._connected,
            on_caught_up=self._caught_up,
            on_dropped=self._dropped,
        )
        self._settled = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None

    @property
    def last_seq(self) -> int | None:
        """The highest inbox seq processed; store it and pass it back to resume later."""
        return self._position.last_seq

    @property
    def unacknowledged(self) -> int:
        """Sends waiting for their ack."""
        return len(self._outbox)

    # -- lifetime ---------------------------------------------------------------------

    async def start(self) -> Self:
        if self._runner is None:
            self._runner = asyncio.create_task(self._stay_connected(), name="realtime-client")
        return self

    async def close(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        self._stop(None)
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def wait_ready(self) -> None:
        """Until connected and caught up; the stopping error if the client stops instead."""
        await self._settled.wait()
        if self.state is State.CLOSED:
            raise self._closed_error()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    # -- what the application does ------------------------------------------------------

    async def send(
        self,
        channel_id: int,
        text: str,
        client_msg_id: str | None = None,
        *,
        reply_to: int | None = None,
    ) -> Ack:
        """Send until acknowledged; RealtimeError if the server refuses it or the client stops.

        `reply_to` names the message of the channel this one quotes.

        Cancelling the wait does not take the message back: it stays in the
        outbox and is delivered when a connection allows.
        """
        if self.state is State.CLOSED:
            raise self._closed_error()
        client_msg_id = client_msg_id or uuid.uuid4().hex
        outgoing = self._outbox.get(client_msg_id)
        if outgoing is None:
            frame = send_frame(client_msg_id, channel_id, text, reply_to)
            outgoing = self._outbox.add(client_msg_id, frame)
            await self._outbox.write_unwritten()
        return await asyncio.shield(outgoing.answer)

    async def read(self, channel_id: int, message_id: int) -> bool:
        """Move the read marker; False when not connected (the marker is not queued)."""
        return await self._conversation.write(read_frame(channel_id, message_id))

    async def typing(self, channel_id: int) -> bool:
        """Tell the channel's other members this user is typing; False when not connected."""
        return await self._conversation.write(typing_frame(channel_id))

    async def events(self) -> AsyncIterator[Event]:
        """Incoming events in order; ends when the client is closed, raises if it stopped."""
        while (event := await self._events.take()) is not None:
            yield event
        if self.error is not None:
            raise self.error

    async def next_event(self, timeout: float | None = None) -> Event:
        """The next incoming event; TimeoutError after `timeout` seconds without one,
        RealtimeError once the client has stopped and every event was taken."""
        async with asyncio.timeout(timeout):
            event = await self._events.take()
        if event is None:
            raise self._closed_error()
        return event

    # -- the connection -----------------------------------------------------------------

    async def _stay_connected(self) -> None:
        try:
            await keep_connecting(self._connect_once, self._backoff)
        except TokenRefused:
            self._stop(RealtimeError("unauthorized", "the server refused the token"))
        except Exception as exc:
            # A bug here must not leave senders and readers waiting forever.
            log.exception("realtime_failed")
            self._stop(RealtimeError("internal_error", repr(exc)))

    async def _connect_once(self) -> bool:
        self.state = State.CONNECTING
        if self._discover is not None and self._attempts:
            await self._rediscover()
        self._attempts += 1
        return await self._conversation.connect_once(self._http())

    async def _rediscover(self) -> None:
        try:
            async with asyncio.timeout(5.0):
                url = await self._discover() if self._discover is not None else self.ws_url
        except Exception as exc:  # any failure: try the URL we had
            log.info("realtime_discovery_failed", error=repr(exc))
            return
        if url != self.ws_url:
            log.info("realtime_moving", ws_url=url)
            self.ws_url = url
            self._conversation.ws_url = url

    def _connected(self, ready: Ready) -> None:
        self.user_id, self.device_id = ready.user_id, ready.device_id

    def _caught_up(self) -> None:
        self.state = State.READY
        self._settled.set()

    def _dropped(self) -> None:
        if self.state is not State.CLOSED:
            self.state = State.CONNECTING
            self._settled.clear()

    def _stop(self, error: RealtimeError | None) -> None:
        if self.state is State.CLOSED:
            return
        self.state = State.CLOSED
        self.error = error
        self._outbox.fail_all(self._closed_error())
        self._events.end()
        self._settled.set()
        if error is not None:
            log.warning("realtime_stopped", code=error.code)

    def _closed_error(self) -> RealtimeError:
        return self.error or RealtimeError("closed", "the client was closed")

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session
