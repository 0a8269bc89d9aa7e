"""The tables an export walks and an import fills, in either engine's SQL.

Users, devices, push targets, friendships, blocks, channels and their members,
invites and audit events have the same tables and columns on SQLite and on
PostgreSQL (`migrations/`), so one description of each serves both;
`TableRows` is what differs.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

PAGE_ROWS: Final = 1000
"""Rows read per query and written per batch: memory stays the same whatever the size."""


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...]
    """The primary key (or a unique, indexed one) the walk pages by."""
    identity: str | None = None
    """The column whose next value the engine hands out (PostgreSQL's identity)."""

    def page_sql(self) -> str:
        keys = ", ".join(self.key)
        marks = ", ".join("?" for _ in self.key)
        return (
            f"SELECT {', '.join(self.columns)} FROM {self.name}"
            f" WHERE ({keys}) > ({marks}) ORDER BY {keys} LIMIT ?"
        )

    def first_key(self) -> tuple[int, ...]:
        return tuple(-1 for _ in self.key)


USERS: Final = Table(
    "users",
    (
        "user_id",
        "username",
        "display_name",
        "about",
        "role",
        "share_read_receipts",
        "group_adds",
        "created_at",
        "password_hash",
        "deactivated_at",
        "deactivation_reason",
        "deleted_at",
        "deletion_unfinished",
    ),
    ("user_id",),
    identity="user_id",
)
DEVICES: Final = Table(
    "devices",
    ("device_id", "user_id", "name", "token_hash", "created_at", "last_seen_at", "revoked_at"),
    ("device_id",),
    identity="device_id",
)
PUSH_TARGETS: Final = Table(
    "push_targets", ("device_id", "user_id", "provider", "target", "updated_at"), ("device_id",)
)
FRIENDSHIPS: Final = Table(
    "friendships",
    ("user_low", "user_high", "requested_by", "status", "created_at", "accepted_at"),
    ("user_low", "user_high"),
)
CHANNELS: Final = Table(
    "channels",
    ("channel_id", "kind", "name", "owner_id", "direct_key", "created_at"),
    ("channel_id",),
    identity="channel_id",
)
MEMBERS: Final = Table(
    "channel_members",
    ("channel_id", "user_id", "joined_at", "read_message_id", "notification_level"),
    ("channel_id", "user_id"),
)
INVITES: Final = Table(
    "invites",
    ("invite_id", "code", "uses_left", "expires_at", "created_at", "created_by"),
    ("invite_id",),
    identity="invite_id",
)
AUDIT_EVENTS: Final = Table(
    "audit_events",
    ("event_id", "at", "actor_id", "action", "target", "reason"),
    ("event_id",),
    identity="event_id",
)
BLOCKS: Final = Table(
    "blocks", ("blocker_id", "blocked_id", "created_at"), ("blocker_id", "blocked_id")
)
SQL_TABLES: Final = (
    USERS,
    DEVICES,
    PUSH_TARGETS,
    FRIENDSHIPS,
    BLOCKS,
    CHANNELS,
    MEMBERS,
    INVITES,
    AUDIT_EVENTS,
)


class TableReader(Protocol):
    """One engine's tables, read in pages; SQL is written with `?` marks."""

    async def fetch(self, sql: str, args: Sequence[Any]) -> list[dict[str, Any]]: ...


class TableRows(TableReader, Protocol):
    """One engine's tables, read and written in pages."""

    async def insert(self, table: Table, rows: Sequence[Sequence[Any]]) -> None:
        """Insert `rows` (values in `table.columns` order) in one transaction."""
        ...

    async def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run `sql` once per row, all in one transaction."""
        ...


async def walk(rows: TableReader, table: Table) -> AsyncIterator[dict[str, Any]]:
    """Every row of `table` in key order, one page in memory at a time."""
    after: tuple[Any, ...] = table.first_key()
    sql = table.page_sql()
    while True:
        page = await rows.fetch(sql, [*after, PAGE_ROWS])
        for row in page:
            yield row
        if len(page) < PAGE_ROWS:
            return
        after = tuple(page[-1][column] for column in table.key)


def numbered(sql: str) -> str:
    """`?` marks as PostgreSQL's `$1`, `$2`, …"""
    count = iter(range(1, sql.count("?") + 1))
    return re.sub(r"\?", lambda _: f"${next(count)}", sql)


async def count_rows(rows: TableReader, table: str) -> int:
    found = await rows.fetch(f"SELECT COUNT(*) AS n FROM {table}", [])
    return int(found[0]["n"])
