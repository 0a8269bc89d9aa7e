"""Friendships on SQLite: one row per pair, pending or accepted."""

from __future__ import annotations

import asyncio

import aiosqlite

from chatapp.social.friend_store import Friendship
from chatapp.social.store import ChannelStoreError
from chatapp.storage.sqlite import raises


@raises(ChannelStoreError)
class SqliteFriendStore:
    def __init__(
        self, connection: aiosqlite.Connection, *, write_lock: asyncio.Lock | None = None
    ) -> None:
        self._db = connection
        # Shares social's connection: given the channel store's lock, its writes
        # never land inside a channel transaction (and leave with its rollback).
        self._write_lock = write_lock or asyncio.Lock()

    async def get(self, user_a: int, user_b: int) -> Friendship | None:
        low, high = sorted((user_a, user_b))
        rows = await self._db.execute_fetchall(
            "SELECT user_low, user_high, requested_by, status FROM friendships"
            " WHERE user_low = ? AND user_high = ?",
            (low, high),
        )
        row = next(iter(rows), None)
        return _friendship(row) if row else None

    async def request(self, requester: int, other: int, *, at: int) -> Friendship:
        low, high = sorted((requester, other))
        async with self._write_lock:
            # One statement, so two simultaneous requests from both sides
            # cannot both stay pending.
            await self._db.execute(
                "INSERT INTO friendships (user_low, user_high, requested_by, status, created_at)"
                " VALUES (?1, ?2, ?3, 'pending', ?4)"
                " ON CONFLICT (user_low, user_high) DO UPDATE SET"
                "   status = 'accepted', accepted_at = ?4"
                " WHERE status = 'pending' AND requested_by != ?3",
                (low, high, requester, at),
            )
        friendship = await self.get(low, high)
        assert friendship is not None
        return friendship

    async def remove(self, user_a: int, user_b: int) -> bool:
        low, high = sorted((user_a, user_b))
        async with self._write_lock:
            cursor = await self._db.execute(
                "DELETE FROM friendships WHERE user_low = ? AND user_high = ?", (low, high)
            )
        return cursor.rowcount == 1

    async def of_user(self, user_id: int) -> list[Friendship]:
        rows = await self._db.execute_fetchall(
            "SELECT user_low, user_high, requested_by, status FROM friendships"
            " WHERE user_low = ?1 OR user_high = ?1 ORDER BY created_at",
            (user_id,),
        )
        return [_friendship(row) for row in rows]


def _friendship(row: aiosqlite.Row) -> Friendship:
    return Friendship(
        user_low=row["user_low"],
        user_high=row["user_high"],
        requested_by=row["requested_by"],
        status=row["status"],
    )
