"""`gateway.upgrade.take_over` against real aiohttp: what it hands over, what aiohttp lets go.

A bare aiohttp app with one route that takes the socket over, and a raw
client on a real localhost socket.
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from aiohttp import web

from chatapp.gateway.frame_reader import BINARY, TEXT, Message
from chatapp.gateway.upgrade import take_over
from chatapp.gateway.wire import TurnWrites, WireSocket
from chatapp.testing.wire_socket import encode_frame

Route = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def serving(route: Route) -> AsyncIterator[tuple[web.AppRunner, int]]:
    app = web.Application()
    app.router.add_get("/ws", route)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield runner, runner.addresses[0][1]
    finally:
        await runner.cleanup()


def upgrade_request() -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


async def receive_all(wire: WireSocket, count: int) -> list[Message]:
    async with asyncio.timeout(10):
        return [await wire.receive() for _ in range(count)]


async def test_a_socket_aiohttp_paused_is_read_again_once_taken_over() -> None:
    """Bytes enough to fill aiohttp's buffer arrive before the route runs: aiohttp pauses
    reading; the new protocol gets them all, and what comes after them."""
    taken: asyncio.Future[WireSocket] = asyncio.get_running_loop().create_future()

    async def route(request: web.Request) -> web.StreamResponse:
        transport = request.transport
        assert transport is not None
        async with asyncio.timeout(10):
            # Until aiohttp has paused for itself: a state of its transport that no
            # event announces, so it is looked at, boundedly.
            while transport.is_reading():  # noqa: ASYNC110
                await asyncio.sleep(0.005)
        response, wire = await take_over(
            request, lambda t: WireSocket(t, TurnWrites(), max_message=1 << 21)
        )
        taken.set_result(wire)
        return response

    async with serving(route) as (runner, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        big = b"x" * 100_000
        writer.write(upgrade_request() + encode_frame(BINARY, big) * 4)
        wire = await asyncio.wait_for(taken, 10)
        writer.write(encode_frame(TEXT, b"after"))
        assert await receive_all(wire, 5) == [(BINARY, big)] * 4 + [(TEXT, "after")]
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101")
        server = runner.server
        assert server is not None
        assert server.connections == []  # aiohttp let go of the upgraded socket
        wire.abort()
        writer.close()
