"""The WebSocket handshake, and taking the socket over from aiohttp once it is done.

aiohttp parses the upgrade request and routes it through the middlewares as
any other (logging, the error envelope, the origin check). Its own WebSocket
would then keep, for the connection's whole life, the request handler with
its HTTP parser and two tasks, the request as parsed, and its WebSocket
reader and writer: about 9 KiB of a 17 KiB idle connection. So the 101 is
written here and the transport is handed to our `WireSocket`; aiohttp is
told the connection is gone, and lets all of that go.

What this leans on in aiohttp (tested by every WebSocket test, and pinned
by pyproject's `aiohttp<4`): `request.protocol` is the connection's
`RequestHandler`; bytes that came after the upgrade request, before the
handler ran, are kept in its `_message_tail`; with its `transport` set to None
its `connection_lost` neither closes nor writes to the socket, and the
handler's task ends once the route returns; a pause of reading it made for
itself is undone here.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import hdrs, web

# RFC 6455 1.3: what the client's key is hashed with to prove the server read it.
_HANDSHAKE_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

P = TypeVar("P", bound=asyncio.Protocol)


async def take_over(
    request: web.Request, protocol_of: Callable[[Any], P]
) -> tuple[web.StreamResponse, P]:
    """Answer the upgrade with 101 and give the socket to `protocol_of(transport)`.

    A request that is not a valid WebSocket upgrade raises the HTTP error
    aiohttp's own handshake gives (400, saying what is wrong).
    """
    check = web.WebSocketResponse(compress=False)
    if not check.can_prepare(request).ok:
        await check.prepare(request)  # raises the error that says why
    key = request.headers[hdrs.SEC_WEBSOCKET_KEY]
    accept = base64.b64encode(hashlib.sha1(key.encode() + _HANDSHAKE_GUID).digest()).decode()
    response = web.StreamResponse(
        status=101,
        headers={
            hdrs.UPGRADE: "websocket",
            hdrs.CONNECTION: "upgrade",
            hdrs.SEC_WEBSOCKET_ACCEPT: accept,
        },
    )
    response.force_close()
    await response.prepare(request)
    handler = request.protocol
    transport = request.transport
    if transport is None or transport.is_closing():
        raise ConnectionResetError("the client went away during the handshake")
    early: bytes = getattr(handler, "_message_tail", b"")
    handler._message_tail = b""
    protocol = protocol_of(transport)
    transport.set_protocol(protocol)
    # aiohttp may have paused either direction for itself: reading, when enough
    # bytes followed the upgrade request; writing, when the 101 filled the buffer.
    # The new protocol starts from neither, and pauses again as it needs.
    if not transport.is_reading():
        transport.resume_reading()
    if handler.writing_paused:
        protocol.pause_writing()
    handler.transport = None
    handler.connection_lost(None)
    if early:
        protocol.data_received(early)
    return response, protocol
