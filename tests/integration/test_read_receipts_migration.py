"""Read receipts arrive by migration: users of a database made before it share them.

Each test builds the schema as it was before receipts (every migration before
the receipts one), stores a user there with the SQL of that time, then
migrates and opens the real store on it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

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

RECEIPTS = "read_receipts"


async def test_a_sqlite_user_from_before_receipts_shares_them(tmp_path: Path) -> None:
    """An old users.sqlite3 migrates in place: its user shares read receipts, every other
    field as stored, and can stop; the schema refuses a value that is not 0 or 1."""
    path = tmp_path / "users.sqlite3"
    old = await open_sqlite(path)
    try:
        assert await apply_migrations(old, migrations_before(find_migrations(), RECEIPTS), now_ms=1)
        await old.execute(
            "INSERT INTO users (username, display_name, about, password_hash, created_at, role)"
            " VALUES ('alice', 'Alice', 'hi', 'hash', 1000, 'admin')"
        )
    finally:
        await old.close()

    database = await open_sqlite(path)
    try:
        await apply_migrations(database, find_migrations(), now_ms=2)
        users = SqliteUserStore(database)
        alice = await users.get_user(1)
        assert alice is not None
        assert (alice.username, alice.about, alice.role) == ("alice", "hi", "admin")
        assert alice.share_read_receipts is True
        assert await users.receipt_sharers([1]) == {1}
        await users.update_profile(1, display_name=None, about=None, share_read_receipts=False)
        assert await users.receipt_sharers([1]) == set()
        with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
            await database.execute("UPDATE users SET share_read_receipts = 2 WHERE user_id = 1")
    finally:
        await database.close()


async def test_a_postgresql_user_from_before_receipts_shares_them(
    postgres_schema_url: str,
) -> None:
    """The same on PostgreSQL: the old schema's user shares after the migration."""
    pool = await open_postgres(postgres_schema_url)
    try:
        earlier = migrations_before(find_postgres_migrations(), RECEIPTS)
        assert await apply_postgres_migrations(pool, now_ms=1, migrations=earlier)
        await pool.execute(
            "INSERT INTO users (username, display_name, about, password_hash, created_at)"
            " VALUES ('alice', 'Alice', 'hi', 'hash', 1000)"
        )
        user_id = await pool.fetchval("SELECT user_id FROM users WHERE username = 'alice'")
        await apply_postgres_migrations(pool, now_ms=2)
        users = PostgresUserStore(pool)
        alice = await users.get_user(user_id)
        assert alice is not None
        assert (alice.username, alice.about, alice.share_read_receipts) == ("alice", "hi", True)
        hidden = await users.update_profile(
            user_id, display_name=None, about=None, share_read_receipts=False
        )
        assert hidden == alice.model_copy(update={"share_read_receipts": False})
    finally:
        await pool.close()
