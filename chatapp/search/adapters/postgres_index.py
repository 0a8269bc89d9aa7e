"""`SearchIndex` on PostgreSQL full-text search, for cluster mode (migration 010).

Every node writes the index, each what its own bus published, and any node
may catch up or check it. Writers keep apart by channel: a transaction takes
an advisory lock per channel it writes (in ascending order, so two never wait
on each other), and a message read from the store while the lock is held is
still its present state when written. Adding what is absent and burying a
deleted message are right whatever the order; replacing a text is made only
from a store read under the lock; so the index converges on the store
whichever node writes last.

Words arrive ready made (`chatapp.search.words`): documents are tsvector
literals and queries tsquery literals, every word quoted, so no text search
configuration and no parser takes part and user input is never syntax.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Collection, Sequence
from typing import Any, Final

import asyncpg

from chatapp.search.index import IndexChanges, SearchIndexError
from chatapp.search.models import Buried, Document, MessageKey, SortKey
from chatapp.search.words import WordQuery
from chatapp.storage.postgres import ENGINE_ERRORS, raises

MAX_POSITION: Final = 16383
"""PostgreSQL's last word position; words further into a text share it."""
MAX_POSITIONS: Final = 256
"""The positions PostgreSQL keeps per word of a document."""
STALE_MS: Final = 60_000
"""A writer not heard from for this long is taken for dead, its unfinished run for abandoned."""
_OFF_LOOP_WORDS: Final = 20_000
"""Past this many words in a write, the literals are made on a thread, not the event loop."""

_NOW = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint"
_BEGIN = f"""
INSERT INTO search_writers (writer, started_at, seen_at) VALUES ($1, {_NOW}, {_NOW})
ON CONFLICT (writer) DO UPDATE SET started_at = excluded.started_at, seen_at = excluded.seen_at
RETURNING (xmax = 0) AS fresh
"""
_ALIVE = f"""
INSERT INTO search_writers (writer, started_at, seen_at) VALUES ($1, {_NOW}, {_NOW})
ON CONFLICT (writer) DO UPDATE SET seen_at = excluded.seen_at
"""
_LEFT_UNFINISHED = """
INSERT INTO search_writers (writer, started_at, seen_at) VALUES ($1, 0, 0)
ON CONFLICT (writer) DO UPDATE SET seen_at = 0
"""
_CLAIM = f"""
DELETE FROM search_writers WHERE writer <> $1 AND seen_at < {_NOW} - $2 RETURNING writer
"""
_LOCK = """
SELECT pg_advisory_xact_lock(
    hashtext('chatapp.search.' || coalesce(current_schema(), '')), (c % 2147483647)::int)
FROM unnest($1::bigint[]) AS c
"""
_ROWS = """
SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bytea[], $5::text[])
    AS given(channel_id, message_id, created_at, digest, words)
"""
_ADD = f"""
INSERT INTO search_documents (channel_id, message_id, created_at, digest, words)
SELECT channel_id, message_id, created_at, digest, words::tsvector FROM ({_ROWS}) AS rows
ON CONFLICT (channel_id, message_id) DO NOTHING
"""
_REPLACE = f"""
INSERT INTO search_documents (channel_id, message_id, created_at, digest, words)
SELECT channel_id, message_id, created_at, digest, words::tsvector FROM ({_ROWS}) AS rows
ON CONFLICT (channel_id, message_id) DO UPDATE SET digest = excluded.digest, words = excluded.words
WHERE search_documents.digest IS NOT NULL
"""
_BURY = """
INSERT INTO search_documents (channel_id, message_id, created_at, digest, words)
SELECT channel_id, message_id, created_at, NULL, ''::tsvector
FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS given(channel_id, message_id, created_at)
ON CONFLICT (channel_id, message_id) DO UPDATE SET digest = NULL, words = ''::tsvector
"""
_DROP = """
DELETE FROM search_documents AS d USING unnest($1::bigint[], $2::bigint[]) AS k(c, m)
WHERE d.channel_id = k.c AND d.message_id = k.m
"""
_LOWER_MARKS = """
UPDATE search_channels AS s SET indexed_through = k.m - 1
FROM (SELECT c, min(m) AS m FROM unnest($1::bigint[], $2::bigint[]) AS k(c, m) GROUP BY c) AS k
WHERE s.channel_id = k.c AND s.indexed_through >= k.m
"""
# A channel's mark moves over the messages right above it: those whose id
# minus their rank above the mark is still the mark.
_ADVANCE = """
INSERT INTO search_channels (channel_id, indexed_through)
SELECT channel_id, max(message_id) FROM (
    SELECT d.channel_id, d.message_id, coalesce(m.indexed_through, 0) AS mark,
        d.message_id - row_number() OVER (
            PARTITION BY d.channel_id ORDER BY d.message_id) AS offset_below
    FROM search_documents AS d LEFT JOIN search_channels AS m ON m.channel_id = d.channel_id
    WHERE d.channel_id = ANY($1::bigint[]) AND d.message_id > coalesce(m.indexed_through, 0)
) AS above WHERE offset_below = mark GROUP BY channel_id
ON CONFLICT (channel_id) DO UPDATE SET indexed_through = excluded.indexed_through
"""
_SEARCH = """
SELECT created_at, channel_id, message_id FROM search_documents
WHERE words @@ $1::tsquery AND channel_id = ANY($2::bigint[])
    AND (created_at, channel_id, message_id) < ($3, $4, $5)
ORDER BY created_at DESC, channel_id DESC, message_id DESC
LIMIT $6
"""
_TOP: Final = SortKey(2**63 - 1, 0, 0)


