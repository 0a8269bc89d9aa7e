"""Collapse windows on PostgreSQL: every node may deliver any window that falls due.

The node that accepted a message opens or joins the windows of its offline
recipients' devices (one statement per message). Every node looks for due
windows a few times a second and claims a batch with `FOR UPDATE SKIP
LOCKED`, so that two nodes never take the same window. A claim is a lease:
the claiming node deletes the window once its notification is delivered or
given up; if the node dies first, the lease runs out and another node claims
the window and sends it again, under the same notification id.

With `pending_pushes`, a message's windows open in the statement that deletes
its `push_pending` row (`migrations/postgresql/015_*`), and only if that row
was still there: the node that accepted the message and a sweeper that took
the message over (`notify.pending`) may both get this far, and the message's
windows are opened once, by whichever statement deleted the row. So a
notification is sent twice only when a node dies after its provider accepted
it and before the window was deleted; the repeat carries the id the receiver
already has.

A window names its provider, and a node claims only windows of the
providers it has, so nodes may enable different ones: a node delivers what
it can and leaves the rest to the nodes that can (windows of a provider no
node has wait until one has it, for an hour at most: `STALE_WINDOW_MS`).

Times are the nodes' clocks in milliseconds (`Clock.now_ms`): nodes whose
clocks disagree by more than a window deliver early or late, never twice.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Final

import asyncpg
import structlog

from chatapp.clock import Clock
from chatapp.notify.windows import Opening, PushWindowsError, Window
from chatapp.storage.postgres import raises

_log = structlog.get_logger(__name__)

CLAIM_BATCH: Final = 256
"""Windows claimed per look; the rest wait for the next look a tick later."""
STALE_WINDOW_MS: Final = 3_600_000
"""A window nobody claimed this long after it fell due is dropped: it waits for a provider
that no node has (one turned off everywhere), and were the provider back, a notification an
hour late would only mislead. It also keeps such windows from piling up under every claim."""
EXPIRE_EVERY_MS: Final = 60_000
"""How often a node drops stale windows, in the look for due ones."""

_OPEN_COLUMNS = """
INSERT INTO push_windows (notification_id, user_id, device_id, channel_id, sender_id,
    message_id, seq, created_at, text, text_truncated, count, due_at, mentioned, provider)
SELECT replace(gen_random_uuid()::text, '-', ''),
    o.user_id, o.device_id, $1, $2, $3, o.seq, $4, $5, $6, 1, $7, o.mentioned, o.provider
FROM unnest($8::bigint[], $9::bigint[], $10::bigint[], $11::boolean[], $12::text[])
    AS o(user_id, device_id, seq, mentioned, provider)
"""

_JOIN_OPEN = """
ON CONFLICT (device_id, channel_id) WHERE claimed_by IS NULL DO UPDATE SET
    count = push_windows.count + 1,
    mentioned = push_windows.mentioned OR excluded.mentioned,
    sender_id = CASE WHEN excluded.seq > push_windows.seq
        THEN excluded.sender_id ELSE push_windows.sender_id END,
    message_id = CASE WHEN excluded.seq > push_windows.seq
        THEN excluded.message_id ELSE push_windows.message_id END,
    created_at = CASE WHEN excluded.seq > push_windows.seq
        THEN excluded.created_at ELSE push_windows.created_at END,
    text = CASE WHEN excluded.seq > push_windows.seq
        THEN excluded.text ELSE push_windows.text END,
    text_truncated = CASE WHEN excluded.seq > push_windows.seq
        THEN excluded.text_truncated ELSE push_windows.text_truncated END,
    seq = GREATEST(excluded.seq, push_windows.seq),
    provider = COALESCE(excluded.provider, push_windows.provider)
"""

_OPEN = _OPEN_COLUMNS + _JOIN_OPEN

# The row is deleted under its lock: of two statements for one message, the second waits for
# the first to commit, then finds no row and opens nothing.
_OPEN_IF_PENDING = (
    "WITH handled AS (DELETE FROM push_pending WHERE channel_id = $1 AND message_id = $3"
    " RETURNING 1)" + _OPEN_COLUMNS + "WHERE EXISTS (SELECT 1 FROM handled)" + _JOIN_OPEN
)

_CLAIM = """
UPDATE push_windows SET claimed_by = $1, lease_until = $2
WHERE notification_id IN (
    SELECT notification_id FROM push_windows
    WHERE due_at <= $3 AND (claimed_by IS NULL OR lease_until < $3)
        AND (provider IS NULL OR provider = ANY($5::text[]))
    ORDER BY due_at LIMIT $4
    FOR UPDATE SKIP LOCKED)
