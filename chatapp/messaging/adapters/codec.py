"""Versioned encoding of the values the message store keeps.

A value is one format-version byte followed by a msgpack array. The version
lets the layout change later: a new build can read both layouts and rewrite
lazily, and an old build refuses a layout it does not know instead of
misreading it.

Version 1 is every record as the first release wrote it. Version 2 adds what
message lifecycle needs, and is written only where version 1 cannot say it,
so that a store without edits, replies or mentions stays readable by a build
that knows version 1 alone:

- a message record with `reply_to`, `edited_at`, `deleted_by` or `mentions`:
  `[sender_id, created_at, client_msg_id, reply_to, edited_at, deleted_by,
  mentions, text]`, nil for what is absent; the text stays the last field;
- an update entry of an inbox: `[channel_id, message_id, kind]`, where a
  message entry is version 1's `[channel_id, message_id]`.

A message's reactions are a record of their own (version 1,
`[[emoji, [user_id, ...]], ...]`), so reacting never rewrites the text.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from typing import Any, Final

import msgpack
import msgspec

from chatapp.messaging.models import Reaction, StoredMessage, UpdateKind
from chatapp.messaging.preview import cut_utf8, head_bytes

FORMAT_VERSION = 1
LIFECYCLE_VERSION = 2
"""The version of message records and inbox entries that carry lifecycle fields."""
KNOWN_VERSIONS: Final = (FORMAT_VERSION, LIFECYCLE_VERSION)

_UPDATE_CODES: Final[dict[UpdateKind, int]] = {"edited": 1, "deleted": 2, "reactions": 3}
_UPDATE_KINDS: Final[dict[int, UpdateKind]] = {code: kind for kind, code in _UPDATE_CODES.items()}
_PLAIN_FIELDS: Final = 4
_LIFECYCLE_FIELDS: Final = 8

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


@dataclass(frozen=True, slots=True)
class MessageHead:
    """What a preview needs of a message record."""

    sender_id: int
    created_at: int
    text: str
    truncated: bool
    edited: bool = False
    deleted: bool = False


class CodecError(ValueError):
    """A stored value could not be decoded."""


class UnknownFormatVersionError(CodecError):
    """A stored value was written in a format this build does not read."""


def encode_message(
    *,
    sender_id: int,
    created_at: int,
    client_msg_id: str,
    text: str,
    reply_to: int | None = None,
    edited_at: int | None = None,
    deleted_by: int | None = None,
    mentions: tuple[int, ...] | list[int] = (),
) -> bytes:
    """The value of a message record.

    The channel and message ids live in the key only, so the value can be
    encoded before the writer assigns them.
    """
    if reply_to is None and edited_at is None and deleted_by is None and not mentions:
        return _encode([sender_id, created_at, client_msg_id, text])
    fields = [sender_id, created_at, client_msg_id, reply_to, edited_at, deleted_by]
    return _encode([*fields, list(mentions), text], version=LIFECYCLE_VERSION)


def encode_stored(message: StoredMessage) -> bytes:
    """The record of `message` as it is (its reactions are a record of their own)."""
    return encode_message(
        sender_id=message.sender_id,
        created_at=message.created_at,
        client_msg_id=message.client_msg_id,
        text=message.text,
        reply_to=message.reply_to,
        edited_at=message.edited_at,
        deleted_by=message.deleted_by,
        mentions=message.mentions,
    )


def decode_message(data: bytes, *, channel_id: int, message_id: int) -> StoredMessage:
    """A message record read back, without reactions; its ids come from the key."""
    version = _check_version(data)
    if version == FORMAT_VERSION:
        sender_id, created_at, client_msg_id, text = _decode(data, (int, int, str, str))
        return StoredMessage(
            channel_id=channel_id,
            message_id=message_id,
            sender_id=sender_id,
            text=text,
            created_at=created_at,
            client_msg_id=client_msg_id,
        )
    fields = _decode(data, (int, int, str, _OptionalInt, _OptionalInt, _OptionalInt, list, str))
    sender_id, created_at, client_msg_id, reply_to, edited_at, deleted_by, mentions, text = fields
    if not all(type(user_id) is int for user_id in mentions):
        raise CodecError(f"malformed version {version} value: mentions are not ids")
    return StoredMessage(
        channel_id=channel_id,
        message_id=message_id,
        sender_id=sender_id,
        text=text,
        created_at=created_at,
        client_msg_id=client_msg_id,
        reply_to=reply_to,
        edited_at=edited_at,
        deleted=deleted_by is not None,
        deleted_by=deleted_by,
        mentions=mentions,
    )


def encode_reactions(reactions: list[Reaction]) -> bytes:
    """The value of a message's reactions record."""
    return _encode([[reaction.emoji, list(reaction.user_ids)] for reaction in reactions])


def decode_reactions(data: bytes) -> list[Reaction]:
    """A message's reactions read back, in their order."""
    fields = _decode(data, None)
    try:
        return [Reaction(emoji=emoji, user_ids=user_ids) for emoji, user_ids in fields]
    except (TypeError, ValueError) as exc:  # a pair that is not one, or pydantic's ValidationError
        raise CodecError(f"malformed reactions value: {exc}") from None