def lexeme(word: str) -> str:
    """A word quoted for a tsvector or tsquery literal."""
    return "'" + word.replace("\\", "\\\\").replace("'", "''") + "'"


def tsvector_literal(words: Sequence[str]) -> str:
    """The words with their positions (from 1), as PostgreSQL reads a tsvector."""
    positions: dict[str, list[int]] = {}
    for index, word in enumerate(words, start=1):
        found = positions.setdefault(word, [])
        position = min(index, MAX_POSITION)
        if len(found) < MAX_POSITIONS and (not found or found[-1] != position):
            found.append(position)
    return " ".join(
        f"{lexeme(word)}:{','.join(map(str, spots))}" for word, spots in positions.items()
    )


def tsquery_literal(query: WordQuery) -> str:
    """Every term a phrase of quoted words (`<->`), all required (`&`); a prefix ends in `:*`."""
    terms = []
    for term in query.terms:
        lexemes = [lexeme(word) for word in term.words]
        if term.prefix:
            lexemes[-1] += ":*"
        terms.append("(" + " <-> ".join(lexemes) + ")")
    return " & ".join(terms)


@raises(SearchIndexError)
class PostgresSearchIndex:
    """`SearchIndex` in the cluster's database; `writer` names this node's run."""

    def __init__(self, pool: asyncpg.Pool, *, writer: str) -> None:
        self._pool = pool
        self._writer = writer

    # -- the run -------------------------------------------------------------------------

    async def begin_run(self) -> bool:
        """True unless this writer's row was left behind: its last run ended unfinished."""
        return bool(await self._pool.fetchval(_BEGIN, self._writer))

    async def end_run(self, *, complete: bool) -> None:
        if complete:
            await self._pool.execute("DELETE FROM search_writers WHERE writer = $1", self._writer)
        else:
            await self._pool.execute(_LEFT_UNFINISHED, self._writer)

    async def claim_abandoned(self) -> bool:
        async with self._pool.acquire() as connection:
            await connection.execute(_ALIVE, self._writer)
            claimed = await connection.fetch(_CLAIM, self._writer, STALE_MS)
        return bool(claimed)

    # -- reads for the indexer -----------------------------------------------------------

    async def marks(self, *, after: int, limit: int) -> list[tuple[int, int]]:
        rows = await self._pool.fetch(
            "SELECT channel_id, indexed_through FROM search_channels WHERE channel_id > $1"
            " ORDER BY channel_id LIMIT $2",
            after,
            limit,
        )
        return [(row[0], row[1]) for row in rows]

    async def digests(
        self, after: MessageKey, through: MessageKey, *, limit: int
    ) -> dict[MessageKey, bytes | None]:
        rows = await self._pool.fetch(
            "SELECT channel_id, message_id, digest FROM search_documents"
            " WHERE (channel_id, message_id) > ($1, $2) AND (channel_id, message_id) <= ($3, $4)"
            " ORDER BY channel_id, message_id LIMIT $5",
            *after,
            *through,
            limit,
        )
        return {(row[0], row[1]): None if row[2] is None else bytes(row[2]) for row in rows}

    # -- writes ----------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def changing(self, channel_ids: Collection[int]) -> AsyncIterator[IndexChanges]:
        locked = sorted(set(channel_ids))
        try:
            async with self._pool.acquire() as connection, connection.transaction():
                await connection.execute(_LOCK, locked)
                changes = _PostgresChanges(connection, set(locked))
                yield changes
                await connection.execute(_ADVANCE, sorted(changes.locked))
        except ENGINE_ERRORS as failure:
            raise SearchIndexError(f"{type(failure).__name__}: {failure}") from failure

    async def clear(self) -> None:
        """Forget every message and mark, and every other writer's unfinished run (this
        writer's stays, unfinished, until the index is filled again and its run ends)."""
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute("TRUNCATE search_documents, search_channels")
            await connection.execute("DELETE FROM search_writers WHERE writer <> $1", self._writer)
            await connection.execute(_ALIVE, self._writer)

    async def compact(self) -> None:
        """Nothing to do: autovacuum reclaims the old row versions, as for the messages."""

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
        rows = await self._pool.fetch(
            _SEARCH,
            tsquery_literal(query),
            sorted(set(channel_ids)),
            bound.created_at,
            bound.channel_id,
            bound.message_id,
            limit,
        )
        return [SortKey(row[0], row[1], row[2]) for row in rows]

    async def close(self) -> None:
        """The pool is the cluster's: closed with the other stores."""


