"""`WireSocket`: the frames of one turn of the event loop leave in one write, whole and in order."""

from __future__ import annotations

import asyncio

from aiohttp import web

from chatapp.gateway.wire import KEEPING_UP_BYTES, TurnWrites, WireSocket, header


class RecordingTransport:
    """A transport that keeps every write, and reports a buffer of the size it is told."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.buffered = 0

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def writelines(self, data: list[bytes]) -> None:
        self.writes.append(b"".join(data))


def frame(text: str) -> bytes:
    payload = text.encode()
    return header(len(payload)) + payload


async def test_frames_of_one_turn_leave_in_one_write() -> None:
    transport = RecordingTransport()
    socket = WireSocket(web.WebSocketResponse(), transport, TurnWrites())

    assert socket.write_now('{"type":"ack","ref":"1"}')
    assert socket.write_now("é" * 200)  # a 2-byte length header, UTF-8 counted in bytes
    assert transport.writes == []

    await asyncio.sleep(0)
    assert transport.writes == [frame('{"type":"ack","ref":"1"}') + frame("é" * 200)]

    assert socket.write_now("next turn")
    await asyncio.sleep(0)
    assert transport.writes[1:] == [frame("next turn")]


async def test_a_lagging_transport_counts_what_this_turn_took() -> None:
    transport = RecordingTransport()
    socket = WireSocket(web.WebSocketResponse(), transport, TurnWrites())
    transport.buffered = KEEPING_UP_BYTES - 100

    assert socket.write_now("x" * 101)  # the buffer alone is under the mark
    assert not socket.write_now("y")  # with the 101 bytes taken it is past it: this one queues

    await asyncio.sleep(0)
    assert transport.writes == [frame("x" * 101)]


def test_headers_follow_rfc_6455_lengths() -> None:
    assert header(125) == bytes((0x81, 125))
    assert header(126) == bytes((0x81, 126, 0, 126))
    assert header(70_000) == bytes((0x81, 127)) + (70_000).to_bytes(8, "big")


async def test_sockets_of_one_turn_are_written_by_one_callback_in_order_taken() -> None:
    turn = TurnWrites()
    first, second = RecordingTransport(), RecordingTransport()
    sockets = [WireSocket(web.WebSocketResponse(), t, turn) for t in (first, second)]

    assert sockets[0].write_now("a")
    assert sockets[1].write_now("b")
    sockets[0].flush()  # early, as before aiohttp writes through it: nothing is written twice
    assert sockets[0].write_now("c")

    await asyncio.sleep(0)
    assert first.writes == [frame("a"), frame("c")]
    assert second.writes == [frame("b")]
