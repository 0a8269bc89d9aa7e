"""aiohttp's WebSocket as a `FrameSocket`: text frames written straight to the transport.

aiohttp's `send_str` is a coroutine, so each frame through it costs an await,
and a connection that sends without waiting would need a task (and a queue)
of its own. A server's frames are not masked, so a frame is its header and
its UTF-8 bytes: while the transport's buffer is short (the socket keeps up)
`write_now` takes them at once, the same bytes `send_str` writes. Past
`KEEPING_UP_BYTES` it answers False and the connection queues, and writes
that queue with `send_str`, which waits for the transport.

The frames taken in one turn of the event loop leave in one write at its
end: one commit answers a batch of sends, and its acks and messages to one
socket then cost one system call, not one each (on loopback a send also does
the receiver's TCP work, so each call is dear). Each frame is whole, so none
interleaves with aiohttp's own (pong, close), and anything aiohttp is asked to
write through us goes after what was taken before it.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Protocol

from aiohttp import web

# What the transport may hold unsent before the socket counts as lagging:
# asyncio's default high-water mark, where it would pause the writer anyway.
KEEPING_UP_BYTES = 64 * 1024
_TEXT_FINAL = 0x81
_LEN2 = struct.Struct("!BBH").pack
_LEN8 = struct.Struct("!BBQ").pack


class Transport(Protocol):
    """What is written to: asyncio's transport or uvloop's (which is not a subclass of it)."""

    def is_closing(self) -> bool: ...

    def get_write_buffer_size(self) -> int: ...

    def writelines(self, data: list[bytes]) -> None: ...


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


class WireSocket:
    """One server-side WebSocket of aiohttp's, with the transport under it."""

    __slots__ = ("_socket", "_taken", "_taken_bytes", "_transport", "_turn")

    def __init__(
        self, socket: web.WebSocketResponse, transport: Transport, turn: TurnWrites
    ) -> None:
        self._socket = socket
        self._transport = transport
        self._turn = turn
        # Headers and payloads taken this turn of the loop; None when nothing is.
        self._taken: list[bytes] | None = None
        self._taken_bytes = 0

    def write_now(self, data: str) -> bool:
        transport = self._transport
        if self._socket.closed or transport.is_closing():
            raise ConnectionResetError("Cannot write to closing transport")
        if transport.get_write_buffer_size() + self._taken_bytes > KEEPING_UP_BYTES:
            return False
        payload = data.encode("utf-8")
        taken = self._taken
        if taken is None:
            taken = self._taken = []
            self._turn.add(self)
        taken.append(header(len(payload)))
        taken.append(payload)
        self._taken_bytes += len(payload)
        return True

    def flush(self) -> None:
        """Write what was taken; dropped if the socket closed meanwhile (its reader sees why).

        Also called early, before aiohttp writes through us; the turn's call then finds nothing.
        """
        taken, self._taken = self._taken, None
        self._taken_bytes = 0
        if taken and not (self._socket.closed or self._transport.is_closing()):
            self._transport.writelines(taken)

    async def send_str(self, data: str) -> None:
        self.flush()
        await self._socket.send_str(data)

    async def close(self, *, code: int = 1000, message: bytes = b"") -> bool:
        self.flush()
        return await self._socket.close(code=code, message=message)


def header(length: int) -> bytes:
    """A final, unmasked text frame's header for a payload of `length` bytes (RFC 6455 5.2)."""
    if length < 126:
        return bytes((_TEXT_FINAL, length))
    if length < 65536:
        return _LEN2(_TEXT_FINAL, 126, length)
    return _LEN8(_TEXT_FINAL, 127, length)
