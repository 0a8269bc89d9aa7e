"""The WebSocket side of the client: one connection kept up, caught up, and sent through.

    async with RealtimeClient(ws_url, token, last_seq=stored) as live:
        ack = await live.send(channel_id, "hi")
        async for event in live.events():
            ...

Sends wait in an outbox until the server acknowledges them and are written
again, with the same `client_msg_id`, on every new connection: at least once
on the wire, exactly once in the store. Incoming messages are delivered once
each, in inbox order, across any number of reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from enum import Enum
from types import TracebackType
from typing import Any, Self

import aiohttp
import structlog
from pydantic import ValidationError

from chatapp.client.frames import (
    Ack,
    ChannelEvent,
    ErrorEvent,
    Event,
    MessageEvent,
    PresenceEvent,
    ReadEvent,
    Ready,
    ServerFrame,
    Synced,
    TypingEvent,
    parse_server_frame,
)
from chatapp.protocol.http import MessageOut

log = structlog.get_logger(__name__)

CLOSE_UNAUTHORIZED = 4401
MAX_FRAME_BYTES = 2 * 1024 * 1024
# A connection that has said nothing for this many heartbeat intervals (the
# server answers each heartbeat) is taken for dead, even if TCP has not noticed.
SILENT_BEATS = 3
MIN_SILENCE_SECONDS = 1.0


# -- the client ---------------------------------------------------------------------------


class RealtimeError(Exception):
    """The server refused a frame (`code` as in the protocol), or the client stopped."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class _TokenRefused(Exception):
    """The server closed with 4401: the token is unknown or revoked."""


class State(Enum):
    CONNECTING = "connecting"
    READY = "ready"  # connected and caught up: what arrives now is live
    CLOSED = "closed"


@dataclass(frozen=True)
class Backoff:
    """Waits between connection attempts: exponential, capped, spread by random jitter."""

    initial: float = 0.5
    maximum: float = 30.0
    multiplier: float = 2.0
    jitter: float = 0.2
    """Each wait is up to this fraction longer or shorter, so clients cut off together
    do not all come back in the same instant."""

    def delay(self, attempt: int) -> float:
        base = min(self.maximum, self.initial * self.multiplier ** min(attempt, 64))
        return max(0.0, base * random.uniform(1 - self.jitter, 1 + self.jitter))


