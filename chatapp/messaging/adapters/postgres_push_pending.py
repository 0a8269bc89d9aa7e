"""The messages whose push work is pending, on PostgreSQL (`migrations/postgresql/015_*`).

The message store writes a message's row in the message's transaction
(`postgres_batch`); this takes rows off and hands stale ones over, as the
`MessageAccepted` their node heard: the message as stored now, and the seq
of its entry in the inbox of each member who got it. That read is the slow
part, paid only for a message whose node died: the inbox is keyed by user,
so each member's entry is found walking their inbox back from the newest,
which stops after the few entries written since (members who joined after
the message are not asked).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import asyncpg

from chatapp.clock import Clock
from chatapp.messaging.adapters.postgres_rows import MESSAGE_FIELDS, REACTIONS, message_from_row
from chatapp.messaging.events import MessageAccepted
from chatapp.messaging.store import MessageStoreError
from chatapp.storage.postgres import raises

CLAIM_BATCH: Final = 64
"""Stale messages claimed per look; the rest wait for the next look."""

_CLAIM = """
UPDATE push_pending SET claimed_by = $1, lease_until = $2
WHERE (channel_id, message_id) IN (
    SELECT channel_id, message_id FROM push_pending
    WHERE created_at <= $3 AND (claimed_by IS NULL OR lease_until < $4)
    ORDER BY created_at LIMIT $5
    FOR UPDATE SKIP LOCKED)
RETURNING channel_id, message_id
"""

_MESSAGES = (
    f"SELECT {MESSAGE_FIELDS} FROM unnest($1::bigint[], $2::bigint[]) AS k(channel_id, message_id)"
    " JOIN messages AS m ON m.channel_id = k.channel_id AND m.message_id = k.message_id"
    f"{REACTIONS}"
)

_RECIPIENTS = """
SELECT cm.user_id, entry.seq FROM channel_members AS cm
CROSS JOIN LATERAL (
    SELECT i.seq FROM inbox AS i
    WHERE i.user_id = cm.user_id AND i.channel_id = $1 AND i.message_id = $2
        AND i.update_kind IS NULL
    ORDER BY i.seq DESC LIMIT 1) AS entry
WHERE cm.channel_id = $1 AND cm.joined_at <= $3
"""

_TAKE_OFF = """
DELETE FROM push_pending
WHERE (channel_id, message_id) IN (
    SELECT * FROM unnest($1::bigint[], $2::bigint[]))
"""


@raises(MessageStoreError)
class PostgresPendingPushes:
    """`notify.pending.PendingPushes` in the `push_pending` table."""

    def __init__(self, pool: asyncpg.Pool, clock: Clock, *, node_name: str, lease_ms: int) -> None:
        """A row is stale `lease_ms` after its message was accepted, and a claim lasts as
        long: both are how long a node may take over its messages' push work."""
        self._pool = pool
        self._clock = clock
        self._node = node_name
        self._lease_ms = lease_ms
        self._handled: list[tuple[int, int]] = []

    def handled(self, channel_id: int, message_id: int) -> None:
        self._handled.append((channel_id, message_id))

    async def flush_handled(self) -> None:
        if not self._handled:
            return
        keys, self._handled = self._handled, []
        try:
            await self._take_off(keys)
        except BaseException:
            self._handled[:0] = keys  # tried again with the next flush
            raise

    async def claim_stale(self) -> list[MessageAccepted]:
        now = self._clock.now_ms()
        claimed = await self._pool.fetch(
            _CLAIM, self._node, now + self._lease_ms, now - self._lease_ms, now, CLAIM_BATCH
        )
        if not claimed:
            return []
        rows = await self._pool.fetch(
            _MESSAGES, [row[0] for row in claimed], [row[1] for row in claimed]
        )
        messages = {(row["channel_id"], row["message_id"]): message_from_row(row) for row in rows}
        events: list[MessageAccepted] = []
        gone: list[tuple[int, int]] = []
        for channel_id, message_id in sorted((row[0], row[1]) for row in claimed):
            message = messages.get((channel_id, message_id))
            if message is None or message.deleted:
                gone.append((channel_id, message_id))  # nothing left to tell anyone
                continue
            recipients = await self._pool.fetch(
                _RECIPIENTS, channel_id, message_id, message.created_at
            )
            seqs = {row["user_id"]: row["seq"] for row in recipients}
            events.append(MessageAccepted(message=message, inbox_seqs=seqs))
        if gone:
            await self._take_off(gone)
        return events

    async def _take_off(self, keys: Sequence[tuple[int, int]]) -> None:
        await self._pool.execute(_TAKE_OFF, [key[0] for key in keys], [key[1] for key in keys])
