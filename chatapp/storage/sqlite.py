"""The SQLite connection every SQLite-backed store shares."""

from __future__ import annotations

from pathlib import Path

import aiosqlite


async def open_sqlite(path: Path) -> aiosqlite.Connection:
    """Open (creating if needed) a database in WAL mode with foreign keys enforced.

    Autocommit mode: each store opens its own transaction where it needs one, so
    a transaction never spans two unrelated calls.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = await aiosqlite.connect(path, isolation_level=None)
    connection.row_factory = aiosqlite.Row
    await connection.execute("PRAGMA journal_mode=WAL")
    await connection.execute("PRAGMA foreign_keys=ON")
    await connection.execute("PRAGMA busy_timeout=5000")
    # With WAL, NORMAL still never corrupts the database; FULL also makes each
    # commit survive power loss, which user data (accounts, devices) deserves.
    await connection.execute("PRAGMA synchronous=FULL")
    return connection
