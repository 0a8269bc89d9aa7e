"""`WireSocket`: frames of one loop turn leave in one write; reading, pausing, both closings."""

from __future__ import annotations

import asyncio

import pytest

from chatapp.gateway.frame_reader import BINARY, CLOSE, TEXT
from chatapp.gateway.wire import (
    INBOX_BYTES,
    INBOX_MESSAGES,
    KEEPING_UP_BYTES,
    TurnWrites,
    WireSocket,
    header,
)
from chatapp.testing.wire_socket import encode_frame


class RecordingTransport:
    """A transport that keeps every write, and reports a buffer of the size it is told."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.buffered = 0
        self.reading = True
        self.closed = False

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def writelines(self, data: list[bytes]) -> None:
        self.writes.append(b"".join(data))

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True


def frame(text: str) -> bytes:
    payload = text.encode()
    return header(len(payload)) + payload


async def test_frames_of_one_turn_leave_in_one_write() -> None:
    transport = RecordingTransport()
    socket = WireSocket(transport, TurnWrites(), max_message=1024)

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
    socket = WireSocket(transport, TurnWrites(), max_message=1024)
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
    sockets = [WireSocket(t, turn, max_message=1024) for t in (first, second)]

    assert sockets[0].write_now("a")
    assert sockets[1].write_now("b")
    sockets[0].flush()  # early, as before aiohttp writes through it: nothing is written twice
    assert sockets[0].write_now("c")

    await asyncio.sleep(0)
    assert first.writes == [frame("a"), frame("c")]
    assert second.writes == [frame("b")]


# -- reading and closing -------------------------------------------------------------------


def client_frame(opcode: int, payload: bytes) -> bytes:
    return encode_frame(opcode, payload)


async def test_a_full_inbox_pauses_reading_until_the_loop_took_it_all() -> None:
    transport = RecordingTransport()
    socket = WireSocket(transport, TurnWrites(), max_message=1024)
    socket.data_received(b"".join(client_frame(TEXT, b"%d" % n) for n in range(INBOX_MESSAGES)))
    assert not transport.reading
    for n in range(INBOX_MESSAGES - 1):
        assert await socket.receive() == (TEXT, str(n))
        assert not transport.reading
    assert await socket.receive() == (TEXT, str(INBOX_MESSAGES - 1))
    assert transport.reading


async def test_a_few_large_messages_pause_reading_as_many_small_ones_do() -> None:
    transport = RecordingTransport()
    socket = WireSocket(transport, TurnWrites(), max_message=1 << 21)
    big = b"x" * (INBOX_BYTES // 2)
    socket.data_received(client_frame(BINARY, big))
    assert transport.reading
    socket.data_received(client_frame(BINARY, big))
    assert not transport.reading  # two messages, but the inbox holds its bytes' worth
    assert await socket.receive() == (BINARY, big)
    assert not transport.reading
    assert await socket.receive() == (BINARY, big)
    assert transport.reading


async def test_a_client_close_is_answered_with_1000_and_ends_the_socket() -> None:
    transport = RecordingTransport()
    socket = WireSocket(transport, TurnWrites(), max_message=1024)
    socket.data_received(client_frame(TEXT, b"last") + client_frame(CLOSE, b"\x0f\xa0bye"))
    assert await socket.receive() == (TEXT, "last")
    assert await socket.receive() == (CLOSE, (4000, "bye"))
    assert transport.writes == [b"\x88\x02\x03\xe8"]
    assert transport.closed
    assert socket.close_code == 4000
    assert await socket.receive() == (CLOSE, (4000, ""))
    with pytest.raises(ConnectionResetError):
        socket.write_now("too late")


async def test_answers_taken_before_a_client_close_are_written_before_the_answer() -> None:
    transport = RecordingTransport()
    socket = WireSocket(transport, TurnWrites(), max_message=1024)
    socket.data_received(client_frame(TEXT, b"question") + client_frame(CLOSE, b"\x03\xe8"))
    assert await socket.receive() == (TEXT, "question")
    assert socket.write_now("answer")
    assert await socket.receive() == (CLOSE, (1000, ""))
    assert transport.writes == [frame("answer"), b"\x88\x02\x03\xe8"]


async def test_a_server_close_after_the_clients_close_was_read_does_not_wait() -> None:
    transport = RecordingTransport()
    socket = WireSocket(transport, TurnWrites(), max_message=1024)
    socket.data_received(client_frame(TEXT, b"unread") + client_frame(CLOSE, b"\x03\xe8"))
    assert await asyncio.wait_for(socket.close(code=1001), timeout=1) is True
    assert transport.closed


async def test_a_violation_closes_with_its_code_after_the_messages_before_it() -> None:
    transport = RecordingTransport()
    socket = WireSocket(transport, TurnWrites(), max_message=1024)
    socket.data_received(client_frame(TEXT, b"fine") + client_frame(TEXT, b"\xff"))
    socket.data_received(client_frame(TEXT, b"never read"))
    assert await socket.receive() == (TEXT, "fine")
    assert transport.writes == []  # the close waits for the loop to reach it
    kind, (code, _) = await socket.receive()  # type: ignore[str-unpack]
    assert (kind, code) == (CLOSE, 1007)
    assert transport.writes[0][:4] == b"\x88" + bytes((len(transport.writes[0]) - 2,)) + b"\x03\xef"
    assert transport.closed


async def test_a_server_close_waits_for_the_clients_answer() -> None:
    transport = RecordingTransport()
    socket = WireSocket(transport, TurnWrites(), max_message=1024)
    reader = asyncio.create_task(socket.receive())
    closing = asyncio.create_task(socket.close(code=4401, message=b"bad token"))
    assert await reader == (CLOSE, (4401, ""))  # the read loop learns at once
    assert transport.writes == [b"\x88\x0b\x11\x31bad token"]
    assert not transport.closed
    socket.data_received(client_frame(TEXT, b"dropped") + client_frame(CLOSE, b"\x03\xe8"))
    assert await closing is True
    assert transport.closed
    assert await socket.close() is False


async def test_pongs_follow_the_frames_taken_before_them() -> None:
    transport = RecordingTransport()
    socket = WireSocket(transport, TurnWrites(), max_message=1024)
    assert socket.write_now("first")
    socket.pong(b"p")
    assert transport.writes == [frame("first"), b"\x8a\x01p"]


async def test_a_lost_connection_ends_a_waiting_receive_with_1006() -> None:
    transport = RecordingTransport()
    socket = WireSocket(transport, TurnWrites(), max_message=1024)
    reader = asyncio.create_task(socket.receive())
    await asyncio.sleep(0)
    socket.connection_lost(None)
    assert await reader == (CLOSE, (1006, ""))
