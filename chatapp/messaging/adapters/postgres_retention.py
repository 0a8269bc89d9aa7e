"""Retention in cluster mode: cursors in `retention_cursors`, one sweeping node at a time.

The turn is a session-level advisory lock, taken with `pg_try_advisory_lock`
for one sweep on a connection of its own: the node that gets it sweeps, the
others skip that round. A node that dies mid-sweep loses its session, and
with it the lock, so another node sweeps next. The lock's second key is the
schema, as for migrations, so deployments in other schemas of one database
do not wait on each other.

Channels are listed from `channel_counters`, which has a row for every
channel that ever had a message.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Final

import asyncpg
import structlog

from chatapp.messaging.retention import ChannelCursor
from chatapp.messaging.store import MessageStoreError

_KEYS: Final = "hashtext('chatapp.retention'), hashtext(coalesce(current_schema(), ''))"
_ERRORS: Final = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)

_log = structlog.get_logger(__name__)


class PostgresRetention:
    """`RetentionLedger` and `RetentionTurn` on the cluster's database."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def channels(self, *, after: int, limit: int) -> list[ChannelCursor]:
        """See `RetentionLedger.channels`."""
        try:
            rows = await self._pool.fetch(
                "SELECT c.channel_id, c.last_message_id, coalesce(r.message_id, 0) AS through"
                " FROM channel_counters c"
                " LEFT JOIN retention_cursors r ON r.channel_id = c.channel_id"
                " WHERE c.channel_id > $1 ORDER BY c.channel_id LIMIT $2",
                after,
                limit,
            )
        except _ERRORS as error:
            raise MessageStoreError(f"retention's cursors could not be read: {error}") from error
        return [
            ChannelCursor(
                channel_id=int(row["channel_id"]),
                expired_through=int(row["through"]),
                last_message_id=int(row["last_message_id"]),
            )
            for row in rows
        ]

    async def advance(self, channel_id: int, message_id: int) -> None:
        """See `RetentionLedger.advance`."""
        try:
            await self._pool.execute(
                "INSERT INTO retention_cursors (channel_id, message_id) VALUES ($1, $2)"
                " ON CONFLICT (channel_id) DO UPDATE"
                " SET message_id = greatest(retention_cursors.message_id, EXCLUDED.message_id)",
                channel_id,
                message_id,
            )
        except _ERRORS as error:
            raise MessageStoreError(f"retention's cursor could not be written: {error}") from error

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[bool]:
        """See `RetentionTurn.hold`: the advisory lock, for one sweep."""
        try:
            connection = await self._pool.acquire()
        except _ERRORS as error:
            raise MessageStoreError(f"retention's turn could not be taken: {error}") from error
        try:
            try:
                mine = bool(await connection.fetchval(f"SELECT pg_try_advisory_lock({_KEYS})"))
            except _ERRORS as error:
                raise MessageStoreError(f"retention's turn could not be taken: {error}") from error
            try:
                yield mine
            finally:
                if mine:
                    await _unlock(connection)
        finally:
            await self._pool.release(connection)


async def _unlock(connection: asyncpg.Connection) -> None:
    unlocked = False
    try:
        await connection.execute(f"SELECT pg_advisory_unlock({_KEYS})")
        unlocked = True
    except _ERRORS as error:
        _log.warning("retention_turn_not_released", error=str(error))
    finally:
        if not unlocked:
            # The pool does not reset sessions (`chatapp.storage.postgres`): ending
            # this one is what releases the lock, cancelled or failed alike.
            connection.terminate()
