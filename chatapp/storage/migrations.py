"""Schema migrations: numbered SQL files applied once each, in order."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import aiosqlite

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def default_migrations_dir() -> Path:
    """The schema shipped inside an installed wheel, else the checkout's `migrations/`."""
    package_dir = Path(__file__).resolve().parent.parent
    bundled = package_dir / "_migrations"
    return bundled if bundled.is_dir() else package_dir.parent / "migrations"


def find_migrations(directory: Path | None = None) -> list[Migration]:
    """Read `NNNN_name.sql` files; refuse gaps or duplicates so a bad checkout fails loudly."""
    folder = directory or default_migrations_dir()
    found: list[Migration] = []
    for path in sorted(folder.glob("*.sql")):
        match = _NAME.match(path.name)
        if match is None:
            raise ValueError(f"migration file {path.name} is not named NNNN_name.sql")
        found.append(Migration(int(match[1]), match[2], path.read_text(encoding="utf-8")))
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise ValueError(
                f"migrations must be numbered 1, 2, 3…; {migration.version} is out of place"
            )
    return found


async def apply_migrations(
    connection: aiosqlite.Connection, migrations: list[Migration], *, now_ms: int
) -> list[int]:
    """Apply the migrations not yet recorded; return the versions applied now.

    Each migration and its record are one transaction: a failed migration leaves
    the schema as it was, and running this again applies nothing twice.
    """
    await connection.execute(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)"
    )
    rows = await connection.execute_fetchall("SELECT version FROM schema_version")
    done = {row[0] for row in rows}
    applied: list[int] = []
    for migration in migrations:
        if migration.version in done:
            continue
        await connection.execute("BEGIN IMMEDIATE")
        try:
            for statement in _split_statements(migration.sql):
                await connection.execute(statement)
            await connection.execute(
                "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.name, now_ms),
            )
        except BaseException:
            await connection.execute("ROLLBACK")
            raise
        await connection.execute("COMMIT")
        applied.append(migration.version)
    return applied


def _split_statements(sql: str) -> list[str]:
    """Split a migration into statements (our migrations keep `;` out of literals)."""
    lines = [line for line in sql.splitlines() if not line.strip().startswith("--")]
    return [part.strip() for part in "\n".join(lines).split(";") if part.strip()]
