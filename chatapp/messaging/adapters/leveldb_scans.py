"""Walking the whole message store in key order, a page at a time (for an export).

Each page is read from one snapshot; a walk over a store nothing writes to
(an export runs on a stopped folder) is therefore the store as it is.
"""

from __future__ import annotations

from itertools import islice
from typing import Any

from chatapp.messaging.adapters import codec
from chatapp.messaging.adapters.leveldb_layout import (
    DEDUP,
    INBOX,
    MESSAGE,
    U64,
    decode_message,
    decoded,
    id_at_end,
    pack_id,
    read_reactions,
    with_reactions,
)
from chatapp.messaging.models import InboxRecord, SendRecord, StoredMessage


def _page(db: Any, table: bytes, start: bytes | None, limit: int) -> list[tuple[bytes, bytes]]:
    if limit <= 0:
        return []
    with db.iterator(
        start=table if start is None else start,
        include_start=start is None,
        stop=bytes([table[0] + 1]),
        verify_checksums=True,
    ) as rows:
        return list(islice(rows, limit))


def _start(table: bytes, first: int, second: int) -> bytes:
    return table + pack_id("after", first) + pack_id("after", second)


def scan_messages(db: Any, *, after: tuple[int, int], limit: int) -> list[StoredMessage]:
    """See `MessageStore.scan_messages`."""
    found: list[StoredMessage] = []
    for key, value in _page(db, MESSAGE, _start(MESSAGE, *after), limit):
        channel_id, message_id = U64.unpack_from(key, 1)[0], id_at_end(key)
        message = decode_message(value, channel_id=channel_id, message_id=message_id)
        found.append(with_reactions(message, read_reactions(db, channel_id, message_id)))
    return found


def scan_inbox(db: Any, *, after: tuple[int, int], limit: int) -> list[InboxRecord]:
    """See `MessageStore.scan_inbox`."""
    found: list[InboxRecord] = []
    for key, value in _page(db, INBOX, _start(INBOX, *after), limit):
        channel_id, message_id, update = decoded(codec.decode_entry, value)
        found.append(
            InboxRecord(
                user_id=U64.unpack_from(key, 1)[0],
                seq=id_at_end(key),
                channel_id=channel_id,
                message_id=message_id,
                update=update,
            )
        )
    return found


def scan_sends(db: Any, *, after: tuple[int, str] | None, limit: int) -> list[SendRecord]:
    """See `MessageStore.scan_sends`."""
    start = None
    if after is not None:
        start = DEDUP + pack_id("after", after[0]) + after[1].encode("ascii")
    found: list[SendRecord] = []
    for key, value in _page(db, DEDUP, start, limit):
        channel_id, message_id, seq = decoded(codec.decode_receipt, value)
        found.append(
            SendRecord(
                sender_id=U64.unpack_from(key, 1)[0],
                client_msg_id=key[1 + U64.size :].decode("ascii"),
                channel_id=channel_id,
                message_id=message_id,
                seq=seq,
            )
        )
    return found
