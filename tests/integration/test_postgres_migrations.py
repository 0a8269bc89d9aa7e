"""Cluster mode's schema and pool: migrations applied once, even by nodes starting together."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from chatapp.accounts import UserStoreError
from chatapp.accounts.adapters.postgres_users import PostgresUserStore
from chatapp.errors import StoreFailed
from chatapp.storage import Migration
from chatapp.storage.postgres import (
    apply_postgres_migrations,
    find_postgres_migrations,
    open_postgres,
    postgres_answers,
)

JS_MAX_SAFE_INTEGER = 2**53 - 1


async def test_migrations_apply_once_and_a_second_run_applies_nothing(
    postgres_schema_url: str,
) -> None:
    """The first run applies every file and records it; the second applies and changes nothing."""
    pool = await open_postgres(postgres_schema_url)
    try:
        shipped = find_postgres_migrations()
        assert (shipped[0].version, shipped[0].name) == (1, "users_and_social")
        assert await apply_postgres_migrations(pool, now_ms=1) == [m.version for m in shipped]
        tables = {
            row["tablename"]
            for row in await pool.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            )
        }
        assert {"users", "devices", "push_targets", "channels", "channel_members"} <= tables
        assert {"friendships", "schema_migrations"} <= tables
        assert await apply_postgres_migrations(pool, now_ms=2) == []
        records = await pool.fetch(
            "SELECT version, name, applied_at FROM schema_migrations ORDER BY version"
        )
        assert [tuple(row) for row in records] == [(m.version, m.name, 1) for m in shipped]
    finally:
        await pool.close()


async def test_nodes_starting_together_on_an_empty_schema_apply_each_migration_once(
    postgres_schema_url: str,
) -> None:
    """Four nodes migrate at once: each migration is applied by exactly one and recorded once."""
    pools = [await open_postgres(postgres_schema_url, max_size=1) for _ in range(4)]
    try:
        results = await asyncio.gather(
            *(apply_postgres_migrations(pool, now_ms=n) for n, pool in enumerate(pools))
        )
        versions = [m.version for m in find_postgres_migrations()]
        assert sorted(version for applied in results for version in applied) == versions
        count = await pools[0].fetchval("SELECT count(*) FROM schema_migrations")
        assert count == len(versions)
    finally:
        for pool in pools:
            await pool.close()


async def test_a_failing_migration_leaves_nothing_behind(postgres_schema_url: str) -> None:
    """A migration that fails half-way raises StoreFailed, is rolled back and is not recorded."""
    good = Migration(1, "good", "CREATE TABLE kept (x INTEGER);")
    bad = Migration(2, "bad", "CREATE TABLE dropped (x INTEGER);\nINSERT INTO missing VALUES (1);")
    pool = await open_postgres(postgres_schema_url)
    try:
        with pytest.raises(StoreFailed, match="missing"):
            await apply_postgres_migrations(pool, now_ms=1, migrations=[good, bad])
        assert await pool.fetchval("SELECT to_regclass('kept') IS NOT NULL")
        assert await pool.fetchval("SELECT to_regclass('dropped') IS NULL")
        assert await pool.fetchval("SELECT array_agg(version) FROM schema_migrations") == [1]
    finally:
        await pool.close()


def test_migration_files_are_named_and_numbered_without_gaps(tmp_path: Path) -> None:
    """A gap or a badly named file is refused, so a broken checkout fails loudly."""
    (tmp_path / "001_a.sql").write_text("SELECT 1;")
    (tmp_path / "003_c.sql").write_text("SELECT 1;")
    with pytest.raises(ValueError, match="out of place"):
        find_postgres_migrations(tmp_path)
    (tmp_path / "003_c.sql").rename(tmp_path / "0002_b.sql")
    with pytest.raises(ValueError, match="NNN_name"):
        find_postgres_migrations(tmp_path)


async def test_the_pool_uses_the_urls_search_path_and_read_committed(
    postgres_schema_url: str,
) -> None:
    """`?search_path=` reaches every connection of the pool; transactions are READ COMMITTED."""
    schema = postgres_schema_url.rpartition("search_path=")[2]
    pool = await open_postgres(postgres_schema_url, min_size=2, max_size=2)
    try:
        async with pool.acquire() as one, pool.acquire() as two:
            for connection in (one, two):
                assert await connection.fetchval("SELECT current_schema()") == schema
                isolation = await connection.fetchval("SHOW transaction_isolation")
                assert isolation == "read committed"
        assert await postgres_answers(pool)
    finally:
        await pool.close()
    assert not await postgres_answers(pool)


async def test_an_unreachable_server_fails_as_store_failed_without_the_password() -> None:
    """Opening a pool on a closed port raises StoreFailed whose message leaves the URL out."""
    with pytest.raises(StoreFailed) as failure:
        await open_postgres("postgresql://chat:s3cret-pw@127.0.0.1:1/chat")
    assert "s3cret-pw" not in str(failure.value)


async def test_ids_stay_javascript_safe(postgres_schema_url: str) -> None:
    """Every id column stops at 2^53 - 1: the last id is handed out, the next create fails."""
    pool = await open_postgres(postgres_schema_url)
    try:
        await apply_postgres_migrations(pool, now_ms=1)
        for table, column in (
            ("users", "user_id"),
            ("devices", "device_id"),
            ("channels", "channel_id"),
        ):
            maximum = await pool.fetchval(
                "SELECT seqmax FROM pg_sequence"
                " WHERE seqrelid = pg_get_serial_sequence($1, $2)::regclass",
                table,
                column,
            )
            assert maximum == JS_MAX_SAFE_INTEGER
        await pool.execute(
            f"ALTER TABLE users ALTER COLUMN user_id RESTART WITH {JS_MAX_SAFE_INTEGER}"
        )
        users = PostgresUserStore(pool)
        last = await users.create_user(
            username="last", display_name="Last", password_hash="h", created_at=1
        )
        assert last.user_id == JS_MAX_SAFE_INTEGER
        with pytest.raises(UserStoreError):
            await users.create_user(
                username="over", display_name="Over", password_hash="h", created_at=1
            )
    finally:
        await pool.close()
