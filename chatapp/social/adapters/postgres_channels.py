"""ChannelStore on PostgreSQL, for many nodes writing at once."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import asyncpg

from chatapp.social.models import (
    Channel,
    ChannelKind,
    ChannelLevels,
    Membership,
    MemberState,
    NotificationLevel,
)
from chatapp.social.store import ChannelStoreError
from chatapp.storage.postgres import raises

# A channel with its members, read by one statement: one snapshot, so the
# members always belong to the channel row they come with.
_CHANNEL = (
    "SELECT c.channel_id, c.kind, c.name, c.owner_id, c.created_at,"
    " ARRAY(SELECT m.user_id FROM channel_members AS m"
    "       WHERE m.channel_id = c.channel_id ORDER BY m.user_id) AS members"
    " FROM channels AS c"
)


# One statement: the member goes and a group it owned passes on together. The subquery reads
# the members as they were before the DELETE, hence the member left out by hand.
_REMOVE_MEMBER = """
WITH gone AS (
    DELETE FROM channel_members WHERE channel_id = $1 AND user_id = $2 RETURNING user_id
), handed AS (
    UPDATE channels SET owner_id = (
        SELECT min(user_id) FROM channel_members WHERE channel_id = $1 AND user_id <> $2)
    WHERE channel_id = $1 AND owner_id = $2 AND EXISTS (SELECT 1 FROM gone)
)
SELECT EXISTS (SELECT 1 FROM gone)
"""


@raises(ChannelStoreError)
class PostgresChannelStore:
    """Channels, members and read markers in the `channels` and `channel_members` tables.

    Each write is one statement or one transaction; what another node may
    change meanwhile is settled by a constraint or by the row's lock, never
    by a read made before the write.
    """

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

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
        async with (
            self._pool.acquire() as connection,
            connection.transaction(isolation="read_committed"),
        ):
            # A racing create of the same pair waits on the unique index until
            # the first commits, then inserts nothing: it answers None.
            channel_id = await connection.fetchval(
                "INSERT INTO channels (kind, name, owner_id, direct_key, created_at)"
                " VALUES ($1, $2, $3, $4, $5)"
                " ON CONFLICT (direct_key) DO NOTHING RETURNING channel_id",
                kind,
                name,
                owner_id,
                direct_key,
                created_at,
            )
            if channel_id is None:
                return None
            await connection.execute(
                "INSERT INTO channel_members (channel_id, user_id, joined_at)"
                " SELECT $1, unnest($2::bigint[]), $3",
                channel_id,
                members,
                created_at,
            )
        return Channel(
            channel_id=channel_id,
            kind=kind,
            name=name,
            owner_id=owner_id,
            members=tuple(members),
            created_at=created_at,
        )

    async def direct_channel(self, direct_key: str) -> Channel | None:
        row = await self._pool.fetchrow(f"{_CHANNEL} WHERE c.direct_key = $1", direct_key)
        return _channel(row) if row else None

    async def get_channel(self, channel_id: int) -> Channel | None:
        row = await self._pool.fetchrow(f"{_CHANNEL} WHERE c.channel_id = $1", channel_id)
        return _channel(row) if row else None

    async def rename(self, channel_id: int, name: str) -> None:
        await self._pool.execute(
            "UPDATE channels SET name = $2 WHERE channel_id = $1", channel_id, name
        )

    async def add_member(self, channel_id: int, user_id: int, *, joined_at: int) -> bool:
        # A channel that does not exist fails the foreign key: ChannelStoreError.
        added = await self._pool.fetchval(
            "INSERT INTO channel_members (channel_id, user_id, joined_at) VALUES ($1, $2, $3)"
            " ON CONFLICT (channel_id, user_id) DO NOTHING RETURNING true",
            channel_id,
            user_id,
            joined_at,
        )
        return added is not None

    async def remove_member(self, channel_id: int, user_id: int) -> bool:
        removed = await self._pool.fetchval(_REMOVE_MEMBER, channel_id, user_id)
        return bool(removed)

    async def memberships(self, user_id: int) -> list[Membership]:
        rows = await self._pool.fetch(
            "SELECT c.channel_id, c.kind, c.name, c.owner_id, c.created_at, me.read_message_id,"
            " me.notification_level,"
            " ARRAY(SELECT m.user_id FROM channel_members AS m"
            "       WHERE m.channel_id = c.channel_id ORDER BY m.user_id) AS members"
            " FROM channel_members AS me JOIN channels AS c ON c.channel_id = me.channel_id"
            " WHERE me.user_id = $1 ORDER BY c.channel_id",
            user_id,
        )
        return [
            Membership(
                channel=_channel(row),
                read_message_id=row["read_message_id"],
                notification_level=row["notification_level"],
            )
            for row in rows
        ]

    async def member_state(self, channel_id: int, user_id: int) -> MemberState | None:
        row = await self._pool.fetchrow(
            "SELECT read_message_id, notification_level FROM channel_members"
            " WHERE channel_id = $1 AND user_id = $2",
            channel_id,
            user_id,
        )
        if row is None:
            return None
        return MemberState(
            read_message_id=row["read_message_id"], notification_level=row["notification_level"]
        )

    async def set_notification_level(
        self, channel_id: int, user_id: int, level: NotificationLevel
    ) -> bool:
        changed = await self._pool.fetchval(
            "UPDATE channel_members SET notification_level = $3"
            " WHERE channel_id = $1 AND user_id = $2 RETURNING true",
            channel_id,
            user_id,
            level,
        )
        return changed is not None

    async def channel_levels(
        self, channel_id: int, user_ids: Collection[int]
    ) -> ChannelLevels | None:
        # One statement: the kind and the levels from one snapshot.
        row = await self._pool.fetchrow(
            "SELECT c.kind, ARRAY(SELECT m.user_id FROM channel_members AS m"
            "   WHERE m.channel_id = c.channel_id AND m.user_id = ANY($2::bigint[])"
            "   ORDER BY m.user_id) AS user_ids,"
            " ARRAY(SELECT m.notification_level FROM channel_members AS m"
            "   WHERE m.channel_id = c.channel_id AND m.user_id = ANY($2::bigint[])"
            "   ORDER BY m.user_id) AS levels"
            " FROM channels AS c WHERE c.channel_id = $1",
            channel_id,
            sorted(set(user_ids)),
        )
        if row is None:
            return None
        return ChannelLevels(
            kind=row["kind"], levels=dict(zip(row["user_ids"], row["levels"], strict=True))
        )

    async def read_marker(self, channel_id: int, user_id: int) -> int | None:
        marker: int | None = await self._pool.fetchval(
            "SELECT read_message_id FROM channel_members WHERE channel_id = $1 AND user_id = $2",
            channel_id,
            user_id,
        )
        return marker

    async def read_markers(self, channel_id: int) -> dict[int, int]:
        rows = await self._pool.fetch(
            "SELECT user_id, read_message_id FROM channel_members WHERE channel_id = $1",
            channel_id,
        )
        return {row["user_id"]: row["read_message_id"] for row in rows}

    async def advance_read_markers(self, marks: Sequence[tuple[int, int, int]]) -> None:
        # One row per member, the furthest mark of the batch; rows taken in key
        # order, so two nodes' batches over the same members never deadlock.
        furthest: dict[tuple[int, int], int] = {}
        for channel_id, user_id, message_id in marks:
            key = (channel_id, user_id)
            furthest[key] = max(message_id, furthest.get(key, message_id))
        if not furthest:
            return
        async with (
            self._pool.acquire() as connection,
            connection.transaction(isolation="read_committed"),
        ):
            await connection.executemany(
                "UPDATE channel_members SET read_message_id = GREATEST(read_message_id, $3)"
                " WHERE channel_id = $1 AND user_id = $2 AND read_message_id < $3",
                [(*key, message_id) for key, message_id in sorted(furthest.items())],
            )

    async def advance_read_marker(
        self, channel_id: int, user_id: int, message_id: int
    ) -> int | None:
        # READ COMMITTED re-checks the condition on a row another node has just
        # moved, and GREATEST keeps the furthest mark: a marker never moves back.
        moved: int | None = await self._pool.fetchval(
            "UPDATE channel_members SET read_message_id = GREATEST(read_message_id, $3)"
            " WHERE channel_id = $1 AND user_id = $2 AND read_message_id < $3"
            " RETURNING read_message_id",
            channel_id,
            user_id,
            message_id,
        )
        if moved is not None:
            return moved
        # Not moved: already there or further (read now, after any mover
        # committed), or not a member.
        return await self.read_marker(channel_id, user_id)


def _channel(row: Any) -> Channel:
    return Channel(
        channel_id=row["channel_id"],
        kind=row["kind"],
        name=row["name"],
        owner_id=row["owner_id"],
        members=tuple(row["members"]),
        created_at=row["created_at"],
    )
