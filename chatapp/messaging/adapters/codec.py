"""Versioned encoding of the values the message store keeps.

A value is one format-version byte followed by a msgpack array. The version
lets the layout change later: a new build can read both layouts and rewrite
lazily, and an old build refuses a layout it does not know instead of
misreading it.
"""

from __future__ import annotations

import io
import struct
from typing import Any, Final

import msgpack

from chatapp.messaging.models import StoredMessage
from chatapp.messaging.preview import cut_utf8, head_bytes

FORMAT_VERSION = 1

# msgpack's string headers: fixstr holds its length in the low five bits, the
# others in the 1, 2 or 4 big-endian bytes after the type byte.
_FIXSTR_FIRST: Final = 0xA0
_FIXSTR_LAST: Final = 0xBF
_STR_LENGTHS: Final = {
    0xD9: struct.Struct(">B"),
    0xDA: struct.Struct(">H"),
    0xDB: struct.Struct(">I"),
}
# Enough for the array header, two ids and a client_msg_id of 64 characters.
_FIELDS_READ_SIZE: Final = 128


class CodecError(ValueError):
    """A stored value could not be decoded."""


class UnknownFormatVersionError(CodecError):
    """A stored value was written in a format this build does not read."""


def encode_message(*, sender_id: int, created_at: int, client_msg_id: str, text: str) -> bytes:
    """The value of a message record.

    The channel and message ids live in the key only, so the value can be
    encoded before the writer assigns them.
    """
    return _encode([sender_id, created_at, client_msg_id, text])


def decode_message(data: bytes, *, channel_id: int, message_id: int) -> StoredMessage:
    """A message record read back; its ids come from the key."""
    sender_id, created_at, client_msg_id, text = _decode(data, (int, int, str, str))
    return StoredMessage(
        channel_id=channel_id,
        message_id=message_id,
        sender_id=sender_id,
        text=text,
        created_at=created_at,
        client_msg_id=client_msg_id,
    )


def decode_message_preview(data: bytes, *, max_chars: int) -> tuple[int, int, str, bool]:
    """`(sender_id, created_at, text, truncated)` of a message record, the text cut by `cut_utf8`.

    Only the fields before the text and the first `head_bytes(max_chars)`
    bytes of the text are decoded: a preview of a 100,000-character message
    costs what one of 200 characters does. The text is the last field, so its
    msgpack header says where it starts and how long it is.
    """
    _check_version(data)
    stream = io.BytesIO(data)  # shares `data`'s buffer: nothing is copied
    stream.seek(1)
    unpacker = msgpack.Unpacker(stream, raw=False, read_size=_FIELDS_READ_SIZE)
    try:
        count = unpacker.read_array_header()
        fields = [unpacker.unpack() for _ in range(min(count, 3))]
    except (ValueError, msgpack.UnpackException) as exc:
        raise CodecError(f"malformed version {FORMAT_VERSION} value: {exc}") from exc
    if count != 4:
        raise CodecError(f"malformed version {FORMAT_VERSION} value: expected 4 fields")
    _check_types(fields, (int, int, str))
    sender_id, created_at, _client_msg_id = fields
    start, length = _str_header(data, 1 + unpacker.tell())
    if start + length != len(data):
        raise CodecError(f"malformed version {FORMAT_VERSION} value: the text does not end it")
    head = data[start : start + min(length, head_bytes(max_chars))]
    try:
        text, truncated = cut_utf8(head, whole=len(head) == length, max_chars=max_chars)
    except UnicodeDecodeError as exc:
        raise CodecError(f"malformed version {FORMAT_VERSION} value: {exc}") from exc
    return sender_id, created_at, text, truncated


def _str_header(data: bytes, at: int) -> tuple[int, int]:
    """`(where the string's bytes start, how many there are)` of the msgpack str at `at`."""
    if at >= len(data):
        raise CodecError(f"malformed version {FORMAT_VERSION} value: the text is missing")
    kind = data[at]
    if _FIXSTR_FIRST <= kind <= _FIXSTR_LAST:
        return at + 1, kind & 0x1F
    size = _STR_LENGTHS.get(kind)
    if size is None or at + 1 + size.size > len(data):
        raise CodecError(f"malformed version {FORMAT_VERSION} value: the text is not a string")
    (length,) = size.unpack_from(data, at + 1)
    return at + 1 + size.size, int(length)


def encode_pointer(channel_id: int, message_id: int) -> bytes:
    """The value of an inbox entry: where its message is."""
    return _encode([channel_id, message_id])


def decode_pointer(data: bytes) -> tuple[int, int]:
    """`(channel_id, message_id)` of an inbox entry."""
    channel_id, message_id = _decode(data, (int, int))
    return channel_id, message_id


def encode_receipt(channel_id: int, message_id: int, seq: int) -> bytes:
    """The value of an idempotency record: the original message and the sender's seq."""
    return _encode([channel_id, message_id, seq])


def decode_receipt(data: bytes) -> tuple[int, int, int]:
    """`(channel_id, message_id, sender_seq)` of an idempotency record."""
    channel_id, message_id, seq = _decode(data, (int, int, int))
    return channel_id, message_id, seq


def _encode(fields: list[int | str]) -> bytes:
    packed: bytes = msgpack.packb(fields, use_bin_type=True)
    return bytes((FORMAT_VERSION,)) + packed


def _decode(data: bytes, types: tuple[type, ...]) -> list[Any]:
    version = _check_version(data)
    try:
        fields = msgpack.unpackb(data[1:], raw=False, use_list=True)
    except (ValueError, msgpack.UnpackException) as exc:
        raise CodecError(f"malformed version {version} value: {exc}") from exc
    if not isinstance(fields, list):
        raise CodecError(f"malformed version {version} value: expected {len(types)} fields")
    _check_types(fields, types)
    return fields


def _check_version(data: bytes) -> int:
    if not data:
        raise CodecError("empty value: no format version byte")
    version = data[0]
    if version != FORMAT_VERSION:
        raise UnknownFormatVersionError(
            f"value format version {version} is unknown to this build, which reads "
            f"version {FORMAT_VERSION}; was it written by a newer chatapp?"
        )
    return version


def _check_types(fields: list[Any], types: tuple[type, ...]) -> None:
    # bool is an int subclass, and a bool where an id belongs means corruption.
    if len(fields) != len(types) or not all(
        type(f) is t for f, t in zip(fields, types, strict=True)
    ):
        raise CodecError(f"malformed version {FORMAT_VERSION} value: expected {len(types)} fields")
