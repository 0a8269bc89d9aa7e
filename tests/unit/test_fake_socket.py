"""FakeSocket records frames as parsed JSON and closes as aiohttp's socket does."""

from __future__ import annotations

import asyncio

import pytest

from chatapp.gateway.connection import FrameSocket
from chatapp.testing.fakes import FakeSocket


async def test_frames_are_kept_parsed_and_close_happens_once() -> None:
    """sent holds dicts; close records its code once; sending afterwards raises."""
    socket = FakeSocket()
    frame_socket: FrameSocket = socket
    await frame_socket.send_str('{"type":"ready","max_seq":0}')

    assert socket.sent == [{"type": "ready", "max_seq": 0}]
    assert socket.types() == ["ready"]
    assert await frame_socket.close(code=1013, message=b"slow")
    assert not await frame_socket.close(code=1000)
    assert (socket.close_code, socket.close_message) == (1013, b"slow")
    with pytest.raises(ConnectionResetError):
        await frame_socket.send_str('{"type":"late"}')


async def test_a_frame_that_is_not_an_object_is_refused() -> None:
    """The protocol sends only JSON objects; anything else is a bug the fake points at."""
    with pytest.raises(TypeError):
        await FakeSocket().send_str("[1, 2]")


async def test_a_stalled_socket_holds_sends_until_resumed() -> None:
    """stall() makes send_str wait, as a client that stopped reading; resume() lets it go."""
    socket = FakeSocket()
    socket.stall()
    sending = asyncio.create_task(socket.send_str('{"type":"a"}'))
    await socket.wait_until_stalled()
    assert (socket.sent, socket.stalled_sends) == ([], 1)

    socket.resume()
    await sending
    assert await socket.wait_for_frames(1) == [{"type": "a"}]
    assert socket.stalled_sends == 0
