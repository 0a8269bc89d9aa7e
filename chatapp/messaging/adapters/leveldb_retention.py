"""Retention's cursors in the message store's own LevelDB: `b"e" channel_id -> message_id`.

Kept beside the messages, not in SQLite, so that whatever holds the
deletions holds the cursor that counts them: a cursor is written only after
its deletions' batch is on disk, and LevelDB keeps writes in order (a crash
loses a suffix of its log; a snapshot holds a prefix of it), so neither a
crash nor a backup's snapshot can keep a cursor without its deletions. The
write is not fsync'ed for the same reason: losing it only makes the next
sweep read those deleted messages again.

Channels are found by a skip scan over the message table: one seek per
channel, however many messages it has.
"""

from __future__ import annotations

import functools
from typing import Any, Final

from chatapp.messaging.adapters.leveldb_layout import (
    ID_COUNT,
    MESSAGE,
    RETENTION,
    U64,
    last_id,
    pack_id,
)
from chatapp.messaging.adapters.leveldb_store import LevelDBMessageStore
from chatapp.messaging.retention import ChannelCursor

_TABLE_END: Final = bytes([MESSAGE[0] + 1])


def cursor_key(channel_id: int) -> bytes:
    return RETENTION + pack_id("channel_id", channel_id)


class LevelDBRetentionLedger:
    """`RetentionLedger` on a running `LevelDBMessageStore`, its reads on the store's threads."""

    def __init__(self, store: LevelDBMessageStore) -> None:
        self._store = store

    async def channels(self, *, after: int, limit: int) -> list[ChannelCursor]:
        """See `RetentionLedger.channels`."""
        return await self._store.run_off_loop(
            functools.partial(channel_cursors, after=after, limit=limit)
        )

    async def advance(self, channel_id: int, message_id: int) -> None:
        """See `RetentionLedger.advance`."""
        key, value = cursor_key(channel_id), pack_id("message_id", message_id)
        await self._store.run_off_loop(lambda db: db.put(key, value, sync=False))


def channel_cursors(db: Any, *, after: int, limit: int) -> list[ChannelCursor]:
    """Channels with messages above `after`, ascending, with their cursors."""
    found: list[ChannelCursor] = []
    if limit <= 0 or after + 1 >= ID_COUNT:
        return found
    with db.iterator(stop=_TABLE_END, include_value=False, verify_checksums=True) as keys:
        keys.seek(MESSAGE + U64.pack(after + 1))
        for key in keys:
            channel_id = int(U64.unpack_from(key, len(MESSAGE))[0])
            found.append(
                ChannelCursor(
                    channel_id=channel_id,
                    expired_through=_cursor(db, channel_id),
                    last_message_id=last_id(db, MESSAGE + U64.pack(channel_id)),
                )
            )
            if len(found) == limit or channel_id + 1 >= ID_COUNT:
                break
            keys.seek(MESSAGE + U64.pack(channel_id + 1))
    return found


def _cursor(db: Any, channel_id: int) -> int:
    value: bytes | None = db.get(cursor_key(channel_id), verify_checksums=True)
    if value is None or len(value) != U64.size:
        return 0  # none yet (or unreadable): walking from the start again is always safe
    return int(U64.unpack(value)[0])
