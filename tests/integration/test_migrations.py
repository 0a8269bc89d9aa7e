"""The schema comes only from migrations/, applied once each, in order."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatapp.storage import Migration, apply_migrations, find_migrations, open_sqlite


async def test_migrations_apply_once(tmp_path: Path) -> None:
    """The first run applies every migration; a second run applies nothing and changes nothing."""
    database = await open_sqlite(tmp_path / "users.sqlite3")
    try:
        migrations = find_migrations()
        first = await apply_migrations(database, migrations, now_ms=1)
        assert first == [m.version for m in migrations]
        async with database.execute("SELECT sql FROM sqlite_master ORDER BY name") as cursor:
            schema = [row[0] async for row in cursor]
        assert await apply_migrations(database, migrations, now_ms=2) == []
        async with database.execute("SELECT sql FROM sqlite_master ORDER BY name") as cursor:
            assert [row[0] async for row in cursor] == schema
        async with database.execute("SELECT version, applied_at FROM schema_version") as cursor:
            assert [tuple(row) async for row in cursor] == [(m.version, 1) for m in migrations]
    finally:
        await database.close()


async def test_database_uses_wal_and_foreign_keys(tmp_path: Path) -> None:
    """SQLite runs in WAL mode with foreign keys enforced."""
    database = await open_sqlite(tmp_path / "users.sqlite3")
    try:
        async with database.execute("PRAGMA journal_mode") as cursor:
            assert (await cursor.fetchone())[0] == "wal"  # type: ignore[index]
        async with database.execute("PRAGMA foreign_keys") as cursor:
            assert (await cursor.fetchone())[0] == 1  # type: ignore[index]
    finally:
        await database.close()


async def test_a_failing_migration_leaves_nothing_behind(tmp_path: Path) -> None:
    """A migration that fails half-way is rolled back and not recorded."""
    database = await open_sqlite(tmp_path / "users.sqlite3")
    bad = Migration(1, "bad", "CREATE TABLE t (x INTEGER);\nINSERT INTO missing VALUES (1);")
    try:
        with pytest.raises(Exception, match="missing"):
            await apply_migrations(database, [bad], now_ms=1)
        async with database.execute("SELECT name FROM sqlite_master WHERE name = 't'") as cursor:
            assert await cursor.fetchone() is None
        async with database.execute("SELECT count(*) FROM schema_version") as cursor:
            assert (await cursor.fetchone())[0] == 0  # type: ignore[index]
    finally:
        await database.close()


def test_migration_files_are_numbered_without_gaps(tmp_path: Path) -> None:
    """A gap or a badly named file is refused, so a broken checkout fails loudly."""
    (tmp_path / "0001_a.sql").write_text("SELECT 1;")
    (tmp_path / "0003_c.sql").write_text("SELECT 1;")
    with pytest.raises(ValueError, match="out of place"):
        find_migrations(tmp_path)
    (tmp_path / "0003_c.sql").rename(tmp_path / "two.sql")
    with pytest.raises(ValueError, match="NNNN_name"):
        find_migrations(tmp_path)
