"""`SearchIndex` in an SQLite file of its own (`search.sqlite3`), with FTS5.

Two connections: the indexer writes on one, in transactions that one lock
keeps apart; searches read on the other, so a search never waits behind a
write (WAL mode), and a write never waits for a search.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator, Collection, Sequence
from pathlib import Path
from typing import Any, Final

import aiosqlite

from chatapp.search.adapters.sqlite_schema import (
    BUCKET_BITS,
    PRAGMAS,
    bucket,
    prepare_file,
    remove_file,
)
from chatapp.search.index import IndexChanges, SearchIndexError
from chatapp.search.models import Buried, Document, MessageKey, SortKey
from chatapp.search.words import WORDS_VERSION, WordQuery
from chatapp.storage.sqlite import raises

CONNECTIONS: Final = 2
"""The connections an index keeps open: the writer's and the reader's."""

_INT_MAX: Final = 2**63 - 1
_TOP: Final = SortKey(_INT_MAX, 0, 0)
"""Above every message: the cursor of a first page."""

_ADD = """
INSERT INTO documents (doc_id, channel_id, message_id, created_at, digest, words)
VALUES (
    (SELECT coalesce(max(doc_id) + 1, :low) FROM documents WHERE doc_id BETWEEN :low AND :high),
    :channel_id, :message_id, :created_at, :digest, :words)
ON CONFLICT (channel_id, message_id) DO NOTHING
"""
_REPLACE = """
UPDATE documents SET digest = :digest, words = :words
WHERE channel_id = :channel_id AND message_id = :message_id AND digest IS NOT NULL
"""
_BURY = """
INSERT INTO documents (doc_id, channel_id, message_id, created_at, digest, words)
VALUES (
    (SELECT coalesce(max(doc_id) + 1, :low) FROM documents WHERE doc_id BETWEEN :low AND :high),
    :channel_id, :message_id, :created_at, NULL, NULL)
ON CONFLICT (channel_id, message_id) DO UPDATE SET digest = NULL, words = NULL
"""
_DROP = "DELETE FROM documents WHERE channel_id = ? AND message_id = ?"
_LOWER_MARK = (
    "UPDATE channels SET indexed_through = :message_id - 1"
    " WHERE channel_id = :channel_id AND indexed_through >= :message_id"
)
# A channel's mark moves over the messages right above it: those whose id
# minus their rank above the mark is still the mark.
_ADVANCE = """
INSERT INTO channels (channel_id, indexed_through)
SELECT channel_id, max(message_id) FROM (
    SELECT d.channel_id, d.message_id, coalesce(m.indexed_through, 0) AS mark,
        d.message_id - row_number() OVER (
            PARTITION BY d.channel_id ORDER BY d.message_id) AS offset_below
    FROM documents AS d LEFT JOIN channels AS m ON m.channel_id = d.channel_id
    WHERE d.channel_id IN (SELECT value FROM json_each(:channels))
        AND d.message_id > coalesce(m.indexed_through, 0)
) WHERE offset_below = mark GROUP BY channel_id
ON CONFLICT (channel_id) DO UPDATE SET indexed_through = excluded.indexed_through
"""
_MATCHED = """
SELECT d.doc_id, d.created_at, d.channel_id, d.message_id
FROM word_index CROSS JOIN documents AS d ON d.doc_id = word_index.rowid
WHERE word_index MATCH :match
    AND word_index.rowid BETWEEN :low AND :high
    AND d.channel_id IN (SELECT value FROM json_each(:channels))
    AND (d.created_at, d.channel_id, d.message_id) < (:created_at, :channel_id, :message_id)
