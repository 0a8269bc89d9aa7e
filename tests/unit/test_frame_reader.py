"""`FrameReader`: client bytes cut into WebSocket messages, however the reads split them."""

from __future__ import annotations

import struct
import tracemalloc

import pytest

from chatapp.gateway.frame_reader import (
    BINARY,
    CLOSE,
    PING,
    PONG,
    TEXT,
    FrameReader,
    Message,
    Violation,
)
from chatapp.testing.wire_socket import OPCODE_CONTINUATION, encode_frame

LIMIT = 1024


def read(chunks: list[bytes], *, limit: int = LIMIT) -> list[Message]:
    reader = FrameReader(limit)
    messages: list[Message] = []
    for chunk in chunks:
        reader.feed(chunk, messages.append)
    return messages


def one_byte_at_a_time(data: bytes) -> list[bytes]:
    return [data[index : index + 1] for index in range(len(data))]


def test_masked_and_unmasked_text_and_binary() -> None:
    data = (
        encode_frame(TEXT, "héllo".encode())
        + encode_frame(TEXT, b"plain", mask=False)
        + encode_frame(BINARY, b"\x00\xff")
    )
    assert read([data]) == [(TEXT, "héllo"), (TEXT, "plain"), (BINARY, b"\x00\xff")]


@pytest.mark.parametrize("size", [0, 125, 126, 65_535, 65_536, 200_000])
def test_every_length_encoding_in_any_split(size: int) -> None:
    payload = bytes(index % 251 for index in range(size))
    data = encode_frame(BINARY, payload) + encode_frame(TEXT, b"after")
    expected = [(BINARY, payload), (TEXT, "after")]
    assert read([data], limit=size + 10) == expected
    cuts = [data[:1], data[1:3], data[3:9], data[9 : size // 2 + 9], data[size // 2 + 9 :]]
    assert read(cuts, limit=size + 10) == expected
    if size <= 126:
        assert read(one_byte_at_a_time(data), limit=size + 10) == expected


def test_fragments_join_with_control_frames_between() -> None:
    data = (
        encode_frame(TEXT, b'{"a":', fin=False)
        + encode_frame(PING, b"mid")
        + encode_frame(OPCODE_CONTINUATION, "é".encode()[:1], fin=False)
        + encode_frame(OPCODE_CONTINUATION, "é".encode()[1:])
    )
    assert read(one_byte_at_a_time(data)) == [(PING, b"mid"), (TEXT, '{"a":é')]


def test_close_frames_give_code_and_reason() -> None:
    assert read([encode_frame(CLOSE, struct.pack("!H", 4000) + b"bye")]) == [(CLOSE, (4000, "bye"))]
    assert read([encode_frame(CLOSE, b"")]) == [(CLOSE, (1005, ""))]
    assert read([encode_frame(PONG, b"p")]) == [(PONG, b"p")]
    assert read([encode_frame(CLOSE, struct.pack("!H", 5000))]) == [(CLOSE, (5000, ""))]


VIOLATIONS = {
    "reserved bits": (encode_frame(TEXT, b"x", rsv=1), 1002),
    "reserved data opcode": (encode_frame(0x3, b"x"), 1002),
    "reserved control opcode": (encode_frame(0xB, b""), 1002),
    "fragmented ping": (encode_frame(PING, b"x", fin=False), 1002),
    "ping of 126 bytes": (encode_frame(PING, b"x" * 126), 1002),
    "lone continuation": (encode_frame(OPCODE_CONTINUATION, b"x"), 1002),
    "text inside a fragmented message": (
        encode_frame(TEXT, b"x", fin=False) + encode_frame(TEXT, b"y"),
        1002,
    ),
    "close of one byte": (encode_frame(CLOSE, b"\x03"), 1002),
    "close code 1005 on the wire": (encode_frame(CLOSE, struct.pack("!H", 1005)), 1002),
    "close code 1004": (encode_frame(CLOSE, struct.pack("!H", 1004)), 1002),
    "close code 2999": (encode_frame(CLOSE, struct.pack("!H", 2999)), 1002),
    "close reason not UTF-8": (encode_frame(CLOSE, struct.pack("!H", 1000) + b"\xff"), 1007),
    "text not UTF-8": (encode_frame(TEXT, b"\xc0\xaf"), 1007),
    "a surrogate in UTF-8": (encode_frame(TEXT, b"\xed\xa0\x80"), 1007),
    "over the limit": (encode_frame(BINARY, b"x" * (LIMIT + 1)), 1009),
    "fragments over the limit": (
        encode_frame(TEXT, b"x" * LIMIT, fin=False) + encode_frame(OPCODE_CONTINUATION, b"y"),
        1009,
    ),
}


@pytest.mark.parametrize("name", VIOLATIONS)
def test_violations_carry_the_rfc_close_code(name: str) -> None:
    data, code = VIOLATIONS[name]
    with pytest.raises(Violation) as raised:
        read([encode_frame(TEXT, b"before") + data])
    assert raised.value.code == code


def test_messages_before_a_violation_are_emitted_first() -> None:
    reader = FrameReader(LIMIT)
    messages: list[Message] = []
    with pytest.raises(Violation):
        reader.feed(encode_frame(TEXT, b"first") + encode_frame(0x3, b""), messages.append)
    assert messages == [(TEXT, "first")]


def test_a_lying_length_is_refused_from_the_header_alone() -> None:
    header_only = encode_frame(TEXT, b"", declared_length=2**63 - 1)
    with pytest.raises(Violation) as raised:
        read([header_only])
    assert raised.value.code == 1009


def test_a_frame_fed_a_byte_at_a_time_is_buffered_whole() -> None:
    """Tiny reads are appended to one buffer: what is held is about the bytes, not an
    object per piece (which would be some 40 times as much)."""
    reader = FrameReader(100_000)
    messages: list[Message] = []
    data = encode_frame(BINARY, b"x" * 50_000)
    pieces = one_byte_at_a_time(data[:-1])
    tracemalloc.start()
    try:
        for piece in pieces:
            reader.feed(piece, messages.append)
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert messages == []
    assert reader.buffered == len(data) - 1
    assert held < 3 * len(data)
    reader.feed(data[-1:], messages.append)
    assert messages == [(BINARY, b"x" * 50_000)]
    assert reader.buffered == 0


def test_the_limit_itself_is_allowed() -> None:
    assert read([encode_frame(BINARY, b"x" * LIMIT)]) == [(BINARY, b"x" * LIMIT)]
