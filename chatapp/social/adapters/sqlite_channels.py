"""ChannelStore on SQLite."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Collection, Sequence
from typing import Any

import aiosqlite

from chatapp.social.models import (
    Channel,
    ChannelKind,
    ChannelLevels,
    Membership,
    MemberState,
    NotificationLevel,
)
from chatapp.social.store import ChannelStoreError
from chatapp.storage.sqlite import raises


@raises(ChannelStoreError)
class SqliteChannelStore:
    """Channels and members in SQLite.

    Writes hold a lock: on a shared connection, a statement issued while a
    transaction is open joins it, and would be rolled back with it. The stores
    that share the connection (friendships, blocks) are given the same lock.
    """

    def __init__(
        self, connection: aiosqlite.Connection, *, write_lock: asyncio.Lock | None = None
    ) -> None:
        self._db = connection
        self._write_lock = write_lock or asyncio.Lock()

    async def create_channel(
        self,
        *,
        kind: ChannelKind,
        name: str,
        owner_id: int | None,
        member_ids: Sequence[int],
        created_at: int,
        direct_key: str | None = None,
    ) -> Channel | None:
        members = sorted(set(member_ids))
        async with self._write_lock:
            return await self._create_channel(kind, name, owner_id, members, created_at, direct_key)

    async def _create_channel(
        self,
        kind: ChannelKind,
        name: str,
        owner_id: int | None,
        members: list[int],
        created_at: int,
        direct_key: str | None,
    ) -> Channel | None:
        await self._db.execute("BEGIN IMMEDIATE")
        try:
            cursor = await self._db.execute(
                "INSERT INTO channels (kind, name, owner_id, direct_key, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (kind, name, owner_id, direct_key, created_at),
            )
            channel_id = cursor.lastrowid
            assert channel_id is not None
            await self._db.executemany(
                "INSERT INTO channel_members (channel_id, user_id, joined_at) VALUES (?, ?, ?)",
                [(channel_id, user_id, created_at) for user_id in members],
            )
        except sqlite3.IntegrityError:
            await self._db.execute("ROLLBACK")
            return None
        except BaseException:
            await self._db.execute("ROLLBACK")
            raise
        await self._db.execute("COMMIT")
        return Channel(
            channel_id=channel_id,
            kind=kind,
            name=name,
            owner_id=owner_id,
            members=tuple(members),
            created_at=created_at,
        )

    async def direct_channel(self, direct_key: str) -> Channel | None:
        row = await self._one("SELECT channel_id FROM channels WHERE direct_key = ?", (direct_key,))
        return await self.get_channel(row["channel_id"]) if row else None

    async def get_channel(self, channel_id: int) -> Channel | None:
        row = await self._one(
            "SELECT channel_id, kind, name, owner_id, created_at FROM channels"
            " WHERE channel_id = ?",
            (channel_id,),
        )
        if row is None:
            return None
        rows = await self._db.execute_fetchall(
            "SELECT user_id FROM channel_members WHERE channel_id = ? ORDER BY user_id",
            (channel_id,),
        )
        members = tuple([member["user_id"] for member in rows])
        return _channel(row, members)

    async def rename(self, channel_id: int, name: str) -> None:
        async with self._write_lock:
            await self._db.execute(
                "UPDATE channels SET name = ? WHERE channel_id = ?", (name, channel_id)
            )

    async def add_member(self, channel_id: int, user_id: int, *, joined_at: int) -> bool:
        async with self._write_lock:
            cursor = await self._db.execute(
                "INSERT OR IGNORE INTO channel_members (channel_id, user_id, joined_at)"
                " VALUES (?, ?, ?)",
                (channel_id, user_id, joined_at),
            )
        return cursor.rowcount == 1

    async def remove_member(self, channel_id: int, user_id: int) -> bool:
        async with self._write_lock:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                cursor = await self._db.execute(
                    "DELETE FROM channel_members WHERE channel_id = ? AND user_id = ?",
                    (channel_id, user_id),
                )
                removed = cursor.rowcount == 1
                if removed:
                    await self._db.execute(
                        "UPDATE channels SET owner_id = (SELECT min(user_id) FROM channel_members"
                        " WHERE channel_id = ?) WHERE channel_id = ? AND owner_id = ?",
                        (channel_id, channel_id, user_id),
                    )
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise
            await self._db.execute("COMMIT")
        return removed

    async def memberships(self, user_id: int) -> list[Membership]:
        rows = await self._db.execute_fetchall(
            "SELECT c.channel_id, c.kind, c.name, c.owner_id, c.created_at, m.read_message_id,"
            " m.notification_level,"
            " (SELECT group_concat(user_id) FROM"
            "   (SELECT user_id FROM channel_members WHERE channel_id = c.channel_id"
            "    ORDER BY user_id)) AS member_list"
            " FROM channel_members m JOIN channels c ON c.channel_id = m.channel_id"
            " WHERE m.user_id = ?",
            (user_id,),
        )
        return [
            Membership(
                channel=_channel(row, tuple(map(int, row["member_list"].split(",")))),
                read_message_id=row["read_message_id"],
                notification_level=row["notification_level"],
            )
            for row in rows
        ]

    async def member_state(self, channel_id: int, user_id: int) -> MemberState | None:
        row = await self._one(
            "SELECT read_message_id, notification_level FROM channel_members"
            " WHERE channel_id = ? AND user_id = ?",
            (channel_id, user_id),
        )
        if row is None:
            return None
        return MemberState(
            read_message_id=row["read_message_id"], notification_level=row["notification_level"]
        )

    async def set_notification_level(
        self, channel_id: int, user_id: int, level: NotificationLevel
    ) -> bool:
        async with self._write_lock:
            cursor = await self._db.execute(
                "UPDATE channel_members SET notification_level = ?"
                " WHERE channel_id = ? AND user_id = ?",
                (level, channel_id, user_id),
            )
        return cursor.rowcount == 1

    async def channel_levels(
        self, channel_id: int, user_ids: Collection[int]
    ) -> ChannelLevels | None:
        row = await self._one("SELECT kind FROM channels WHERE channel_id = ?", (channel_id,))
        if row is None:
            return None
        wanted = sorted(set(user_ids))
        levels: dict[int, NotificationLevel] = {}
        if wanted:
            marks = ",".join("?" * len(wanted))
            rows = await self._db.execute_fetchall(
                "SELECT user_id, notification_level FROM channel_members"
                f" WHERE channel_id = ? AND user_id IN ({marks})",
                (channel_id, *wanted),
            )
            levels = {member["user_id"]: member["notification_level"] for member in rows}
        return ChannelLevels(kind=row["kind"], levels=levels)

    async def read_marker(self, channel_id: int, user_id: int) -> int | None:
        row = await self._one(
            "SELECT read_message_id FROM channel_members WHERE channel_id = ? AND user_id = ?",
            (channel_id, user_id),
        )
        return row["read_message_id"] if row else None

    async def read_markers(self, channel_id: int) -> dict[int, int]:
        rows = await self._db.execute_fetchall(
            "SELECT user_id, read_message_id FROM channel_members WHERE channel_id = ?",
            (channel_id,),
        )
        return {row["user_id"]: row["read_message_id"] for row in rows}

    async def advance_read_markers(self, marks: Sequence[tuple[int, int, int]]) -> None:
        async with self._write_lock:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                await self._db.executemany(
                    "UPDATE channel_members SET read_message_id = ?3"
                    " WHERE channel_id = ?1 AND user_id = ?2 AND read_message_id < ?3",
                    marks,
                )
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise
            await self._db.execute("COMMIT")

    async def advance_read_marker(
        self, channel_id: int, user_id: int, message_id: int
    ) -> int | None:
        async with self._write_lock:
            await self._db.execute(
                "UPDATE channel_members SET read_message_id = ?"
                " WHERE channel_id = ? AND user_id = ? AND read_message_id < ?",
                (message_id, channel_id, user_id, message_id),
            )
        return await self.read_marker(channel_id, user_id)

    async def _one(self, sql: str, params: tuple[Any, ...]) -> Any:
        rows = await self._db.execute_fetchall(sql, params)
        return next(iter(rows), None)


def _channel(row: Any, members: tuple[int, ...]) -> Channel:
    return Channel(
        channel_id=row["channel_id"],
        kind=row["kind"],
        name=row["name"],
        owner_id=row["owner_id"],
        members=members,
        created_at=row["created_at"],
    )
