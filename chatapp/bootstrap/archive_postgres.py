"""An export's and an import's side of a cluster: its PostgreSQL tables.

Imported only in cluster mode. An import copies the rows with their ids
(`OVERRIDING SYSTEM VALUE`), then sets the counter rows (`channel_counters`,
`inbox_counters`) to the last ids loaded and each identity sequence past the
highest id, so the next user, channel, device, message and seq continue
after the imported ones. An export reads from one snapshot of the database
(`ClusterSnapshot`), so the nodes may go on serving meanwhile.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import asyncpg

from chatapp.bootstrap.archive_sqlite import not_empty
from chatapp.bootstrap.archive_tables import SQL_TABLES, Table, count_rows, numbered
from chatapp.clock import SystemClock
from chatapp.config import Settings
from chatapp.errors import StartupRefused, StoreFailed
from chatapp.messaging import InboxRecord, SendRecord, StoredMessage
from chatapp.messaging.adapters import postgres_scans
from chatapp.messaging.adapters.postgres_rows import reaction_rows, update_code
from chatapp.storage.postgres import ENGINE_ERRORS, apply_postgres_migrations, open_postgres


class PostgresRows:
    """`TableRows` on a PostgreSQL pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def fetch(self, sql: str, args: Sequence[Any]) -> list[dict[str, Any]]:
        rows = await self._pool.fetch(numbered(sql), *args)
        return [dict(row) for row in rows]

    async def insert(self, table: Table, rows: Sequence[Sequence[Any]]) -> None:
        override = " OVERRIDING SYSTEM VALUE" if table.identity else ""
        marks = ", ".join("?" for _ in table.columns)
        await self.execute_many(
            f"INSERT INTO {table.name} ({', '.join(table.columns)}){override} VALUES ({marks})",
            rows,
        )

    async def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.executemany(numbered(sql), [tuple(row) for row in rows])


async def _open_pool(settings: Settings, stack: contextlib.AsyncExitStack) -> asyncpg.Pool:
    try:
        pool = await open_postgres(settings.database_url)
    except StoreFailed as failure:
        raise StartupRefused(f"the cluster's database: {failure}") from None
    stack.push_async_callback(pool.close)
    await apply_postgres_migrations(pool, now_ms=SystemClock().now_ms())
    return pool


async def open_cluster_source(
    settings: Settings, stack: contextlib.AsyncExitStack
) -> ClusterSnapshot:
    """The cluster's tables and message tables as they are now, for an export."""
    pool = await _open_pool(settings, stack)
    try:
        connection = await stack.enter_async_context(pool.acquire())
        await stack.enter_async_context(_read_only_snapshot(connection))
    except ENGINE_ERRORS as failure:
        raise StartupRefused(f"the cluster's database: {failure}") from None
    return ClusterSnapshot(connection)


@contextlib.asynccontextmanager
async def _read_only_snapshot(connection: asyncpg.Connection) -> AsyncIterator[None]:
    """A REPEATABLE READ transaction until the export is written. It keeps PostgreSQL from
    vacuuming rows changed meanwhile, which is the price of a consistent file."""
    transaction = connection.transaction(isolation="repeatable_read", readonly=True)
    await transaction.start()
    try:
        yield
    finally:
        # Nothing was written; a connection lost meanwhile has no transaction to end.
        with contextlib.suppress(*ENGINE_ERRORS):
            await transaction.rollback()


