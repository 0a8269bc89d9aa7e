"""Versioned encoding of the values the message store keeps.

A value is one format-version byte followed by a msgpack array. The version
lets the layout change later: a new build can read both layouts and rewrite
lazily, and an old build refuses a layout it does not know instead of
misreading it.
"""

from __future__ import annotations

from typing import Any

import msgpack

from chatapp.messaging.models import StoredMessage

FORMAT_VERSION = 1


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
    if not data:
        raise CodecError("empty value: no format version byte")
    version = data[0]
    if version != FORMAT_VERSION:
        raise UnknownFormatVersionError(
            f"value format version {version} is unknown to this build, which reads "
            f"version {FORMAT_VERSION}; was it written by a newer chatapp?"
        )
    try:
        fields = msgpack.unpackb(data[1:], raw=False, use_list=True)
    except (ValueError, msgpack.UnpackException) as exc:
        raise CodecError(f"malformed version {version} value: {exc}") from exc
    # bool is an int subclass, and a bool where an id belongs means corruption.
    if (
        not isinstance(fields, list)
        or len(fields) != len(types)
        or not all(type(f) is t for f, t in zip(fields, types, strict=True))
    ):
        raise CodecError(f"malformed version {version} value: expected {len(types)} fields")
    return fields
