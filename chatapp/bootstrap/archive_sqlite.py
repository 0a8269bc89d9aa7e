"""An export's and an import's side of the embedded folder: SQLite tables, LevelDB messages."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiosqlite

from chatapp.bootstrap.archive_tables import Table, count_rows
from chatapp.bootstrap.stores import in_use, open_message_store, users_database
from chatapp.clock import Clock
from chatapp.errors import StartupRefused
from chatapp.messaging import MessageStore, MessageStoreError
from chatapp.messaging.adapters.leveldb_layout import StoreInUse
from chatapp.messaging.adapters.leveldb_load import LevelDBLoader
from chatapp.storage import apply_migrations, find_migrations, open_sqlite


class SqliteRows:
    """`TableRows` on one SQLite connection."""

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._connection = connection

    async def fetch(self, sql: str, args: Sequence[Any]) -> list[dict[str, Any]]:
        async with self._connection.execute(sql, tuple(args)) as cursor:
            names = [column[0] for column in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in await cursor.fetchall()]

    async def insert(self, table: Table, rows: Sequence[Sequence[Any]]) -> None:
        marks = ", ".join("?" for _ in table.columns)
        sql = f"INSERT INTO {table.name} ({', '.join(table.columns)}) VALUES ({marks})"
        await self.execute_many(sql, rows)

    async def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        try:
            await self._connection.executemany(sql, [tuple(row) for row in rows])
            await self._connection.commit()
        except sqlite3.Error:
            await self._connection.rollback()
            raise


async def open_embedded_source(
    data_dir: Path, clock: Clock, stack: contextlib.AsyncExitStack
) -> tuple[SqliteRows, MessageStore]:
    """The folder's tables and message store, for an export; refused while a server runs."""
    if not users_database(data_dir).exists():
        raise StartupRefused(f"there is no data in {data_dir} (no {users_database(data_dir).name})")
    messages = await open_message_store(data_dir)
    stack.push_async_callback(messages.close)
    connection = await open_sqlite(users_database(data_dir))
    stack.push_async_callback(connection.close)
    # A folder of an older version gets the columns the export reads, as a start would.
    await apply_migrations(connection, find_migrations(), now_ms=clock.now_ms())
    return SqliteRows(connection), messages


async def open_embedded_target(
    data_dir: Path, clock: Clock, stack: contextlib.AsyncExitStack
) -> tuple[SqliteRows, LevelDBLoader]:
    """An empty folder's tables (schema made) and a loader of its message store, for an import.

    A folder with a message store, or with users or channels, is refused.
    """
    messages_dir = data_dir / "messages"
    await asyncio.to_thread(_prepare_folder, data_dir, messages_dir)
    connection = await open_sqlite(users_database(data_dir))
    stack.push_async_callback(connection.close)
    await apply_migrations(connection, find_migrations(), now_ms=clock.now_ms())
    rows = SqliteRows(connection)
    for table in ("users", "channels"):
        if await count_rows(rows, table):
            raise StartupRefused(not_empty(str(data_dir)))
    try:
        loader = LevelDBLoader(messages_dir)
    except StoreInUse:
        raise StartupRefused(in_use(data_dir)) from None
    except MessageStoreError as failure:
        raise StartupRefused(f"cannot open the message store: {failure}") from None
    stack.callback(loader.close)
    return rows, loader


def _prepare_folder(data_dir: Path, messages_dir: Path) -> None:
    if messages_dir.exists() and any(messages_dir.iterdir()):
        raise StartupRefused(not_empty(str(data_dir)))
    data_dir.mkdir(parents=True, exist_ok=True)


def not_empty(where: str) -> str:
    return (
        f"{where} is not empty; import only into a new deployment"
        " (an empty data folder or database)"
    )
