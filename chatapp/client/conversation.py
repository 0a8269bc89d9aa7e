"""The client's side of the WebSocket protocol, one connection at a time: dial, handshake,
heartbeats, the read loop, and what each incoming frame does."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import aiohttp
import structlog
from pydantic import ValidationError

from chatapp.client.event_stream import EventStream
from chatapp.client.frames import (
    Ack,
    ChannelEvent,
    ErrorEvent,
    MessageEvent,
    PresenceEvent,
    ReadEvent,
    Ready,
    ReceiptEvent,
    ServerFrame,
    Synced,
    TypingEvent,
    UpdateEvent,
    parse_server_frame,
)
from chatapp.client.inbox_position import InboxPosition
from chatapp.client.lifecycle import RealtimeError, TokenRefused
from chatapp.client.outbox import Outbox
from chatapp.client.outgoing_frames import HEARTBEAT, hello_frame, sync_frame

# Logged under the name it had before the client was split into modules, so
# that filters on the realtime client's logger keep matching.
log = structlog.get_logger("chatapp.client.realtime")

CLOSE_UNAUTHORIZED = 4401
MAX_FRAME_BYTES = 2 * 1024 * 1024
# A connection that has said nothing for this many heartbeat intervals (the
# server answers each heartbeat) is taken for dead, even if TCP has not noticed.
SILENT_BEATS = 3
MIN_SILENCE_SECONDS = 1.0


class Conversation:
    """What the client says and hears on each connection, from dial to drop.

    The outbox, the inbox position and the event stream belong to the client
    and outlive every connection; a conversation reads and updates them. The
    `on_*` callbacks tell the client where the current connection is in its life.
    """

    def __init__(
        self,
        ws_url: str,
        token: str,
        *,
        handshake_timeout: float,
        outbox: Outbox,
        position: InboxPosition,
        events: EventStream,
        on_ready: Callable[[Ready], None],
        on_caught_up: Callable[[], None],
        on_dropped: Callable[[], None],
    ) -> None:
        self.ws_url = ws_url
        """Where the next connection dials (the client may move it to another node)."""
        self._token = token
        self._handshake_timeout = handshake_timeout
        self._outbox = outbox
        self._position = position
        self._events = events
        self._on_ready = on_ready
        self._on_caught_up = on_caught_up
        self._on_dropped = on_dropped
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        """The connection, from `ready` until it drops."""
        self._user_id: int | None = None

    async def connect_once(self, session: aiohttp.ClientSession) -> bool:
        """One connection from dial to drop; True when it got as far as `ready`.

        TokenRefused when the server closed it because of the token.
        """
        try:
            async with asyncio.timeout(self._handshake_timeout):
                ws = await session.ws_connect(
                    self.ws_url,
                    max_msg_size=MAX_FRAME_BYTES,
                    timeout=aiohttp.ClientWSTimeout(ws_close=1.0),
                )
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.info("realtime_connect_failed", error=repr(exc))
            return False
        try:
            reached_ready = await self._converse(ws)
        finally:
            self._ws = None
            self._outbox.detach()
            self._on_dropped()
            await ws.close()
        if ws.close_code == CLOSE_UNAUTHORIZED:
            raise TokenRefused
        log.info("realtime_disconnected", close_code=ws.close_code)
        return reached_ready

    async def write(self, frame: str) -> bool:
        """Write one frame now; False when not connected (the frame is not queued)."""
        ws = self._ws
        if ws is None:
            return False
        try:
            await ws.send_str(frame)
        except (aiohttp.ClientError, ConnectionError):
            return False
        return True

    async def _converse(self, ws: aiohttp.ClientWebSocketResponse) -> bool:
        ready = await self._handshake(ws)
        if ready is None:
            return False
        interval = ready.heartbeat_interval_ms / 1000
        heartbeats = asyncio.create_task(_beat(ws, interval), name="realtime-heartbeats")
        try:
            self._outbox.attach(ws)
            self._ws = ws
            await self._outbox.write_unwritten()
            await self._read(ws, silence=max(SILENT_BEATS * interval, MIN_SILENCE_SECONDS))
        finally:
            heartbeats.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeats
        return True

    async def _handshake(self, ws: aiohttp.ClientWebSocketResponse) -> Ready | None:
        try:
            await ws.send_str(hello_frame(self._token, self._position.last_seq))
            message = await ws.receive(timeout=self._handshake_timeout)
        except (aiohttp.ClientError, ConnectionError, TimeoutError):
            return None
        if message.type is not aiohttp.WSMsgType.TEXT:
            return None
        ready = parse_server_frame(message.data)
        if not isinstance(ready, Ready):
            log.warning("realtime_no_ready", frame=message.data[:200])
            return None
        self._user_id = ready.user_id
        self._on_ready(ready)
        return ready

    async def _read(self, ws: aiohttp.ClientWebSocketResponse, *, silence: float) -> None:
        while True:
            try:
                message = await ws.receive(timeout=silence)
            except TimeoutError:
                log.info("realtime_connection_silent", seconds=silence)
                return
            if message.type is not aiohttp.WSMsgType.TEXT:
                if message.type in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.PING):
                    continue
                return
            try:
                frame = parse_server_frame(message.data)
            except (ValueError, ValidationError) as exc:
                log.warning("realtime_bad_frame", error=repr(exc), frame=message.data[:200])
                continue
            await self._handle(ws, frame)

    async def _handle(self, ws: aiohttp.ClientWebSocketResponse, frame: ServerFrame | None) -> None:
        if isinstance(frame, MessageEvent):
            self._received(frame)
        elif isinstance(frame, UpdateEvent):
            news = self._position.is_news(frame.seq)
            self._position.advance(frame.seq)
            if news:
                self._events.put(frame)
        elif isinstance(frame, Ack):
            self._acknowledged(frame)
        elif isinstance(frame, Synced):
            self._position.advance(frame.seq)
            if frame.has_more:
                with contextlib.suppress(aiohttp.ClientError, ConnectionError):
                    await ws.send_str(sync_frame(frame.seq))
            else:
                self._on_caught_up()
        elif isinstance(frame, ErrorEvent):
            self._refused(frame)
        elif isinstance(
            frame, PresenceEvent | ReadEvent | ReceiptEvent | TypingEvent | ChannelEvent
        ):
            self._events.put(frame)

    def _received(self, frame: MessageEvent) -> None:
        message = frame.message
        # A replay can carry this client's own send before its ack: it answers the send.
        mine = message.sender_id == self._user_id and self._outbox.holds(message.client_msg_id)
        own = self._outbox.take(message.client_msg_id) if mine else None
        news = self._position.is_news(frame.seq)
        self._position.advance(frame.seq)
        if own is not None:
            own.settle(Ack(client_msg_id=message.client_msg_id, message=message, seq=frame.seq))
        elif news:
            self._events.put(frame)

    def _acknowledged(self, ack: Ack) -> None:
        self._position.acknowledged(ack.seq)
        outgoing = self._outbox.take(ack.client_msg_id)
        if outgoing is not None:
            outgoing.settle(ack)

    def _refused(self, error: ErrorEvent) -> None:
        outgoing = self._outbox.take(error.client_msg_id) if error.client_msg_id else None
        if outgoing is None:
            self._events.put(error)
        else:
            outgoing.refuse(RealtimeError(error.code, error.message))


async def _beat(ws: aiohttp.ClientWebSocketResponse, interval: float) -> None:
    """Heartbeats from `ready` on: they keep the device present and the line audibly alive."""
    with contextlib.suppress(aiohttp.ClientError, ConnectionError):
        while not ws.closed:
            await ws.send_str(HEARTBEAT)
            await asyncio.sleep(interval)
