"""The LevelDB key layout of the message store, and reading records by it.

Keys sort the way they are read: a one-letter table, then fixed-width
big-endian integers.

    b"m" channel_id message_id   -> the message
    b"i" user_id seq             -> (channel_id, message_id): the text is stored once
    b"d" sender_id client_msg_id -> (channel_id, message_id, sender's seq)

b"p" belongs to presence and is never touched here.
"""

from __future__ import annotations

import pathlib
import struct
from collections.abc import Sequence
from typing import Any, Final

import plyvel

from chatapp.messaging.adapters import codec
from chatapp.messaging.models import AcceptedMessage, StoredMessage
from chatapp.messaging.store import MessageStoreError

MESSAGE: Final = b"m"
INBOX: Final = b"i"
DEDUP: Final = b"d"
ID_COUNT: Final = 2**64
U64: Final = struct.Struct(">Q")
PREFIX_LEN: Final = 1 + U64.size
# Every 8-byte id sorts at or below this, so it closes any range inclusively.
RANGE_END: Final = b"\xff" * U64.size


def open_db(path: pathlib.Path) -> Any:
    path.mkdir(parents=True, exist_ok=True)
    return plyvel.DB(str(path), create_if_missing=True)


def check_id(name: str, value: int) -> None:
    if not 0 <= value < ID_COUNT:
        raise ValueError(f"{name} must be between 0 and 2**64 - 1, got {value}")


def pack_id(name: str, value: int) -> bytes:
    check_id(name, value)
    return U64.pack(value)


def members_with_sender(sender_id: int, member_ids: Sequence[int]) -> tuple[int, ...]:
    check_id("sender_id", sender_id)
    for user_id in member_ids:
        check_id("member_ids", user_id)
    return tuple(dict.fromkeys((*member_ids, sender_id)))


def dedup_key(sender_id: int, client_msg_id: str) -> bytes:
    if not client_msg_id or not client_msg_id.isascii():
        raise ValueError(f"client_msg_id must be non-empty ASCII, got {client_msg_id!r}")
    return DEDUP + U64.pack(sender_id) + client_msg_id.encode("ascii")


def id_at_end(key: bytes) -> int:
    (value,) = U64.unpack_from(key, PREFIX_LEN)
    return int(value)


def last_id(db: Any, prefix: bytes) -> int:
    """The id in the last key of a range: the counter survives without its own record."""
    with db.iterator(prefix=prefix, reverse=True, include_value=False) as keys:
        for key in keys:
            return id_at_end(key)
    return 0


def find_original(reader: Any, sender_id: int, client_msg_id: str) -> AcceptedMessage | None:
    receipt = read_receipt(reader, sender_id, client_msg_id)
    if receipt is None:
        return None
    return read_original(reader, sender_id, client_msg_id, receipt)


def read_receipt(reader: Any, sender_id: int, client_msg_id: str) -> tuple[int, int, int] | None:
    """`(channel_id, message_id, sender's seq)` of a stored send; None if never stored."""
    receipt: bytes | None = reader.get(dedup_key(sender_id, client_msg_id))
    return None if receipt is None else codec.decode_receipt(receipt)


def read_original(
    reader: Any, sender_id: int, client_msg_id: str, receipt: tuple[int, int, int]
) -> AcceptedMessage:
    """The stored send that `receipt` records, as a duplicate."""
    channel_id, message_id, seq = receipt
    message = read_message(reader, channel_id, message_id)
    if message is None:
        raise MessageStoreError(
            f"idempotency record of ({sender_id}, {client_msg_id!r}) "
            f"points at missing message ({channel_id}, {message_id})"
        )
    return AcceptedMessage(message=message, seq=seq, inbox_seqs={sender_id: seq}, duplicate=True)


def read_message(reader: Any, channel_id: int, message_id: int) -> StoredMessage | None:
    key = MESSAGE + pack_id("channel_id", channel_id) + pack_id("message_id", message_id)
    value: bytes | None = reader.get(key)
    if value is None:
        return None
    return codec.decode_message(value, channel_id=channel_id, message_id=message_id)


def read_pointed(reader: Any, inbox_key: bytes, pointer: bytes) -> StoredMessage:
    channel_id, message_id = codec.decode_pointer(pointer)
    message = read_message(reader, channel_id, message_id)
    if message is None:
        raise MessageStoreError(
            f"inbox entry {inbox_key.hex()} points at missing message ({channel_id}, {message_id})"
        )
    return message
