"""Loading records into an empty message store, in batches (for an import).

The records keep their ids: the store's counters are its last keys
(`leveldb_layout.counter_at`), so once the records are in, the next send of
a channel or to an inbox continues right after them. The watermark is
written last, naming a loaded message and the count, marked closed cleanly,
so the next start's check passes as after any clean stop.
"""

from __future__ import annotations

import pathlib
from collections.abc import Sequence
from typing import Any

from chatapp.messaging.adapters import codec
from chatapp.messaging.adapters.leveldb_layout import (
    INBOX,
    dedup_key,
    message_key,
    open_db,
    pack_id,
    reactions_key,
)
from chatapp.messaging.adapters.leveldb_watermark import Watermark, write_watermark
from chatapp.messaging.models import InboxRecord, SendRecord, StoredMessage
from chatapp.messaging.store import MessageStoreError


class LevelDBLoader:
    """Writes messages, inbox entries and idempotency records into a new store folder."""

    def __init__(self, path: pathlib.Path) -> None:
        """Open (create) the store in `path`; refuses a folder that already has a store."""
        if path.exists() and any(path.iterdir()):
            raise MessageStoreError(f"{path} is not empty")
        self._path = path
        self._db: Any = open_db(path)
        self._messages = 0
        self._last: tuple[int, int] = (0, 0)

    def put_messages(self, messages: Sequence[StoredMessage]) -> None:
        with self._db.write_batch(sync=True) as batch:
            for message in messages:
                key = message_key(message.channel_id, message.message_id)
                batch.put(key, codec.encode_stored(message))
                if message.reactions:
                    batch.put(
                        reactions_key(message.channel_id, message.message_id),
                        codec.encode_reactions(message.reactions),
                    )
                self._last = max(self._last, (message.channel_id, message.message_id))
        self._messages += len(messages)

    def put_inbox(self, entries: Sequence[InboxRecord]) -> None:
        with self._db.write_batch(sync=True) as batch:
            for entry in entries:
                key = INBOX + pack_id("user_id", entry.user_id) + pack_id("seq", entry.seq)
                batch.put(
                    key, codec.encode_pointer(entry.channel_id, entry.message_id, entry.update)
                )

    def put_sends(self, sends: Sequence[SendRecord]) -> None:
        with self._db.write_batch(sync=True) as batch:
            for send in sends:
                batch.put(
                    dedup_key(send.sender_id, send.client_msg_id),
                    codec.encode_receipt(send.channel_id, send.message_id, send.seq),
                )

    def finish(self) -> None:
        """Close the database and write the watermark of what was loaded."""
        self.close()
        channel_id, message_id = self._last
        write_watermark(
            self._path,
            Watermark(channel_id, message_id, self._messages, closed_cleanly=True),
        )

    def close(self) -> None:
        """Close the database (again harmless); without `finish`, no watermark is written."""
        if not self._db.closed:
            self._db.close()
