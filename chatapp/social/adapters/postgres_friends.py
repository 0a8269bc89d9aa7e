"""Friendships on PostgreSQL: one row per pair, pending or accepted."""

from __future__ import annotations

from typing import Any

import asyncpg

from chatapp.social.friend_store import Friendship
from chatapp.social.store import ChannelStoreError
from chatapp.storage.postgres import raises

_COLUMNS = "user_low, user_high, requested_by, status"


@raises(ChannelStoreError)
class PostgresFriendStore:
    """The `friendships` table; a user paired with themself fails its CHECK."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def get(self, user_a: int, user_b: int) -> Friendship | None:
        low, high = sorted((user_a, user_b))
        row = await self._pool.fetchrow(
            f"SELECT {_COLUMNS} FROM friendships WHERE user_low = $1 AND user_high = $2",
            low,
            high,
        )
        return _friendship(row) if row else None

    async def request(self, requester: int, other: int, *, at: int) -> Friendship:
        low, high = sorted((requester, other))
        # One statement: when both sides ask at once, the second waits on the
        # first's row and then accepts it, so neither stays pending. The
        # conflict branch always updates (to the same values when nothing
        # changes) so that RETURNING gives the pair's state as this call left it.
        row = await self._pool.fetchrow(
            "INSERT INTO friendships AS f (user_low, user_high, requested_by, status, created_at)"
            " VALUES ($1, $2, $3, 'pending', $4)"
            " ON CONFLICT (user_low, user_high) DO UPDATE SET"
            "   status = CASE WHEN f.status = 'pending' AND f.requested_by <> $3"
            "            THEN 'accepted' ELSE f.status END,"
            "   accepted_at = CASE WHEN f.status = 'pending' AND f.requested_by <> $3"
            "                 THEN $4 ELSE f.accepted_at END"
            f" RETURNING {_COLUMNS}",
            low,
            high,
            requester,
            at,
        )
        return _friendship(row)

    async def remove(self, user_a: int, user_b: int) -> bool:
        low, high = sorted((user_a, user_b))
        removed = await self._pool.fetchval(
            "DELETE FROM friendships WHERE user_low = $1 AND user_high = $2 RETURNING true",
            low,
            high,
        )
        return removed is not None

    async def of_user(self, user_id: int) -> list[Friendship]:
        rows = await self._pool.fetch(
            f"SELECT {_COLUMNS} FROM friendships WHERE user_low = $1 OR user_high = $1"
            " ORDER BY created_at, user_low, user_high",
            user_id,
        )
        return [_friendship(row) for row in rows]


def _friendship(row: Any) -> Friendship:
    return Friendship(
        user_low=row["user_low"],
        user_high=row["user_high"],
        requested_by=row["requested_by"],
        status=row["status"],
    )
