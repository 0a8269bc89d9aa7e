"""Blocks on PostgreSQL: one row per user and user they block."""

from __future__ import annotations

from collections.abc import Collection

import asyncpg

from chatapp.social.store import ChannelStoreError
from chatapp.storage.postgres import raises


@raises(ChannelStoreError)
class PostgresBlockStore:
    """The `blocks` table; a user blocking themself fails its CHECK."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def block(self, blocker_id: int, blocked_id: int, *, at: int) -> bool:
        # Of two nodes blocking the same pair at once, the primary key lets one insert.
        added = await self._pool.fetchval(
            "INSERT INTO blocks (blocker_id, blocked_id, created_at) VALUES ($1, $2, $3)"
            " ON CONFLICT (blocker_id, blocked_id) DO NOTHING RETURNING true",
            blocker_id,
            blocked_id,
            at,
        )
        return added is not None

    async def unblock(self, blocker_id: int, blocked_id: int) -> bool:
        removed = await self._pool.fetchval(
            "DELETE FROM blocks WHERE blocker_id = $1 AND blocked_id = $2 RETURNING true",
            blocker_id,
            blocked_id,
        )
        return removed is not None

    async def blocked_by(self, blocker_id: int) -> list[int]:
        rows = await self._pool.fetch(
            "SELECT blocked_id FROM blocks WHERE blocker_id = $1 ORDER BY blocked_id", blocker_id
        )
        return [row["blocked_id"] for row in rows]

    async def blockers_among(self, blocked_id: int, user_ids: Collection[int]) -> set[int]:
        wanted = sorted(set(user_ids))
        if not wanted:
            return set()
        rows = await self._pool.fetch(
            "SELECT blocker_id FROM blocks"
            " WHERE blocked_id = $1 AND blocker_id = ANY($2::bigint[])",
            blocked_id,
            wanted,
        )
        return {row["blocker_id"] for row in rows}

    async def between(self, user_a: int, user_b: int) -> bool:
        found: bool = await self._pool.fetchval(
            "SELECT EXISTS (SELECT 1 FROM blocks WHERE (blocker_id = $1 AND blocked_id = $2)"
            " OR (blocker_id = $2 AND blocked_id = $1))",
            user_a,
            user_b,
        )
        return found

    async def blocked_pairs(self, pairs: Collection[tuple[int, int]]) -> set[tuple[int, int]]:
        """See `block_batch.PairLookup`: one query for them all."""
        if not pairs:
            return set()
        rows = await self._pool.fetch(
            "SELECT k.a, k.b FROM unnest($1::bigint[], $2::bigint[]) AS k(a, b)"
            " WHERE EXISTS (SELECT 1 FROM blocks WHERE (blocker_id = k.a AND blocked_id = k.b)"
            " OR (blocker_id = k.b AND blocked_id = k.a))",
            [a for a, _ in pairs],
            [b for _, b in pairs],
        )
        return {(row["a"], row["b"]) for row in rows}
