"""Presence's store on PostgreSQL, for cluster mode: last_active_at outlives every node."""

from __future__ import annotations

import asyncpg

from chatapp.presence.events import Status
from chatapp.presence.store import PresenceStoreError
from chatapp.storage.postgres import raises


@raises(PresenceStoreError)
class PostgresPresenceStore:
    """The `presence` table (migrations/postgresql/003). The pool is the composition root's."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def load(self, user_id: int) -> tuple[Status, int] | None:
        row = await self._pool.fetchrow(
            "SELECT status, last_active_at FROM presence WHERE user_id = $1", user_id
        )
        if row is None:
            return None
        status: Status = "online" if row["status"] == "online" else "offline"
        return status, int(row["last_active_at"])

    async def save(self, user_id: int, status: Status, last_active_at: int) -> None:
        # Never back in time: two nodes may save one user's change in either order.
        await self._pool.execute(
            "INSERT INTO presence (user_id, status, last_active_at) VALUES ($1, $2, $3)"
            " ON CONFLICT (user_id) DO UPDATE SET status = EXCLUDED.status,"
            " last_active_at = EXCLUDED.last_active_at"
            " WHERE presence.last_active_at <= EXCLUDED.last_active_at",
            user_id,
            status,
            last_active_at,
        )

    async def close(self) -> None:
        return None
