"""One upgraded WebSocket, read and written by the gateway itself on the transport.

Once the handshake is done (`gateway.upgrade`), the socket's transport is
handed to a `WireSocket`, and aiohttp's request handler, parser, request and
tasks are let go: an idle connection is this object, its `FrameReader` and
the one task of its read loop (about 9 KiB less than keeping aiohttp's
WebSocket, see docs/benchmarks-profile.md).

Reading: `data_received` cuts the bytes into messages and queues them;
`receive` hands them to the read loop in order. A queue of
`INBOX_MESSAGES`, or of `INBOX_BYTES`, pauses the transport until the loop
has taken them all, so a client that sends faster than it is served is
slowed down by TCP.

Writing: a server's frames are not masked, so a text frame is its header
and its UTF-8 bytes. While the transport's buffer is short (the socket keeps
up) `write_now` takes them at once; past `KEEPING_UP_BYTES` it answers False
and the connection queues, and writes that queue with `send_str`, which
waits for the transport. The frames taken in one turn of the event loop
leave in one write at its end: one commit answers a batch of sends, and its
acks and messages to one socket then cost one system call, not one each (on
loopback a send also does the receiver's TCP work, so each call is dear).
A pong or a close is written after what was taken before it.
"""

from __future__ import annotations

import asyncio
import struct
from collections import deque
from typing import Protocol, cast

from chatapp.gateway.frame_reader import CLOSE, FrameReader, Message, Violation

# What the transport may hold unsent before the socket counts as lagging:
# asyncio's default high-water mark, where it pauses the writer anyway.
KEEPING_UP_BYTES = 64 * 1024
# Messages read and not yet handled, or their bytes, past which the transport
# stops reading: a client's frames wait in TCP, not in the server's memory.
INBOX_MESSAGES = 64
INBOX_BYTES = 256 * 1024
# How long a closing handshake the server starts waits for the client's answer.
CLOSE_TIMEOUT = 5.0
CLOSE_NORMAL = 1000
CLOSE_ABNORMAL = 1006
_TEXT_FINAL = 0x81
_CLOSE_FINAL = 0x88
_PONG_FINAL = 0x8A
_LEN2 = struct.Struct("!BBH").pack
_LEN8 = struct.Struct("!BBQ").pack
_CODE = struct.Struct("!H").pack
# In the inbox: the client broke the protocol here (with the close code and why).
_VIOLATED = -1


class Transport(Protocol):
    """What is read and written: asyncio's transport or uvloop's (not a subclass of it)."""

    def is_closing(self) -> bool: ...

    def get_write_buffer_size(self) -> int: ...

    def write(self, data: bytes) -> None: ...

    def writelines(self, data: list[bytes]) -> None: ...

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...


class TurnWrites:
    """The sockets that took frames in this turn of the loop, written together at its end.

    One callback a turn for all of them: a message to a 100-member group would
    otherwise schedule one per recipient.
    """

    __slots__ = ("_sockets",)

    def __init__(self) -> None:
        self._sockets: list[WireSocket] = []

    def add(self, socket: WireSocket) -> None:
        if not self._sockets:
            asyncio.get_running_loop().call_soon(self._flush)
        self._sockets.append(socket)

    def _flush(self) -> None:
        sockets, self._sockets = self._sockets, []
        for socket in sockets:
            socket.flush()


