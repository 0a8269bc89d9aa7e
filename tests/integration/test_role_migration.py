"""Roles arrive by migration: a database made before it reads as before, everyone a member.

Each test builds the schema as it was before roles (every migration but the
roles one), stores a user and a device there with the SQL of that time, then
migrates and opens the real store on it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import asyncpg
import pytest

from chatapp.accounts.adapters import SqliteUserStore
from chatapp.accounts.adapters.postgres_users import PostgresUserStore
from chatapp.storage import apply_migrations, find_migrations, open_sqlite
from chatapp.storage.postgres import (
    apply_postgres_migrations,
    find_postgres_migrations,
    open_postgres,
)
from tests.integration.migration_steps import migrations_before

ROLES = "user_roles"


async def test_a_sqlite_database_from_before_roles_reads_as_before(tmp_path: Path) -> None:
    """An old users.sqlite3 migrates in place: its user is a member with every other field
    as stored, its token still works, and it can be made an admin; a role that is neither
    member nor admin is refused by the schema."""
    path = tmp_path / "users.sqlite3"
    old = await open_sqlite(path)
    try:
        assert await apply_migrations(old, migrations_before(find_migrations(), ROLES), now_ms=1)
        await old.execute(
            "INSERT INTO users (username, display_name, about, password_hash, created_at)"
            " VALUES ('alice', 'Alice', 'hi', 'hash', 1000)"
        )
        await old.execute(
            "INSERT INTO devices (user_id, name, token_hash, created_at, last_seen_at)"
            " VALUES (1, 'phone', 'token-hash', 1000, 1000)"
        )
    finally:
        await old.close()

    database = await open_sqlite(path)
    try:
        applied = await apply_migrations(database, find_migrations(), now_ms=2)
        # The roles migration and any after it.
        before = migrations_before(find_migrations(), ROLES)
        assert applied == [m.version for m in find_migrations()[len(before) :]]
        users = SqliteUserStore(database)
        alice = await users.get_user(1)
        assert alice is not None
        assert alice.model_dump() == {
            "user_id": 1,
            "username": "alice",
            "display_name": "Alice",
            "about": "hi",
            "created_at": 1000,
            "role": "member",
            "share_read_receipts": True,
            "group_adds": "everyone",
        }
        device = await users.device_for_token("token-hash")
        assert device is not None
        assert device.user_id == 1
        granted = await users.set_role(1, "admin")
        assert granted is not None
        assert granted.role == "admin"
        with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
            await database.execute("UPDATE users SET role = 'owner' WHERE user_id = 1")
    finally:
        await database.close()


async def test_a_postgresql_schema_from_before_roles_reads_as_before(
    postgres_schema_url: str,
) -> None:
    """The same on PostgreSQL: the old schema's user is a member after the migration, with
    every other field as stored, and the schema refuses an unknown role."""
    pool = await open_postgres(postgres_schema_url)
    try:
        earlier = migrations_before(find_postgres_migrations(), ROLES)
        assert await apply_postgres_migrations(pool, now_ms=1, migrations=earlier)
        await pool.execute(
            "INSERT INTO users (username, display_name, about, password_hash, created_at)"
            " VALUES ('alice', 'Alice', 'hi', 'hash', 1000)"
        )
        user_id = await pool.fetchval("SELECT user_id FROM users WHERE username = 'alice'")
        applied = await apply_postgres_migrations(pool, now_ms=2)
        # The roles migration and any after it.
        assert applied == [m.version for m in find_postgres_migrations()[len(earlier) :]]
        users = PostgresUserStore(pool)
        alice = await users.get_user(user_id)
        assert alice is not None
        assert (alice.username, alice.display_name, alice.about, alice.created_at) == (
            "alice",
            "Alice",
            "hi",
            1000,
        )
        assert alice.role == "member"
        assert (await users.set_role(user_id, "admin")) == alice.model_copy(
            update={"role": "admin"}
        )
        with pytest.raises(asyncpg.CheckViolationError, match="users_role_known"):
            await pool.execute("UPDATE users SET role = 'owner' WHERE user_id = $1", user_id)
    finally:
        await pool.close()