RETURNING notification_id, user_id, device_id, channel_id, sender_id, message_id, seq,
    created_at, text, text_truncated, count, due_at, mentioned, provider
"""


@raises(PushWindowsError)
class PostgresPushWindows:
    """`PushWindows` in the `push_windows` table (`migrations/postgresql/004_*`)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        clock: Clock,
        *,
        node_name: str,
        window_ms: int,
        lease_ms: int,
        providers: Collection[str] = (),
        pending_pushes: bool = False,
    ) -> None:
        """`lease_ms` must outlast a delivery with all its retries, or it may be sent twice.
        `providers`: this node's; it claims the windows of those only.

        With `pending_pushes`, a message's windows open only while its `push_pending` row
        is there, which the opening deletes."""
        self._pool = pool
        self._open = _OPEN_IF_PENDING if pending_pushes else _OPEN
        self._clock = clock
        self._node = node_name
        self._window_ms = window_ms
        self._lease_ms = lease_ms
        self._providers = sorted(providers)
        self._expired_at: int | None = None

    @property
    def shared(self) -> bool:
        return True

    def waiting(self) -> bool:
        return True

    async def add(self, openings: Sequence[Opening]) -> None:
        if not openings:
            return
        first = openings[0]
        text = first.text.encode("utf-8") if first.text is not None else None
        await self._pool.execute(
            self._open,
            first.channel_id,
            first.sender_id,
            first.message_id,
            first.created_at,
            text,
            first.text_truncated,
            self._clock.now_ms() + self._window_ms,
            [opening.user_id for opening in openings],
            [opening.device_id for opening in openings],
            [opening.seq for opening in openings],
            [opening.mentioned for opening in openings],
            [opening.provider for opening in openings],
        )

    async def take_due(self) -> list[Window]:
        now = self._clock.now_ms()
        if self._expired_at is None or now - self._expired_at >= EXPIRE_EVERY_MS:
            self._expired_at = now
            dropped = await self._pool.fetchval(
                "WITH gone AS (DELETE FROM push_windows WHERE claimed_by IS NULL"
                " AND due_at < $1 RETURNING 1) SELECT count(*) FROM gone",
                now - STALE_WINDOW_MS,
            )
            if dropped:
                _log.info("push_windows_expired", windows=dropped)
        rows = await self._pool.fetch(
            _CLAIM, self._node, now + self._lease_ms, now, CLAIM_BATCH, self._providers
        )
        rows = sorted(rows, key=lambda row: (row["due_at"], row["notification_id"]))
        return [_window(row) for row in rows]

    async def finished(self, window: Window) -> None:
        await self._pool.execute(
            "DELETE FROM push_windows WHERE notification_id = $1", window.notification_id
        )

    async def hand_over(self, window: Window, provider: str) -> None:
        # Still claimed, so the one open window per device and channel stays unique, but
        # with its lease run out: a node that has the provider claims it at its next look.
        await self._pool.execute(
            "UPDATE push_windows SET provider = $2, lease_until = 0 WHERE notification_id = $1",
            window.notification_id,
            provider,
        )

    async def forget_device(self, device_id: int) -> None:
        await self._pool.execute("DELETE FROM push_windows WHERE device_id = $1", device_id)


def _window(row: asyncpg.Record) -> Window:
    text = row["text"]
    return Window(
        notification_id=row["notification_id"],
        newest=Opening(
            user_id=row["user_id"],
            device_id=row["device_id"],
            channel_id=row["channel_id"],
            sender_id=row["sender_id"],
            message_id=row["message_id"],
            seq=row["seq"],
            created_at=row["created_at"],
            text=bytes(text).decode("utf-8") if text is not None else None,
            text_truncated=row["text_truncated"],
            mentioned=row["mentioned"],
            provider=row["provider"],
        ),
        count=row["count"],
        mentioned=row["mentioned"],
    )
