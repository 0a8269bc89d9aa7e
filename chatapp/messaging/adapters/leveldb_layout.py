"""The LevelDB key layout of the message store, and reading records by it.

Keys sort the way they are read: a one-letter table, then fixed-width
big-endian integers.

    b"m" channel_id message_id   -> the message, as it is now (edited, or deleted: text "")
    b"r" channel_id message_id   -> its reactions (absent when it has none)
    b"i" user_id seq             -> (channel_id, message_id[, update kind]): the text is
                                    stored once, and an update entry reads the message's present
    b"d" sender_id client_msg_id -> (channel_id, message_id, sender's seq)
    b"f" table owner_id          -> the lowest id a repair left free (absent unless repaired)
    b"e" channel_id              -> message_id: every message up to it expired and is deleted
                                    (retention's cursor, see `leveldb_retention`)

b"p" belongs to presence and is never touched here.

Every read verifies LevelDB's block checksums and the database is opened with
`paranoid_checks`, so a damaged file is an error, never a garbled answer
(`LevelDBMessageStore` gives the measured cost). A system that ran out of
something (open files, memory, disk space) is not damage: `out_of_resources`
tells the two apart, so that such a failure is retried, never reported.
"""

from __future__ import annotations

import errno
import os
import pathlib
import struct
from collections.abc import Callable, Sequence
from typing import Any, Final, TypeVar

import plyvel

from chatapp.messaging.adapters import codec
from chatapp.messaging.models import AcceptedMessage, Reaction, StoredMessage, UpdateKind
from chatapp.messaging.store import MessageStoreError

MESSAGE: Final = b"m"
REACTIONS: Final = b"r"
INBOX: Final = b"i"
DEDUP: Final = b"d"
FLOOR: Final = b"f"
RETENTION: Final = b"e"
ID_COUNT: Final = 2**64
U64: Final = struct.Struct(">Q")
# An owner's id and one of its entries' ids, as a key has them after its table's byte:
# `U64.pack(a) + U64.pack(b)` in one call, for the loops that make a key per member.
U64_PAIR: Final = struct.Struct(">QQ")
PREFIX_LEN: Final = 1 + U64.size
# Every 8-byte id sorts at or below this, so it closes any range inclusively.
RANGE_END: Final = b"\xff" * U64.size

MAX_OPEN_FILES: Final = 256
"""The most files LevelDB keeps open for the store: its table cache, and 10 for the rest.

The bound makes the server's open-file reserve true (`chatapp.bootstrap.open_files`).
LevelDB's default is 1,000. A table cache smaller than the store's tables
makes a point read reopen a table: measured on the 2-core dev box, on a store
of 234 tables (1 GB), a random point read took 40-58 µs with 256 against
23-26 µs with 1,000, and 130-220 µs with LevelDB's floor of 74; a 50-message
range read 150-180 µs against 110-230 µs. 256 keeps about 500 MB of tables
mapped at once, the recent end of every range that sends and replays read.
"""

_SHORTAGES: Final = tuple(
    os.strerror(number) for number in (errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOSPC)
)

T = TypeVar("T")


class DamagedStore(MessageStoreError):
    """A record or a file of the store is damaged: a checksum failed or a record is missing."""


class StoreInUse(MessageStoreError):
    """Another process holds the database's lock: a server runs on this folder."""


class OutOfResources(MessageStoreError):
    """The system ran out of open files, memory or disk space; the store itself is whole.

    The same call succeeds once some are freed, so it is retried, never reported as damage.
    """


def out_of_resources(exc: BaseException) -> bool:
    """Whether `exc` says the process or the system ran out of something, not the store.

    LevelDB names the cause with the C library's own text for the error
    number ("Too many open files" for EMFILE), as `os.strerror` does.
    """
    if isinstance(exc, OutOfResources):
        return True
    if isinstance(exc, plyvel.IOError):  # an OSError too, but without an errno
        reason = error_text(exc)
        return any(shortage in reason for shortage in _SHORTAGES)
    if isinstance(exc, OSError):
        return exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOSPC)
    return False