"""
# FTS5 hands its matches out newest doc_id first, so this stops after `limit`.
_NEWEST = _MATCHED + "ORDER BY word_index.rowid DESC LIMIT :limit"
# The messages of one millisecond, in the results' own order.
_IN_BUCKET = (
    _MATCHED + "ORDER BY d.created_at DESC, d.channel_id DESC, d.message_id DESC LIMIT :limit"
)


def fts5_match(query: WordQuery) -> str:
    """The query in FTS5's syntax: every term a quoted string, so nothing in it is an operator.

    Words hold only letters, digits and marks; quotes are doubled all the same.
    """
    phrases = []
    for term in query.terms:
        quoted = '"' + " ".join(term.words).replace('"', '""') + '"'
        phrases.append(quoted + " *" if term.prefix else quoted)
    return " AND ".join(phrases)


async def _connect(path: Path, *, read_only: bool) -> aiosqlite.Connection:
    connection = await aiosqlite.connect(path, isolation_level=None)
    for pragma in PRAGMAS:
        await connection.execute(pragma)
    if read_only:
        await connection.execute("PRAGMA query_only=ON")
    return connection


@raises(SearchIndexError)
class SqliteSearchIndex:
    """`SearchIndex` in one SQLite file; open it with `open`."""

    def __init__(
        self, path: Path, writer: aiosqlite.Connection, reader: aiosqlite.Connection
    ) -> None:
        self.path = path
        self._writer = writer
        self._reader = reader
        self._lock = asyncio.Lock()
        self._closed = False

    @classmethod
    async def open(cls, path: Path) -> SqliteSearchIndex:
        """The index in `path`, made (or made again) when it is not a usable one."""
        try:
            await asyncio.to_thread(prepare_file, path, WORDS_VERSION)
            writer = await _connect(path, read_only=False)
        except (sqlite3.Error, OSError) as failure:
            raise SearchIndexError(f"cannot open {path}: {failure}") from failure
        try:
            reader = await _connect(path, read_only=True)
        except (sqlite3.Error, OSError) as failure:
            await writer.close()
            raise SearchIndexError(f"cannot open {path}: {failure}") from failure
        return cls(path, writer, reader)

    # -- the run -------------------------------------------------------------------------

    async def begin_run(self) -> bool:
        async with self._lock:
            rows = await self._writer.execute_fetchall("SELECT clean FROM run")
            row = next(iter(rows), None)
            await self._writer.execute("UPDATE run SET clean = 0")
        return bool(row is not None and row[0])

    async def end_run(self, *, complete: bool) -> None:
        async with self._lock:
            await self._writer.execute("UPDATE run SET clean = ?", (int(complete),))

    async def claim_abandoned(self) -> bool:
        return False

    # -- reads for the indexer -----------------------------------------------------------

    async def marks(self, *, after: int, limit: int) -> list[tuple[int, int]]:
        sql = (
            "SELECT channel_id, indexed_through FROM channels WHERE channel_id > ?"
            " ORDER BY channel_id LIMIT ?"
        )
        rows = await self._writer.execute_fetchall(sql, (after, limit))
        return [(row[0], row[1]) for row in rows]

    async def digests(
        self, after: MessageKey, through: MessageKey, *, limit: int
    ) -> dict[MessageKey, bytes | None]:
        sql = (
            "SELECT channel_id, message_id, digest FROM documents"
            " WHERE (channel_id, message_id) > (?, ?) AND (channel_id, message_id) <= (?, ?)"
            " ORDER BY channel_id, message_id LIMIT ?"
        )
        rows = await self._writer.execute_fetchall(sql, (*after, *through, limit))
        return {(row[0], row[1]): row[2] for row in rows}

    # -- writes ----------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def changing(self, channel_ids: Collection[int]) -> AsyncIterator[IndexChanges]:
        async with self._lock:
            try:
                await self._writer.execute("BEGIN IMMEDIATE")
            except (sqlite3.Error, ValueError) as failure:
                raise SearchIndexError(f"{type(failure).__name__}: {failure}") from failure
            changes = _SqliteChanges(self._writer)
            try:
                yield changes
                touched = sorted({*channel_ids, *changes.channels})
                await self._writer.execute(_ADVANCE, {"channels": json.dumps(touched)})
                await self._writer.execute("COMMIT")
            except BaseException as failure:
                with contextlib.suppress(sqlite3.Error, ValueError):
                    await self._writer.execute("ROLLBACK")
                if isinstance(failure, sqlite3.Error | ValueError):
                    raise SearchIndexError(f"{type(failure).__name__}: {failure}") from failure
                raise

    async def clear(self) -> None:
        async with self._lock:
            await self._writer.close()
            await self._reader.close()
            await asyncio.to_thread(remove_file, self.path)
            await asyncio.to_thread(prepare_file, self.path, WORDS_VERSION)
            self._writer = await _connect(self.path, read_only=False)
            self._reader = await _connect(self.path, read_only=True)

    async def compact(self) -> None:
        async with self._lock:
            await self._writer.execute("INSERT INTO word_index (word_index) VALUES ('optimize')")
            # Copy the WAL's pages into the file and empty it, old words with them.
            await self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # -- search ----------------------------------------------------------------------------

    async def search(
        self,
        query: WordQuery,
        *,
        channel_ids: Sequence[int],
        before: SortKey | None,
        limit: int,
    ) -> list[SortKey]:
        if not channel_ids or limit <= 0:
            return []
        bound = before or _TOP
        high = _INT_MAX
        if before is not None:
            high = min(_INT_MAX, ((bucket(before.created_at) + 1) << BUCKET_BITS) - 1)
        arguments: dict[str, Any] = {
            "match": fts5_match(query),
            "channels": json.dumps(sorted(set(channel_ids))),
            "created_at": bound.created_at,
            "channel_id": bound.channel_id,
            "message_id": bound.message_id,
            "low": 0,
            "high": high,
            "limit": limit,
        }
        newest = await self._rows(_NEWEST, arguments)
        if len(newest) < limit:
            return sorted((key for _, key in newest), reverse=True)
        # The last millisecond reached may hold more matches than the page took:
        # take the page's rest from it in the results' order.
        last = newest[-1][0] >> BUCKET_BITS
        above = sorted(
            (key for doc_id, key in newest if doc_id >> BUCKET_BITS > last), reverse=True
        )
        arguments.update(
            low=last << BUCKET_BITS,
            high=min(high, ((last + 1) << BUCKET_BITS) - 1),
            limit=limit - len(above),
        )
        return above + [key for _, key in await self._rows(_IN_BUCKET, arguments)]

    async def _rows(self, sql: str, arguments: dict[str, Any]) -> list[tuple[int, SortKey]]:
        rows = await self._reader.execute_fetchall(sql, arguments)
        return [(row[0], SortKey(row[1], row[2], row[3])) for row in rows]

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        async with self._lock:
            await self._writer.close()
            await self._reader.close()


@raises(SearchIndexError)
class _SqliteChanges:
    """The writes of one transaction; `channels` are those it touched."""

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._db = connection
        self.channels: set[int] = set()

    async def add(self, documents: Sequence[Document]) -> None:
        await self._db.executemany(_ADD, [_row(document) for document in documents])
        self.channels.update(document.channel_id for document in documents)

    async def replace(self, documents: Sequence[Document]) -> None:
        rows = [_row(document) for document in documents]
        await self._db.executemany(_REPLACE, rows)
        await self._db.executemany(_ADD, rows)
        self.channels.update(document.channel_id for document in documents)

    async def bury(self, deleted: Sequence[Buried]) -> None:
        rows = [
            {**_slot(item.created_at), "channel_id": item.channel_id,
             "message_id": item.message_id, "created_at": item.created_at}
            for item in deleted
        ]  # fmt: skip
        await self._db.executemany(_BURY, rows)
        self.channels.update(item.channel_id for item in deleted)

    async def drop(self, keys: Sequence[MessageKey]) -> None:
        await self._db.executemany(_DROP, list(keys))
        await self._db.executemany(
            _LOWER_MARK, [{"channel_id": c, "message_id": m} for c, m in keys]
        )
        self.channels.update(channel_id for channel_id, _ in keys)


def _slot(created_at: int) -> dict[str, int]:
    low = bucket(created_at) << BUCKET_BITS
    return {"low": low, "high": low + (1 << BUCKET_BITS) - 1}


def _row(document: Document) -> dict[str, Any]:
    return {
        **_slot(document.created_at),
        "channel_id": document.channel_id,
        "message_id": document.message_id,
        "created_at": document.created_at,
        "digest": document.digest,
        "words": " ".join(document.words),
    }
