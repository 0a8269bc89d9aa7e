"""aiohttp's WebSocket as a `FrameSocket`: text frames written straight to the transport.

aiohttp's `send_str` is a coroutine, so each frame through it costs an await,
and a connection that sends without waiting would need a task (and a queue)
of its own. A server's frames are not masked, so a frame is its header and
its UTF-8 bytes: while the transport's buffer is short (the socket keeps up)
`write_now` writes them at once, the same bytes `send_str` writes, each
frame in whole so that they never interleave with aiohttp's own (pong,
close). Past `KEEPING_UP_BYTES` it answers False and the connection queues,
and writes that queue with `send_str`, which waits for the transport.
"""

from __future__ import annotations

import struct
from typing import Protocol

from aiohttp import web

# What the transport may hold unsent before the socket counts as lagging:
# asyncio's default high-water mark, where it would pause the writer anyway.
KEEPING_UP_BYTES = 64 * 1024
# Larger payloads are not copied to be joined to their header (as aiohttp does).
_JOIN_BELOW = 16 * 1024
_TEXT_FINAL = 0x81
_LEN2 = struct.Struct("!BBH").pack
_LEN8 = struct.Struct("!BBQ").pack


class Transport(Protocol):
    """What is written to: asyncio's transport or uvloop's (which is not a subclass of it)."""

    def is_closing(self) -> bool: ...

    def get_write_buffer_size(self) -> int: ...

    def write(self, data: bytes) -> None: ...


class WireSocket:
    """One server-side WebSocket of aiohttp's, with the transport under it."""

    __slots__ = ("_socket", "_transport")

    def __init__(self, socket: web.WebSocketResponse, transport: Transport) -> None:
        self._socket = socket
        self._transport = transport

    def write_now(self, data: str) -> bool:
        transport = self._transport
        if self._socket.closed or transport.is_closing():
            raise ConnectionResetError("Cannot write to closing transport")
        if transport.get_write_buffer_size() > KEEPING_UP_BYTES:
            return False
        payload = data.encode("utf-8")
        if len(payload) > _JOIN_BELOW:
            # Two writes in a row, nothing between them: still one frame on the wire.
            transport.write(header(len(payload)))
            transport.write(payload)
        else:
            transport.write(header(len(payload)) + payload)
        return True

    async def send_str(self, data: str) -> None:
        await self._socket.send_str(data)

    async def close(self, *, code: int = 1000, message: bytes = b"") -> bool:
        return await self._socket.close(code=code, message=message)


def header(length: int) -> bytes:
    """A final, unmasked text frame's header for a payload of `length` bytes (RFC 6455 5.2)."""
    if length < 126:
        return bytes((_TEXT_FINAL, length))
    if length < 65536:
        return _LEN2(_TEXT_FINAL, 126, length)
    return _LEN8(_TEXT_FINAL, 127, length)
