"""Notification levels, blocks and `group_adds` arrive by migration: a database made before
them reads as a new one would, every member at `all`, everyone addable, nobody blocked.

Each test builds the schema as it was before (every migration before the people-controls
one), stores a user and a group there with the SQL of that time, then migrates and opens the
real stores on it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import asyncpg
import pytest

from chatapp.accounts.adapters import SqliteUserStore
from chatapp.accounts.adapters.postgres_users import PostgresUserStore
from chatapp.social.adapters import SqliteBlockStore, SqliteChannelStore
from chatapp.social.adapters.postgres_blocks import PostgresBlockStore
from chatapp.social.adapters.postgres_channels import PostgresChannelStore
from chatapp.social.models import MemberState
from chatapp.storage import apply_migrations, find_migrations, open_sqlite
from chatapp.storage.postgres import (
    apply_postgres_migrations,
    find_postgres_migrations,
    open_postgres,
)
from tests.integration.migration_steps import migrations_before

PEOPLE_CONTROLS = "people_controls"
OLD_ROWS = [
    "INSERT INTO users (username, display_name, about, password_hash, created_at)"
    " VALUES ('alice', 'Alice', 'hi', 'hash', 1000)",
    "INSERT INTO channels (kind, name, owner_id, created_at) VALUES ('group', 'old', 1, 1000)",
    "INSERT INTO channel_members (channel_id, user_id, joined_at, read_message_id)"
    " VALUES (1, 1, 1000, 7)",
]


async def test_a_sqlite_database_from_before_reads_with_the_defaults(tmp_path: Path) -> None:
    """An old users.sqlite3 migrates in place: its member is at `all` with the marker kept, its
    user lets everyone add them, nobody is blocked; the schema refuses unknown values and a
    user blocking themself."""
    path = tmp_path / "users.sqlite3"
    old = await open_sqlite(path)
    try:
        assert await apply_migrations(
            old, migrations_before(find_migrations(), PEOPLE_CONTROLS), now_ms=1
        )
        for sql in OLD_ROWS:
            await old.execute(sql)
    finally:
        await old.close()

    database = await open_sqlite(path)
    try:
        await apply_migrations(database, find_migrations(), now_ms=2)
        channels, blocks = SqliteChannelStore(database), SqliteBlockStore(database)
        assert await channels.member_state(1, 1) == MemberState(
            read_message_id=7, notification_level="all"
        )
        alice = await SqliteUserStore(database).get_user(1)
        assert alice is not None
        assert (alice.about, alice.group_adds) == ("hi", "everyone")
        assert await blocks.blocked_by(1) == []
        for sql in (
            "UPDATE channel_members SET notification_level = 'loud'",
            "UPDATE users SET group_adds = 'nobody'",
            "INSERT INTO blocks (blocker_id, blocked_id, created_at) VALUES (1, 1, 1)",
        ):
            with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
                await database.execute(sql)
    finally:
        await database.close()


async def test_a_postgresql_database_from_before_reads_with_the_defaults(
    postgres_schema_url: str,
) -> None:
    """The same on PostgreSQL: the old rows read with the defaults, and the checks, though
    added NOT VALID, hold for every row written afterwards."""
    pool = await open_postgres(postgres_schema_url)
    try:
        earlier = migrations_before(find_postgres_migrations(), PEOPLE_CONTROLS)
        assert await apply_postgres_migrations(pool, now_ms=1, migrations=earlier)
        for sql in OLD_ROWS:
            await pool.execute(sql)
        await apply_postgres_migrations(pool, now_ms=2)
        channel_id = await pool.fetchval("SELECT channel_id FROM channels")
        user_id = await pool.fetchval("SELECT user_id FROM users")
        channels = PostgresChannelStore(pool)
        assert await channels.member_state(channel_id, user_id) == MemberState(
            read_message_id=7, notification_level="all"
        )
        alice = await PostgresUserStore(pool).get_user(user_id)
        assert alice is not None
        assert alice.group_adds == "everyone"
        assert await PostgresBlockStore(pool).blocked_by(user_id) == []
        for sql in (
            "UPDATE channel_members SET notification_level = 'loud'",
            "UPDATE users SET group_adds = 'nobody'",
            f"INSERT INTO blocks (blocker_id, blocked_id, created_at) VALUES ({user_id},"
            f" {user_id}, 1)",
        ):
            with pytest.raises(asyncpg.CheckViolationError):
                await pool.execute(sql)
    finally:
        await pool.close()