@raises(SearchIndexError)
class _PostgresChanges:
    """The writes of one transaction; a channel not locked yet is locked before its write."""

    def __init__(self, connection: asyncpg.Connection, locked: set[int]) -> None:
        self._db = connection
        self.locked = locked

    async def add(self, documents: Sequence[Document]) -> None:
        if documents:
            await self._lock_more(document.channel_id for document in documents)
            await self._db.execute(_ADD, *await _columns(documents))

    async def replace(self, documents: Sequence[Document]) -> None:
        if documents:
            await self._lock_more(document.channel_id for document in documents)
            await self._db.execute(_REPLACE, *await _columns(documents))

    async def bury(self, deleted: Sequence[Buried]) -> None:
        if deleted:
            await self._lock_more(item.channel_id for item in deleted)
            await self._db.execute(
                _BURY,
                [item.channel_id for item in deleted],
                [item.message_id for item in deleted],
                [item.created_at for item in deleted],
            )

    async def drop(self, keys: Sequence[MessageKey]) -> None:
        if keys:
            await self._lock_more(channel_id for channel_id, _ in keys)
            columns = [key[0] for key in keys], [key[1] for key in keys]
            await self._db.execute(_DROP, *columns)
            await self._db.execute(_LOWER_MARKS, *columns)

    async def _lock_more(self, channel_ids: Any) -> None:
        more = sorted(set(channel_ids) - self.locked)
        if more:
            await self._db.execute(_LOCK, more)
            self.locked.update(more)


async def _columns(documents: Sequence[Document]) -> list[list[Any]]:
    if sum(len(document.words) for document in documents) > _OFF_LOOP_WORDS:
        literals = await asyncio.to_thread(lambda: [tsvector_literal(d.words) for d in documents])
    else:
        literals = [tsvector_literal(document.words) for document in documents]
    return [
        [document.channel_id for document in documents],
        [document.message_id for document in documents],
        [document.created_at for document in documents],
        [document.digest for document in documents],
        literals,
    ]
