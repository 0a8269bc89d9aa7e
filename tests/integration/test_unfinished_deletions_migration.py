"""Unfinished deletions arrive by migration: a deletion made before it is finished once more.

The schema is built as it was before (every migration but this one and later), a
deleted and a live user stored with the SQL of that time, then migrated and read
through the real store.
"""

from __future__ import annotations

from pathlib import Path

from chatapp.accounts.adapters import SqliteUserStore
from chatapp.accounts.adapters.postgres_users import PostgresUserStore
from chatapp.storage import apply_migrations, find_migrations, open_sqlite
from chatapp.storage.postgres import (
    apply_postgres_migrations,
    find_postgres_migrations,
    open_postgres,
)
from tests.integration.migration_steps import migrations_before

UNFINISHED_DELETIONS = "unfinished_deletions"


async def test_an_old_deletion_is_unfinished_and_erases_nothing(tmp_path: Path) -> None:
    """Every step after the mark is safe to repeat, so an old deletion, which may have been
    cut short, is listed once, keeping its messages (an old mark never says to erase)."""
    path = tmp_path / "users.sqlite3"
    old = await open_sqlite(path)
    try:
        await apply_migrations(
            old, migrations_before(find_migrations(), UNFINISHED_DELETIONS), now_ms=1
        )
        for name, deleted_at in (("gone", 500), ("here", None)):
            await old.execute(
                "INSERT INTO users (username, display_name, about, password_hash, created_at,"
                " deleted_at) VALUES (?, 'Someone', '', 'hash', 1000, ?)",
                (name, deleted_at),
            )
    finally:
        await old.close()
    database = await open_sqlite(path)
    try:
        await apply_migrations(database, find_migrations(), now_ms=2)
        users = SqliteUserStore(database)
        assert await users.unfinished_deletions() == [(1, False)]
        await users.deletion_finished(1, erase_messages=False)
        assert await users.unfinished_deletions() == []
    finally:
        await database.close()


async def test_an_old_deletion_on_postgresql_is_unfinished_too(postgres_schema_url: str) -> None:
    """The same on PostgreSQL: the old schema's deleted user is listed, keeping its
    messages, and the live one is not."""
    pool = await open_postgres(postgres_schema_url)
    try:
        await apply_postgres_migrations(
            pool,
            now_ms=1,
            migrations=migrations_before(find_postgres_migrations(), UNFINISHED_DELETIONS),
        )
        for name, deleted_at in (("gone", 500), ("here", None)):
            await pool.execute(
                "INSERT INTO users (username, display_name, about, password_hash, created_at,"
                " deleted_at) VALUES ($1, 'Someone', '', 'hash', 1000, $2)",
                name,
                deleted_at,
            )
        gone = await pool.fetchval("SELECT user_id FROM users WHERE username = 'gone'")
        await apply_postgres_migrations(pool, now_ms=2)
        users = PostgresUserStore(pool)
        assert await users.unfinished_deletions() == [(gone, False)]
    finally:
        await pool.close()