def decode_message_preview(data: bytes, *, max_chars: int) -> MessageHead:
    """The start of a message record, the text cut by `cut_utf8`.

    Only the fields before the text and the first `head_bytes(max_chars)`
    bytes of the text are decoded: a preview of a 100,000-character message
    costs what one of 200 characters does. The text is the last field, so its
    msgpack header says where it starts and how long it is.
    """
    version = _check_version(data)
    stream = io.BytesIO(data)  # shares `data`'s buffer: nothing is copied
    stream.seek(1)
    unpacker = msgpack.Unpacker(stream, raw=False, read_size=_FIELDS_READ_SIZE)
    try:
        count = unpacker.read_array_header()
        expected = _PLAIN_FIELDS if version == FORMAT_VERSION else _LIFECYCLE_FIELDS
        fields = [unpacker.unpack() for _ in range(min(count, expected - 1))]
    except (ValueError, msgpack.UnpackException) as exc:
        raise CodecError(f"malformed version {version} value: {exc}") from exc
    if count != expected:
        raise CodecError(f"malformed version {version} value: expected {expected} fields")
    _check_types(fields[:3], (int, int, str))
    sender_id, created_at, _client_msg_id = fields[:3]
    start, length = _str_header(data, 1 + unpacker.tell())
    if start + length != len(data):
        raise CodecError(f"malformed version {FORMAT_VERSION} value: the text does not end it")
    head = data[start : start + min(length, head_bytes(max_chars))]
    try:
        text, truncated = cut_utf8(head, whole=len(head) == length, max_chars=max_chars)
    except UnicodeDecodeError as exc:
        raise CodecError(f"malformed version {FORMAT_VERSION} value: {exc}") from exc
    edited = version == LIFECYCLE_VERSION and fields[4] is not None
    deleted = version == LIFECYCLE_VERSION and fields[5] is not None
    return MessageHead(sender_id, created_at, text, truncated, edited=edited, deleted=deleted)


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


def encode_pointer(channel_id: int, message_id: int, update: UpdateKind | None = None) -> bytes:
    """The value of an inbox entry: where its message is, and what changed for an update."""
    if update is None:
        return _encode([channel_id, message_id])
    return _encode([channel_id, message_id, _UPDATE_CODES[update]], version=LIFECYCLE_VERSION)


def decode_pointer(data: bytes) -> tuple[int, int]:
    """`(channel_id, message_id)` of an inbox entry of either kind."""
    channel_id, message_id, _ = decode_entry(data)
    return channel_id, message_id


def decode_entry(data: bytes) -> tuple[int, int, UpdateKind | None]:
    """`(channel_id, message_id, update)` of an inbox entry; `update` None for a message."""
    if _check_version(data) == FORMAT_VERSION:
        channel_id, message_id = _decode(data, (int, int))
        return channel_id, message_id, None
    channel_id, message_id, code = _decode(data, (int, int, int))
    update = _UPDATE_KINDS.get(code)
    if update is None:
        raise CodecError(f"malformed version {LIFECYCLE_VERSION} value: unknown update {code}")
    return channel_id, message_id, update


def encode_receipt(channel_id: int, message_id: int, seq: int) -> bytes:
    """The value of an idempotency record: the original message and the sender's seq."""
    return _encode([channel_id, message_id, seq])


def decode_receipt(data: bytes) -> tuple[int, int, int]:
    """`(channel_id, message_id, sender_seq)` of an idempotency record."""
    channel_id, message_id, seq = _decode(data, (int, int, int))
    return channel_id, message_id, seq


class _OptionalInt:
    """Marks a field that is an int or nil."""


def _encode(fields: list[Any], *, version: int = FORMAT_VERSION) -> bytes:
    # msgspec writes the very bytes of msgpack's packb(use_bin_type=True) (held to it
    # by tests/unit/test_message_codec.py), in a sixth of its time: packb builds a
    # Packer every call.
    return bytes((version,)) + msgspec.msgpack.encode(fields)


def _decode(data: bytes, types: tuple[type, ...] | None) -> list[Any]:
    """The fields of a value, checked against `types` (any list when None)."""
    version = _check_version(data)
    try:
        fields = msgpack.unpackb(data[1:], raw=False, use_list=True)
    except (ValueError, msgpack.UnpackException) as exc:
        raise CodecError(f"malformed version {version} value: {exc}") from exc
    if not isinstance(fields, list):
        raise CodecError(f"malformed version {version} value: expected a list of fields")
    if types is not None:
        _check_types(fields, types, version)
    return fields


def _check_version(data: bytes) -> int:
    if not data:
        raise CodecError("empty value: no format version byte")
    version = data[0]
    if version not in KNOWN_VERSIONS:
        raise UnknownFormatVersionError(
            f"value format version {version} is unknown to this build, which reads "
            f"versions {', '.join(map(str, KNOWN_VERSIONS))}; was it written by a newer chatapp?"
        )
    return version


def _check_types(fields: list[Any], types: tuple[type, ...], version: int = FORMAT_VERSION) -> None:
    # bool is an int subclass, and a bool where an id belongs means corruption.
    if len(fields) != len(types) or not all(
        _has_type(f, t) for f, t in zip(fields, types, strict=True)
    ):
        raise CodecError(f"malformed version {version} value: expected {len(types)} fields")


def _has_type(field: Any, expected: type) -> bool:
    if expected is _OptionalInt:
        return field is None or type(field) is int
    return type(field) is expected
