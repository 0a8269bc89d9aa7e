"""Fixtures for the store tests: the same test functions on SQLite and on PostgreSQL.

`database` is parametrised over both engines (see `store_engines`); the
PostgreSQL side gets a fresh schema per test, dropped afterwards.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from chatapp.storage.postgres import apply_postgres_migrations, open_postgres
from tests.integration.store_engines import (
    Database,
    Node,
    PostgresDatabase,
    SqliteDatabase,
    fresh_schema,
)


@pytest.fixture
async def postgres_schema_url() -> AsyncIterator[str]:
    """A fresh, empty schema's URL (no migrations applied)."""
    async with fresh_schema() as url:
        yield url


@pytest.fixture
async def pool(postgres_schema_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on a fresh schema with every PostgreSQL migration applied."""
    pool = await open_postgres(postgres_schema_url, max_size=6)
    await apply_postgres_migrations(pool, now_ms=1)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture(params=["sqlite", "postgresql"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """An empty, migrated database on each engine; every node opened on it is closed after."""
    async with contextlib.AsyncExitStack() as stack:
        opened: SqliteDatabase | PostgresDatabase
        if request.param == "sqlite":
            opened = await SqliteDatabase.create(tmp_path / "users.sqlite3")
        else:
            opened = await PostgresDatabase.create(await stack.enter_async_context(fresh_schema()))
        try:
            yield opened
        finally:
            for node in opened.nodes:
                await node.close()


@pytest.fixture
async def node(database: Database) -> Node:
    """The first server's stores on `database`."""
    return await database.node()