class WireSocket(asyncio.Protocol):
    """The server's end of one WebSocket, as the transport's protocol."""

    # Tens of thousands of these live at once: no per-instance dict.
    __slots__ = ("_close_sent", "_closed", "_drained", "_inbox", "_inbox_bytes", "_reader",
                 "_reading_paused", "_replied", "_taken", "_taken_bytes", "_transport", "_turn",
                 "_waiter", "_writing_paused", "close_code")  # fmt: skip

    def __init__(self, transport: Transport, turn: TurnWrites, *, max_message: int) -> None:
        self._transport = transport
        self._turn = turn
        # None once the client broke the protocol: nothing after that is read.
        self._reader: FrameReader | None = FrameReader(max_message)
        # Messages read and not yet received; None while there are none.
        self._inbox: deque[Message] | None = None
        self._inbox_bytes = 0
        self._reading_paused = False
        self._writing_paused = False
        # Who waits: the read loop for a message, a sender for the transport to drain,
        # the closer for the client's close frame.
        self._waiter: asyncio.Future[None] | None = None
        self._drained: asyncio.Future[None] | None = None
        self._replied: asyncio.Future[None] | None = None
        # Headers and payloads taken this turn of the loop; None when nothing is.
        self._taken: list[bytes] | None = None
        self._taken_bytes = 0
        self._close_sent = False
        # The transport is closed or closing: nothing is read or written any more.
        self._closed = False
        # The code this end closed with, or the client's; 1006 for a connection just lost.
        self.close_code: int | None = None

    # -- reading ------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        reader = self._reader
        if reader is None or self._closed:
            return
        try:
            reader.feed(data, self._message_read)
        except Violation as violation:
            self._reader = None
            self._message_read((_VIOLATED, (violation.code, violation.reason)))

    def _message_read(self, message: Message) -> None:
        if self._close_sent:
            # Waiting for the answer to our close: everything else is dropped.
            if message[0] in (CLOSE, _VIOLATED):
                self._shut()
            return
        inbox = self._inbox
        if inbox is None:
            inbox = self._inbox = deque()
        inbox.append(message)
        self._inbox_bytes += _size(message)
        if (
            len(inbox) >= INBOX_MESSAGES or self._inbox_bytes >= INBOX_BYTES
        ) and not self._reading_paused:
            self._reading_paused = True
            self._transport.pause_reading()
        _wake(self._waiter)

    async def receive(self) -> Message:
        """The next message: (TEXT, str), (BINARY | PING | PONG, bytes), or, once nothing
        more will come, (CLOSE, (code, reason))."""
        while True:
            inbox = self._inbox
            if inbox:
                message = inbox.popleft()
                self._inbox_bytes -= _size(message)
                if not inbox:
                    self._inbox = None
                    self._inbox_bytes = 0
                    self._resume_reading()
                return self._received(message)
            if self._close_sent or self._closed:
                return CLOSE, (self.close_code or CLOSE_ABNORMAL, "")
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self._waiter = None

    def _received(self, message: Message) -> Message:
        kind = message[0]
        if kind != CLOSE and kind != _VIOLATED:
            return message
        code, reason = cast("tuple[int, str]", message[1])
        self.close_code = code
        self.flush()  # answers to the frames before it go first
        if kind == CLOSE:
            # The client closes: answer (as aiohttp did, with 1000) and end the connection.
            self._write_close(CLOSE_NORMAL, b"")
        else:
            self._write_close(code, reason.encode())
        self._shut()
        return CLOSE, (code, reason)

    def _resume_reading(self) -> None:
        if self._reading_paused and not self._closed:
            self._reading_paused = False
            self._transport.resume_reading()

    # -- writing ------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """Nothing more is written: a close was sent, or the transport is gone."""
        return self._close_sent or self._closed or self._transport.is_closing()

    def write_now(self, data: str) -> bool:
        # Once per recipient of every message: `closed` and `header` are spelled out here.
        transport = self._transport
        if self._close_sent or self._closed or transport.is_closing():
            raise ConnectionResetError("Cannot write to closing transport")
        if transport.get_write_buffer_size() + self._taken_bytes > KEEPING_UP_BYTES:
            return False
        payload = data.encode("utf-8")
        length = len(payload)
        taken = self._taken
        if taken is None:
            taken = self._taken = []
            self._turn.add(self)
        taken.append(_LEN2(_TEXT_FINAL, 126, length) if 125 < length < 65536 else header(length))
        taken.append(payload)
        self._taken_bytes += length
        return True

    def flush(self) -> None:
        """Write what was taken; dropped if the socket closed meanwhile (its reader sees why).

        Also called early, before a pong or close is written; the turn's call then finds nothing.
        """
        taken, self._taken = self._taken, None
        self._taken_bytes = 0
        if taken and not self.closed:
            self._transport.writelines(taken)

    async def send_str(self, data: str) -> None:
        """Write a text frame, then wait while the transport holds more than it should."""
        self.flush()
        if self.closed:
            raise ConnectionResetError("Cannot write to closing transport")
        payload = data.encode("utf-8")
        self._transport.writelines([header(len(payload)), payload])
        if self._writing_paused:
            drained = self._drained
            if drained is None:
                drained = self._drained = asyncio.get_running_loop().create_future()
            await drained
            if self._closed:
                raise ConnectionResetError("Connection lost")

    def pong(self, data: bytes) -> None:
        """Answer a ping (RFC 6455 5.5.3), after the frames taken before it."""
        self.flush()
        if not self.closed:
            self._transport.write(bytes((_PONG_FINAL, len(data))) + data)

    async def close(self, *, code: int = CLOSE_NORMAL, message: bytes = b"") -> bool:
        """Start the closing handshake and wait (up to CLOSE_TIMEOUT) for the client's
        answer; False if the socket was already closing."""
        self.flush()
        if self._close_sent or self._closed:
            return False
        self.close_code = code
        self._write_close(code, message)
        unread, self._inbox = self._inbox, None
        self._inbox_bytes = 0
        _wake(self._waiter)  # the read loop learns that the socket closes
        answered = unread is not None and any(kind == CLOSE for kind, _ in unread)
        if answered or self._reader is None:
            # The client's close was read already, or nothing it sends can be read any more.
            self._shut()
            return True
        self._resume_reading()
        replied = self._replied = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await replied
        except TimeoutError:
            # Closed all the same, but not dropped: a client that reads slowly
            # (a slow consumer) still gets what was sent, the close frame last.
            pass
        finally:
            self._shut()
        return True

    def abort(self) -> None:
        """Drop the connection now, unsent bytes and all (no closing handshake)."""
        self._closed = True
        self._transport.abort()
        _wake(self._replied)

    def _write_close(self, code: int, reason: bytes) -> None:
        self._close_sent = True
        if not (self._closed or self._transport.is_closing()):
            payload = _CODE(code) + reason[:123]
            self._transport.write(bytes((_CLOSE_FINAL, len(payload))) + payload)

    def _shut(self) -> None:
        """Close the transport (after what it holds is written); wake whoever waits."""
        if not self._closed:
            self._closed = True
            self._transport.close()
        _wake(self._replied)

    # -- the transport's callbacks ------------------------------------------------------

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        drained, self._drained = self._drained, None
        _wake(drained)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        if self.close_code is None:
            self.close_code = CLOSE_ABNORMAL
        self._taken = None
        self._writing_paused = False
        for waiter in (self._waiter, self._drained, self._replied):
            _wake(waiter)
        self._drained = None


def _size(message: Message) -> int:
    """About what a read message holds (a text counted in characters, at least its bytes)."""
    payload = message[1]
    return len(payload) if isinstance(payload, str | bytes) else 0


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


def header(length: int) -> bytes:
    """A final, unmasked text frame's header for a payload of `length` bytes (RFC 6455 5.2)."""
    if length < 126:
        return bytes((_TEXT_FINAL, length))
    if length < 65536:
        return _LEN2(_TEXT_FINAL, 126, length)
    return _LEN8(_TEXT_FINAL, 127, length)