BLOOM_FILTER_BITS: Final = 10
"""Bits a key in each table's filter (about 1% false positives). Every new send looks
up an idempotency key that is not there; without filters the lookup searches a block
of every level, with them it is answered from memory. On 3,000,000 keys that was 4.3
against 3.3 µs warm, 17 against 3.2 µs cold; the filters add 2.5% to the files. Tables
written before this setting get filters as compaction rewrites them."""


def open_db(path: pathlib.Path) -> Any:
    """Open the database in `path`; a new one only where the folder is missing or empty.

    LevelDB told to create a missing database treats a folder that lost its
    `CURRENT` file as new, and would then delete the tables it no longer
    names; so an existing folder must already be a database. Raises
    `StoreInUse`, `OutOfResources` or `DamagedStore`.
    """
    try:
        fresh = not path.exists() or not any(path.iterdir())
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if out_of_resources(exc):
            raise OutOfResources(f"{path} cannot be opened now: {exc.strerror}") from None
        raise
    try:
        return plyvel.DB(
            str(path),
            create_if_missing=fresh,
            paranoid_checks=True,
            max_open_files=MAX_OPEN_FILES,
            bloom_filter_bits=BLOOM_FILTER_BITS,
        )
    except plyvel.Error as exc:
        reason = error_text(exc)
        if out_of_resources(exc):
            raise OutOfResources(f"{path} cannot be opened now: {reason}") from None
        if isinstance(exc, plyvel.IOError) and "lock" in reason:
            raise StoreInUse(f"{path} is in use by another process ({reason})") from None
        if not (path / "CURRENT").exists():
            reason = "its CURRENT file is missing"
        raise DamagedStore(f"{path} cannot be opened: {reason}") from None


def error_text(exc: BaseException) -> str:
    """plyvel's message, which it gives as bytes."""
    if exc.args and isinstance(exc.args[0], bytes):
        return exc.args[0].decode(errors="replace")
    return str(exc)


def check_id(name: str, value: int) -> None:
    if not 0 <= value < ID_COUNT:
        raise ValueError(f"{name} must be between 0 and 2**64 - 1, got {value}")


def pack_id(name: str, value: int) -> bytes:
    check_id(name, value)
    return U64.pack(value)


def members_with_sender(sender_id: int, member_ids: Sequence[int]) -> tuple[int, ...]:
    check_id("sender_id", sender_id)
    members = tuple(dict.fromkeys((*member_ids, sender_id)))
    # Two passes in C over a hundred members; the loop only to name the bad one.
    if not (min(members) >= 0 and max(members) < ID_COUNT):
        for user_id in member_ids:
            check_id("member_ids", user_id)
    return members


def dedup_key(sender_id: int, client_msg_id: str) -> bytes:
    if not client_msg_id or not client_msg_id.isascii():
        raise ValueError(f"client_msg_id must be non-empty ASCII, got {client_msg_id!r}")
    return DEDUP + U64.pack(sender_id) + client_msg_id.encode("ascii")


def id_at_end(key: bytes) -> int:
    (value,) = U64.unpack_from(key, PREFIX_LEN)
    return int(value)


def last_id(db: Any, prefix: bytes) -> int:
    """The id in the last key of a range: the counter survives without its own record."""
    with db.iterator(
        prefix=prefix, reverse=True, include_value=False, verify_checksums=True
    ) as keys:
        for key in keys:
            return id_at_end(key)
    return 0


def floor_key(table: bytes, owner_id: int) -> bytes:
    return FLOOR + table + U64.pack(owner_id)


