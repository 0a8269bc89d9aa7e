"""Blocks on SQLite: one row per user and user they block."""

from __future__ import annotations

import asyncio
from collections.abc import Collection

import aiosqlite

from chatapp.social.store import ChannelStoreError
from chatapp.storage.sqlite import raises


@raises(ChannelStoreError)
class SqliteBlockStore:
    """The `blocks` table; a user blocking themself fails its CHECK."""

    def __init__(
        self, connection: aiosqlite.Connection, *, write_lock: asyncio.Lock | None = None
    ) -> None:
        self._db = connection
        # Shares social's connection: given the channel store's lock, its writes
        # never land inside a channel transaction (and leave with its rollback).
        self._write_lock = write_lock or asyncio.Lock()

    async def block(self, blocker_id: int, blocked_id: int, *, at: int) -> bool:
        async with self._write_lock:
            cursor = await self._db.execute(
                # Only the key's conflict is ignored: blocking oneself still fails the CHECK.
                "INSERT INTO blocks (blocker_id, blocked_id, created_at) VALUES (?, ?, ?)"
                " ON CONFLICT (blocker_id, blocked_id) DO NOTHING",
                (blocker_id, blocked_id, at),
            )
        return cursor.rowcount == 1

    async def unblock(self, blocker_id: int, blocked_id: int) -> bool:
        async with self._write_lock:
            cursor = await self._db.execute(
                "DELETE FROM blocks WHERE blocker_id = ? AND blocked_id = ?",
                (blocker_id, blocked_id),
            )
        return cursor.rowcount == 1

    async def blocked_by(self, blocker_id: int) -> list[int]:
        rows = await self._db.execute_fetchall(
            "SELECT blocked_id FROM blocks WHERE blocker_id = ? ORDER BY blocked_id",
            (blocker_id,),
        )
        return [row["blocked_id"] for row in rows]

    async def blockers_among(self, blocked_id: int, user_ids: Collection[int]) -> set[int]:
        wanted = sorted(set(user_ids))
        if not wanted:
            return set()
        marks = ",".join("?" * len(wanted))
        rows = await self._db.execute_fetchall(
            f"SELECT blocker_id FROM blocks WHERE blocked_id = ? AND blocker_id IN ({marks})",
            (blocked_id, *wanted),
        )
        return {row["blocker_id"] for row in rows}

    async def between(self, user_a: int, user_b: int) -> bool:
        rows = await self._db.execute_fetchall(
            "SELECT EXISTS (SELECT 1 FROM blocks WHERE (blocker_id = ?1 AND blocked_id = ?2)"
            " OR (blocker_id = ?2 AND blocked_id = ?1)) AS found",
            (user_a, user_b),
        )
        row = next(iter(rows), None)
        return bool(row and row["found"])