class ClusterSnapshot:
    """`TableReader` and `MessageSource` on one REPEATABLE READ transaction: every page of an
    export comes from the same moment, so a batch of sends the nodes commit meanwhile is in the
    file whole (message, inbox entries, idempotency record) or not at all."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection

    async def fetch(self, sql: str, args: Sequence[Any]) -> list[dict[str, Any]]:
        return [dict(row) for row in await self._records(numbered(sql), *args)]

    async def scan_messages(
        self, *, after: tuple[int, int] = (0, 0), limit: int
    ) -> list[StoredMessage]:
        return await postgres_scans.scan_messages(self._records, after=after, limit=limit)

    async def scan_inbox(self, *, after: tuple[int, int] = (0, 0), limit: int) -> list[InboxRecord]:
        return await postgres_scans.scan_inbox(self._records, after=after, limit=limit)

    async def scan_sends(
        self, *, after: tuple[int, str] | None = None, limit: int
    ) -> list[SendRecord]:
        return await postgres_scans.scan_sends(self._records, after=after, limit=limit)

    async def _records(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        try:
            rows: list[asyncpg.Record] = await self._connection.fetch(sql, *args)
        except ENGINE_ERRORS as error:
            raise StartupRefused(
                f"the cluster's database failed while exporting: {error}"
            ) from None
        return rows


async def open_cluster_target(
    settings: Settings, stack: contextlib.AsyncExitStack
) -> tuple[PostgresRows, PostgresTarget]:
    """The cluster's (empty) tables, for an import; a database with data is refused."""
    pool = await _open_pool(settings, stack)
    rows = PostgresRows(pool)
    for table in ("users", "channels", "messages"):
        if await count_rows(rows, table):
            raise StartupRefused(not_empty("the cluster's database"))
    return rows, PostgresTarget(pool, rows)


class PostgresTarget:
    """`MessageTarget` on the cluster's message tables."""

    def __init__(self, pool: asyncpg.Pool, rows: PostgresRows) -> None:
        self._pool = pool
        self._rows = rows

    async def put_messages(self, messages: list[StoredMessage]) -> None:
        await self._copy(
            "messages",
            (
                "channel_id",
                "message_id",
                "sender_id",
                "body",
                "created_at",
                "client_msg_id",
                "edited_at",
                "deleted_by",
                "reply_to",
                "mentions",
            ),
            [
                (
                    m.channel_id,
                    m.message_id,
                    m.sender_id,
                    m.text.encode("utf-8"),
                    m.created_at,
                    m.client_msg_id,
                    m.edited_at,
                    _deleted_by(m),
                    m.reply_to,
                    m.mentions,
                )
                for m in messages
            ],
        )
        await self._copy(
            "message_reactions",
            ("channel_id", "message_id", "emoji", "user_id", "emoji_position", "user_position"),
            [row for m in messages for row in reaction_rows(m)],
        )

    async def put_inbox(self, entries: list[InboxRecord]) -> None:
        await self._copy(
            "inbox",
            ("user_id", "seq", "channel_id", "message_id", "update_kind"),
            [
                (e.user_id, e.seq, e.channel_id, e.message_id, update_code(e.update))
                for e in entries
            ],
        )

    async def put_sends(self, sends: list[SendRecord]) -> None:
        await self._copy(
            "sends",
            ("sender_id", "client_msg_id", "channel_id", "message_id", "seq"),
            [(s.sender_id, s.client_msg_id, s.channel_id, s.message_id, s.seq) for s in sends],
        )

    async def finish(self) -> None:
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute(
                "INSERT INTO channel_counters (channel_id, last_message_id)"
                " SELECT channel_id, MAX(message_id) FROM messages GROUP BY channel_id"
            )
            await connection.execute(
                "INSERT INTO inbox_counters (user_id, max_seq)"
                " SELECT user_id, MAX(seq) FROM inbox GROUP BY user_id"
            )
            for table in SQL_TABLES:
                if table.identity:
                    await connection.execute(
                        f"SELECT setval(pg_get_serial_sequence('{table.name}', '{table.identity}'),"
                        f" COALESCE(MAX({table.identity}), 0) + 1, false) FROM {table.name}"
                    )

    async def _copy(self, table: str, columns: tuple[str, ...], records: list[Any]) -> None:
        if not records:
            return
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.copy_records_to_table(table, records=records, columns=columns)


def _deleted_by(message: StoredMessage) -> int | None:
    """Who deleted the message; its sender when a deleted message's line does not say.

    The cluster marks a message deleted by naming who deleted it, and the
    message object of an export line leaves `deleted_by` out.
    """
    if message.deleted_by is not None or not message.deleted:
        return message.deleted_by
    return message.sender_id
