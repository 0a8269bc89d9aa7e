"""The SQLite connection every SQLite-backed store shares, and its errors by meaning."""

from __future__ import annotations

import functools
import inspect
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Final, ParamSpec, TypeVar

import aiosqlite

from chatapp.errors import StoreFailed

StoreT = TypeVar("StoreT")
P = ParamSpec("P")
R = TypeVar("R")

FILES_PER_CONNECTION: Final = 3
"""What a connection keeps open: the database, its WAL, and the WAL's shared-memory index.

Nothing else is opened later (`temp_store` is MEMORY), so a process out of
open files cannot fail a statement that would have needed a temporary file.
"""


async def open_sqlite(path: Path) -> aiosqlite.Connection:
    """Open (creating if needed) a database in WAL mode with foreign keys enforced.

    Autocommit mode: each store opens its own transaction where it needs one, so
    a transaction never spans two unrelated calls.

    Reads go through `execute_fetchall`, one trip to the connection's thread: a
    statement left open across an await holds a read snapshot, and a write on
    the same connection meanwhile fails at once with "database is locked" if
    another connection (social's, on the same file) has committed since.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = await aiosqlite.connect(path, isolation_level=None)
    connection.row_factory = aiosqlite.Row
    await connection.execute("PRAGMA journal_mode=WAL")
    await connection.execute("PRAGMA foreign_keys=ON")
    await connection.execute("PRAGMA busy_timeout=5000")
    # Sorts, temporary tables and statement journals in memory: they are
    # small here, and a temporary file is one more open a process out of
    # descriptors would fail.
    await connection.execute("PRAGMA temp_store=MEMORY")
    # With WAL, NORMAL still never corrupts the database; FULL also makes each
    # commit survive power loss, which user data (accounts, devices) deserves.
    await connection.execute("PRAGMA synchronous=FULL")
    return connection


def raises(error: type[StoreFailed]) -> Callable[[type[StoreT]], type[StoreT]]:
    """Make every public coroutine method of a store raise `error` instead of sqlite3's.

    SQLite's exception types must not leave the adapter: the modules and the
    edges know only their store's error, whichever engine is behind it.
    """

    def decorate(store: type[StoreT]) -> type[StoreT]:
        for name, method in list(vars(store).items()):
            if not name.startswith("_") and inspect.iscoroutinefunction(method):
                setattr(store, name, _translated(method, error))
        return store

    return decorate


def _translated(
    method: Callable[P, Awaitable[R]], error: type[StoreFailed]
) -> Callable[P, Awaitable[R]]:
    @functools.wraps(method)
    async def call(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await method(*args, **kwargs)
        except (sqlite3.Error, ValueError) as failure:
            # aiosqlite raises ValueError for a closed connection.
            raise error(f"{type(failure).__name__}: {failure}") from failure

    return call


__all__ = ["open_sqlite", "raises"]