@dataclass
class _Outgoing:
    frame: str
    answer: asyncio.Future[Ack]
    written_on: int = 0
    """The connection it was last written to; each new connection writes it again."""


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
    ) -> None:
        self.ws_url = ws_url
        self._token = token
        self._last_seq = last_seq
        self._backoff = backoff or Backoff()
        self._session = session
        self._owns_session = session is None
        self._handshake_timeout = handshake_timeout
        self.state = State.CONNECTING
        self.error: RealtimeError | None = None
        """Why the client stopped by itself, if it did."""
        self.user_id: int | None = None
        self.device_id: int | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._connections = 0
        self._outbox: dict[str, _Outgoing] = {}
        # Seqs of this client's own acknowledged sends above last_seq: a replay
        # brings them back as `message` frames, which are not news to it.
        self._acked_seqs: set[int] = set()
        self._events: asyncio.Queue[Event | None] = asyncio.Queue()
        self._settled = asyncio.Event()
        self._write_lock = asyncio.Lock()
        self._runner: asyncio.Task[None] | None = None

    @property
    def last_seq(self) -> int | None:
        """The highest inbox seq processed; store it and pass it back to resume later."""
        return self._last_seq

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

    async def send(self, channel_id: int, text: str, client_msg_id: str | None = None) -> Ack:
        """Send until acknowledged; RealtimeError if the server refuses it or the client stops.

        Cancelling the wait does not take the message back: it stays in the
        outbox and is delivered when a connection allows.
        """
        if self.state is State.CLOSED:
            raise self._closed_error()
        client_msg_id = client_msg_id or uuid.uuid4().hex
        outgoing = self._outbox.get(client_msg_id)
        if outgoing is None:
            frame = {
                "type": "send",
                "client_msg_id": client_msg_id,
                "channel_id": channel_id,
                "text": text,
            }
            answer: asyncio.Future[Ack] = asyncio.get_running_loop().create_future()
            # Read the outcome even when nobody waits for it any more.
            answer.add_done_callback(lambda done: done.cancelled() or done.exception())
            outgoing = _Outgoing(_encode(frame), answer)
            self._outbox[client_msg_id] = outgoing
            await self._write_outbox()
        return await asyncio.shield(outgoing.answer)

    async def read(self, channel_id: int, message_id: int) -> bool:
        """Move the read marker; False when not connected (the marker is not queued)."""
        frame = {"type": "read", "channel_id": channel_id, "message_id": message_id}
        return await self._write_now(frame)

    async def typing(self, channel_id: int) -> bool:
        """Tell the channel's other members this user is typing; False when not connected."""
        return await self._write_now({"type": "typing", "channel_id": channel_id})

    async def events(self) -> AsyncIterator[Event]:
        """Incoming events in order; ends when the client is closed, raises if it stopped."""
        while (event := await self._take_event()) is not None:
            yield event
        if self.error is not None:
            raise self.error

    async def next_event(self, timeout: float | None = None) -> Event:
        """The next incoming event; TimeoutError after `timeout` seconds without one,
        RealtimeError once the client has stopped and every event was taken."""
        async with asyncio.timeout(timeout):
            event = await self._take_event()
        if event is None:
            raise self._closed_error()
        return event

    async def _take_event(self) -> Event | None:
        event = await self._events.get()
        if event is None:
            self._events.put_nowait(None)  # every later reader sees the end too
        return event

    # -- the connection -----------------------------------------------------------------

    async def _stay_connected(self) -> None:
        attempt = 0
        try:
            while True:
                if await self._connect_once():
                    attempt = 0
                delay = self._backoff.delay(attempt)
                attempt += 1
                log.info("realtime_reconnecting", delay=round(delay, 3))
                await asyncio.sleep(delay)
        except _TokenRefused:
            self._stop(RealtimeError("unauthorized", "the server refused the token"))
        except Exception as exc:
            # A bug here must not leave senders and readers waiting forever.
            log.exception("realtime_failed")
            self._stop(RealtimeError("internal_error", repr(exc)))

    async def _connect_once(self) -> bool:
        """One connection from dial to drop; True when it got as far as `ready`."""
        self.state = State.CONNECTING
        try:
            async with asyncio.timeout(self._handshake_timeout):
                ws = await self._http().ws_connect(
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
            if self.state is not State.CLOSED:
                self.state = State.CONNECTING
                self._settled.clear()
            await ws.close()
        if ws.close_code == CLOSE_UNAUTHORIZED:
            raise _TokenRefused
        log.info("realtime_disconnected", close_code=ws.close_code)
        return reached_ready

    async def _converse(self, ws: aiohttp.ClientWebSocketResponse) -> bool:
        ready = await self._handshake(ws)
        if ready is None:
            return False
        interval = ready.heartbeat_interval_ms / 1000
        heartbeats = asyncio.create_task(_beat(ws, interval), name="realtime-heartbeats")
        try:
            self._connections += 1
            self._ws = ws
            await self._write_outbox()
            await self._read(ws, silence=max(SILENT_BEATS * interval, MIN_SILENCE_SECONDS))
        finally:
            heartbeats.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeats
        return True

    async def _handshake(self, ws: aiohttp.ClientWebSocketResponse) -> Ready | None:
        hello: dict[str, Any] = {"type": "hello", "token": self._token}
        if self._last_seq is not None:
            hello["last_seq"] = self._last_seq
        try:
            await ws.send_str(_encode(hello))
            message = await ws.receive(timeout=self._handshake_timeout)
        except (aiohttp.ClientError, ConnectionError, TimeoutError):
            return None
        if message.type is not aiohttp.WSMsgType.TEXT:
            return None
        ready = parse_server_frame(message.data)
        if not isinstance(ready, Ready):
            log.warning("realtime_no_ready", frame=message.data[:200])
            return None
        self.user_id, self.device_id = ready.user_id, ready.device_id
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
        elif isinstance(frame, Ack):
            self._acknowledged(frame)
        elif isinstance(frame, Synced):
            self._advance(frame.seq)
            if frame.has_more:
                with contextlib.suppress(aiohttp.ClientError, ConnectionError):
                    await ws.send_str(_encode({"type": "sync", "since": frame.seq}))
            else:
                self.state = State.READY
                self._settled.set()
        elif isinstance(frame, ErrorEvent):
            self._refused(frame)
        elif isinstance(frame, PresenceEvent | ReadEvent | TypingEvent | ChannelEvent):
            self._events.put_nowait(frame)

    # -- bookkeeping of seqs and sends ----------------------------------------------------

    def _received(self, frame: MessageEvent) -> None:
        message = frame.message
        # A replay can carry this client's own send before its ack: it answers the send.
        own = self._outbox.pop(message.client_msg_id, None) if self._is_mine(message) else None
        news = frame.seq > (self._last_seq or 0) and frame.seq not in self._acked_seqs
        self._advance(frame.seq)
        if own is not None:
            _settle(own, Ack(client_msg_id=message.client_msg_id, message=message, seq=frame.seq))
        elif news:
            self._events.put_nowait(frame)

    def _acknowledged(self, ack: Ack) -> None:
        # Not a step of last_seq: acks and `message` frames are not ordered
        # between themselves, so a message with a lower seq may still be coming.
        if ack.seq > (self._last_seq or 0):
            self._acked_seqs.add(ack.seq)
        outgoing = self._outbox.pop(ack.client_msg_id, None)
        if outgoing is not None:
            _settle(outgoing, ack)

    def _refused(self, error: ErrorEvent) -> None:
        outgoing = self._outbox.pop(error.client_msg_id, None) if error.client_msg_id else None
        if outgoing is None:
            self._events.put_nowait(error)
        elif not outgoing.answer.done():
            outgoing.answer.set_exception(RealtimeError(error.code, error.message))

    def _advance(self, seq: int) -> None:
        if self._last_seq is None or seq > self._last_seq:
            self._last_seq = seq
            if self._acked_seqs:
                self._acked_seqs = {acked for acked in self._acked_seqs if acked > seq}

    def _is_mine(self, message: MessageOut) -> bool:
        return message.sender_id == self.user_id and message.client_msg_id in self._outbox

    async def _write_outbox(self) -> None:
        """Write, in order, every queued send not yet written on the current connection."""
        async with self._write_lock:
            ws, number = self._ws, self._connections
            if ws is None:
                return
            for outgoing in list(self._outbox.values()):
                if outgoing.written_on == number or outgoing.answer.done():
                    continue
                outgoing.written_on = number
                try:
                    await ws.send_str(outgoing.frame)
                except (aiohttp.ClientError, ConnectionError):
                    return  # the reader sees the drop; the next connection writes it again

    async def _write_now(self, frame: dict[str, Any]) -> bool:
        ws = self._ws
        if ws is None:
            return False
        try:
            await ws.send_str(_encode(frame))
        except (aiohttp.ClientError, ConnectionError):
            return False
        return True

    def _stop(self, error: RealtimeError | None) -> None:
        if self.state is State.CLOSED:
            return
        self.state = State.CLOSED
        self.error = error
        failure = error or RealtimeError("closed", "the client was closed")
        outbox, self._outbox = self._outbox, {}
        for outgoing in outbox.values():
            if not outgoing.answer.done():
                outgoing.answer.set_exception(failure)
        self._events.put_nowait(None)
        self._settled.set()
        if error is not None:
            log.warning("realtime_stopped", code=error.code)

    def _closed_error(self) -> RealtimeError:
        return self.error or RealtimeError("closed", "the client was closed")

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session


async def _beat(ws: aiohttp.ClientWebSocketResponse, interval: float) -> None:
    """Heartbeats from `ready` on: they keep the device present and the line audibly alive."""
    with contextlib.suppress(aiohttp.ClientError, ConnectionError):
        while not ws.closed:
            await ws.send_str('{"type":"heartbeat"}')
            await asyncio.sleep(interval)


def _settle(outgoing: _Outgoing, ack: Ack) -> None:
    if not outgoing.answer.done():
        outgoing.answer.set_result(ack)


def _encode(frame: dict[str, Any]) -> str:
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":"))
