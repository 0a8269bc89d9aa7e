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


async def test_write_now_takes_a_frame_at_once_unless_stalled() -> None:
    """write_now is a socket that keeps up: the frame is recorded at once; stalled, it
    answers False (the connection queues); closed, it raises as aiohttp's does."""
    socket = FakeSocket()
    assert socket.write_now('{"type":"a"}')
    assert socket.types() == ["a"]
    socket.stall()
    assert not socket.write_now('{"type":"b"}')
    socket.resume()
    await socket.close(code=1000)
    with pytest.raises(ConnectionResetError):
        socket.write_now('{"type":"c"}')
    assert socket.types() == ["a"]