def counter_at(db: Any, table: bytes, owner_id: int) -> int:
    """The last id of an owner's range: its last key, or above it the floor a repair left.

    A repair that finds records lost leaves a floor above every id they could
    have had, so that no id a client has seen is handed out again.
    """
    last = last_id(db, table + U64.pack(owner_id))
    floor: bytes | None = db.get(floor_key(table, owner_id), verify_checksums=True)
    if floor is None:
        return last
    return max(last, int(U64.unpack(floor)[0]))


def find_original(reader: Any, sender_id: int, client_msg_id: str) -> AcceptedMessage | None:
    receipt = read_receipt(reader, sender_id, client_msg_id)
    if receipt is None:
        return None
    return read_original(reader, sender_id, client_msg_id, receipt)


def read_receipt(reader: Any, sender_id: int, client_msg_id: str) -> tuple[int, int, int] | None:
    """`(channel_id, message_id, sender's seq)` of a stored send; None if never stored."""
    receipt: bytes | None = reader.get(dedup_key(sender_id, client_msg_id), verify_checksums=True)
    return None if receipt is None else decoded(codec.decode_receipt, receipt)


def read_original(
    reader: Any, sender_id: int, client_msg_id: str, receipt: tuple[int, int, int]
) -> AcceptedMessage:
    """The stored send that `receipt` records, as a duplicate."""
    channel_id, message_id, seq = receipt
    message = read_message(reader, channel_id, message_id)
    if message is None:
        raise DamagedStore(
            f"idempotency record of ({sender_id}, {client_msg_id!r}) "
            f"points at missing message ({channel_id}, {message_id})"
        )
    return AcceptedMessage(message=message, seq=seq, inbox_seqs={sender_id: seq}, duplicate=True)


def message_key(channel_id: int, message_id: int) -> bytes:
    return MESSAGE + pack_id("channel_id", channel_id) + pack_id("message_id", message_id)


def reactions_key(channel_id: int, message_id: int) -> bytes:
    return REACTIONS + pack_id("channel_id", channel_id) + pack_id("message_id", message_id)


def read_message(reader: Any, channel_id: int, message_id: int) -> StoredMessage | None:
    """The message as it is now, its reactions included; None when there is none."""
    value: bytes | None = reader.get(message_key(channel_id, message_id), verify_checksums=True)
    if value is None:
        return None
    message = decode_message(value, channel_id=channel_id, message_id=message_id)
    return with_reactions(message, read_reactions(reader, channel_id, message_id))


def read_reactions(reader: Any, channel_id: int, message_id: int) -> list[Reaction]:
    value: bytes | None = reader.get(reactions_key(channel_id, message_id), verify_checksums=True)
    return [] if value is None else decoded(codec.decode_reactions, value)


def with_reactions(message: StoredMessage, reactions: list[Reaction]) -> StoredMessage:
    if not reactions:
        return message
    return message.model_copy(update={"reactions": reactions})


def read_pointed(
    reader: Any, inbox_key: bytes, pointer: bytes
) -> tuple[StoredMessage, UpdateKind | None]:
    """The message an inbox entry points at, as it is now, and the entry's update kind."""
    channel_id, message_id, update = decoded(codec.decode_entry, pointer)
    message = read_message(reader, channel_id, message_id)
    if message is None:
        raise DamagedStore(
            f"inbox entry {inbox_key.hex()} points at missing message ({channel_id}, {message_id})"
        )
    return message, update


def decode_message(value: bytes, *, channel_id: int, message_id: int) -> StoredMessage:
    """A message record read back; a value that does not decode is `DamagedStore`."""
    try:
        return codec.decode_message(value, channel_id=channel_id, message_id=message_id)
    except ValueError as exc:  # CodecError, or pydantic's ValidationError
        raise DamagedStore(f"message ({channel_id}, {message_id}) is unreadable: {exc}") from exc


def decoded(decode: Callable[[bytes], T], value: bytes) -> T:
    """`decode(value)`; a value that does not decode is `DamagedStore`."""
    try:
        return decode(value)
    except codec.CodecError as exc:
        raise DamagedStore(f"a stored record is unreadable: {exc}") from exc
