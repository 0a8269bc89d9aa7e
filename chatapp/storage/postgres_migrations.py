"""Cluster mode's schema migrations: `postgresql/NNN_name.sql`, applied once each, in order.

Several nodes may start at once on an empty database. Each migration runs in
a transaction that first takes an advisory lock on the schema, then checks
`schema_migrations`: the first node applies it, the others wait and find it
recorded.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import asyncpg

from chatapp.storage.migrations import Migration, default_migrations_dir

_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")

# A later migration may build an index on a large table, and a node starting
# meanwhile waits on the lock: longer than the pool's per-query timeout.
_MIGRATION_TIMEOUT_S = 3600.0

# The two keys of the advisory lock: this purpose, and the schema being
# migrated, so that nodes of other schemas (other tests, other tenants) do
# not wait on each other. A hash collision only makes two of them take turns.
_LOCK = (
    "SELECT pg_advisory_xact_lock("
    " hashtext('chatapp.schema_migrations'), hashtext(coalesce(current_schema(), '')))"
)


def default_postgres_migrations_dir() -> Path:
    """`postgresql/` inside the schema folder `chatapp.storage.migrations` finds."""
    return default_migrations_dir() / "postgresql"


def find_postgres_migrations(directory: Path | None = None) -> list[Migration]:
    """Read `NNN_name.sql` files; refuse gaps or duplicates so a bad checkout fails loudly."""
    folder = directory or default_postgres_migrations_dir()
    found: list[Migration] = []
    for path in sorted(folder.glob("*.sql")):
        match = _NAME.match(path.name)
        if match is None:
            raise ValueError(f"migration file {path.name} is not named NNN_name.sql")
        found.append(Migration(int(match[1]), match[2], path.read_text(encoding="utf-8")))
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise ValueError(
                f"migrations must be numbered 1, 2, 3…; {migration.version} is out of place"
            )
    return found


async def apply_in_order(
    pool: asyncpg.Pool, migrations: Sequence[Migration], *, now_ms: int
) -> list[int]:
    """Apply the migrations not yet recorded; return the versions this call applied.

    Each migration and its record are one transaction: a failed migration
    leaves the schema as it was, and no migration is applied twice however
    many nodes run this at once. The tables go to the first schema of the
    pool's `search_path`. asyncpg's errors pass through, each noting its
    migration; `chatapp.storage.postgres.apply_postgres_migrations` translates them.
    """
    applied: list[int] = []
    async with pool.acquire() as connection:
        for migration in migrations:
            try:
                if await _apply_one(connection, migration, now_ms):
                    applied.append(migration.version)
            except Exception as failure:
                failure.add_note(f"in migration {migration.version:03d}_{migration.name}.sql")
                raise
    return applied


async def _apply_one(connection: asyncpg.Connection, migration: Migration, now_ms: int) -> bool:
    """Apply one migration unless it is recorded; True when this call applied it."""
    async with connection.transaction(isolation="read_committed"):
        await connection.execute(_LOCK, timeout=_MIGRATION_TIMEOUT_S)
        # Created under the lock: two concurrent `CREATE TABLE IF NOT EXISTS`
        # can both miss the table and one then fails.
        await connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)"
        )
        # READ COMMITTED: this statement's snapshot is taken after the lock was
        # granted, so it sees what the node before us committed.
        done = await connection.fetchval(
            "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)",
            migration.version,
        )
        if done:
            return False
        # No arguments: the simple query protocol, which runs every statement of the file.
        await connection.execute(migration.sql, timeout=_MIGRATION_TIMEOUT_S)
        await connection.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            migration.version,
            migration.name,
            now_ms,
        )
    return True
