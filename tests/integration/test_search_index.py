"""The search index on its real engines (an SQLite file, a PostgreSQL schema) beside a real
message store (LevelDB, PostgreSQL), kept by the real indexer.

Events are handed to the indexer as the bus would; "a crash" is an index closed without
ending its run, so the next start must find out by itself what it missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import pytest

from chatapp.messaging import MessageAccepted, MessageStore, MessageUpdated, StoredMessage
from chatapp.messaging.adapters import LevelDBMessageStore
from chatapp.messaging.adapters.postgres_messages import PostgresMessageStore
from chatapp.messaging.models import Deletion, Edit
from chatapp.search import Indexer, SearchIndex, SortKey
from chatapp.search.adapters import SqliteSearchIndex
from chatapp.search.adapters.postgres_index import PostgresSearchIndex
from chatapp.search.models import Buried, Document
from chatapp.search.words import parse_query, text_digest
from chatapp.storage.postgres import apply_postgres_migrations, open_postgres
from tests.integration.store_engines import fresh_schema

SENDER = 1


@dataclass
class Deployment:
    """A message store and the index beside it, on one engine; indexes open and reopen."""

    engine: str
    store: MessageStore
    folder: Path
    pool: asyncpg.Pool | None = None
    opened: list[SearchIndex] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def index(self, writer: str = "w1") -> SearchIndex:
        opened: SearchIndex
        if self.pool is None:
            opened = await SqliteSearchIndex.open(self.folder / "search.sqlite3")
        else:
            opened = PostgresSearchIndex(self.pool, writer=writer)
        self.opened.append(opened)
        return opened

    async def send(self, channel_id: int, text: str, *, at: int = 1_000) -> StoredMessage:
        accepted = await self.store.append(
            sender_id=SENDER,
            channel_id=channel_id,
            client_msg_id=f"c{next(self._ids)}",
            text=text,
            member_ids=[SENDER],
            created_at=at,
        )
        return accepted.message

    async def edit(self, message: StoredMessage, text: str) -> MessageUpdated:
        edit = Edit(message.channel_id, message.message_id, text, (), edited_at=2_000)
        outcome = await self.store.change(edit, member_ids=[SENDER])
        return MessageUpdated(
            update="edited", message=outcome.message, inbox_seqs=outcome.inbox_seqs
        )

    async def delete(self, message: StoredMessage) -> MessageUpdated:
        deletion = Deletion(message.channel_id, message.message_id, deleted_by=SENDER)
        outcome = await self.store.change(deletion, member_ids=[SENDER])
        return MessageUpdated(
            update="deleted", message=outcome.message, inbox_seqs={}, deleted_by=SENDER
        )


@pytest.fixture(params=["sqlite", "postgresql"])
async def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Deployment]:
    async with contextlib.AsyncExitStack() as stack:
        if request.param == "sqlite":
            store: MessageStore = await LevelDBMessageStore.open(tmp_path / "messages")
            opened = Deployment("sqlite", store, tmp_path)
        else:
            url = await stack.enter_async_context(fresh_schema())
            pool = await open_postgres(url, max_size=8)
            stack.push_async_callback(pool.close)
            await apply_postgres_migrations(pool, now_ms=1)
            store = PostgresMessageStore(pool)
            opened = Deployment("postgresql", store, tmp_path, pool)
        try:
            yield opened
        finally:
            for index in opened.opened:
                await index.close()
            await store.close()


def accepted(message: StoredMessage) -> MessageAccepted:
    return MessageAccepted(message=message, inbox_seqs={SENDER: message.message_id})


async def settled(indexer: Indexer) -> None:
    """Wait until the indexer has written what it heard and finished walking."""
    for _ in range(1_000):
        if not indexer.backlog and not indexer.walking:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the indexer did not settle")


async def found(
    index: SearchIndex, q: str, channel_ids: list[int], *, limit: int = 1_000
) -> list[tuple[int, int]]:
    keys = await index.search(parse_query(q), channel_ids=channel_ids, before=None, limit=limit)
    return [key.message for key in keys]


async def started(
    index: SearchIndex, store: MessageStore, *, pending_messages: int = 50_000
) -> Indexer:
    indexer = Indexer(index, store, linger=0.0, pending_messages=pending_messages)
    await indexer.start()
    await settled(indexer)
    return indexer


async def test_results_are_newest_first_through_shared_milliseconds(
    deployment: Deployment,
) -> None:
    """Messages of three channels sharing a few milliseconds come newest first (created_at,
    then channel, then message id, all descending), page after page, whatever the limit."""
    sent = [
        await deployment.send(channel_id, f"tick {number}", at=1_000 + (number * 7) % 5)
        for number in range(40)
        for channel_id in (3, 1, 2)
    ]
    index = await deployment.index()
    indexer = await started(index, deployment.store)
    expected = sorted(
        (SortKey(m.created_at, m.channel_id, m.message_id) for m in sent), reverse=True
    )
    for limit in (1, 3, 7, 50, 200):
        pages: list[SortKey] = []
        before: SortKey | None = None
        while True:
            page = await index.search(
                parse_query("tick"), channel_ids=[1, 2, 3], before=before, limit=limit
            )
            pages += page
            if len(page) < limit:
                break
            before = page[-1]
        assert pages == expected, limit
    only_two = await index.search(parse_query("tick"), channel_ids=[2], before=None, limit=500)
    assert only_two == [key for key in expected if key.channel_id == 2]
    await indexer.close()


async def test_dropped_events_are_read_from_the_store(deployment: Deployment) -> None:
    """An indexer whose buffer overflows drops events and reads them from the store instead:
    every message, edit and deletion ends up in the index, and the run ends complete."""
    index = await deployment.index()
    indexer = await started(index, deployment.store, pending_messages=3)
    messages = [await deployment.send(1 + number % 2, f"burst {number}") for number in range(30)]
    for message in messages:
        await indexer.observe(accepted(message))
    edits = [
        await deployment.edit(message, f"rewritten {n}") for n, message in enumerate(messages[:8])
    ]
    deletions = [await deployment.delete(message) for message in messages[8:12]]
    for event in [*edits, *deletions]:
        await indexer.observe(event)
    assert indexer.dropped > 0
    await settled(indexer)
    left = [(m.channel_id, m.message_id) for m in messages[12:]]
    assert sorted(await found(index, "burst", [1, 2])) == sorted(left)
    assert sorted(await found(index, "rewritten", [1, 2])) == sorted(
        (m.channel_id, m.message_id) for m in messages[:8]
    )
    await indexer.close()
    assert await index.begin_run() is True


async def test_a_crash_is_followed_by_a_whole_check(deployment: Deployment) -> None:
    """After a run that never ended (a kill), the next start compares every message with
    the index: edits and deletions it never heard of, and messages it holds that the store
    does not, are put right."""
    index = await deployment.index()
    indexer = await started(index, deployment.store)
    kept = await deployment.send(1, "kept as sent")
    edited = await deployment.send(1, "before the edit")
    deleted = await deployment.send(2, "deleted unheard")
    for message in (kept, edited, deleted):
        await indexer.observe(accepted(message))
    await settled(indexer)
    async with index.changing([9]) as changes:
        ghost = Document(9, 1, 1_000, ("ghost",), text_digest("ghost"))
        await changes.add([ghost])
    assert await found(index, "ghost", [9]) == [(9, 1)]
    # Changes the indexer never hears of, then a stop without `close` (a kill).
    await deployment.edit(edited, "after the edit")
    await deployment.delete(deleted)
    assert indexer._task is not None
    indexer._task.cancel()
    index = await deployment.index()
    again = await started(index, deployment.store)
    assert await found(index, "after", [1, 2]) == [(1, 2)]
    assert await found(index, "before", [1, 2]) == []
    assert await found(index, "deleted", [1, 2]) == []
    assert await found(index, "ghost", [9]) == []
    assert await index.digests((2, 0), (2, 9), limit=10) == {(2, 1): None}
    assert await found(index, "kept", [1]) == [(1, 1)]
    await again.close()


async def test_a_clean_stop_catches_up_what_the_store_got_meanwhile(
    deployment: Deployment,
) -> None:
    """After a clean stop only what lies past each channel's mark is read: messages stored
    while the indexer was away (as by an import), in known channels and in new ones."""
    index = await deployment.index()
    indexer = await started(index, deployment.store)
    first = await deployment.send(4, "heard live")
    await indexer.observe(accepted(first))
    await indexer.close()
    # Channel ids only grow: a channel new since the stop is past every known one.
    unheard = [await deployment.send(channel_id, "stored meanwhile") for channel_id in (4, 7, 9)]
    again = await started(index, deployment.store)
    assert sorted(await found(index, "meanwhile", [4, 7, 9])) == sorted(
        (m.channel_id, m.message_id) for m in unheard
    )
    assert await index.marks(after=0, limit=10) == [(4, 2), (7, 1), (9, 1)]
    await again.close()


async def test_two_writers_converge_whatever_order_their_writes_land_in(
    deployment: Deployment,
) -> None:
    """Two writers (two nodes) each write the edits they heard of one message, in turns:
    the index ends with the last text, since an edit is written from a store read made
    under the channel's lock."""
    if deployment.engine != "postgresql":
        pytest.skip("one writer per SQLite file")
    one = await started(await deployment.index("n1"), deployment.store)
    two = await started(await deployment.index("n2"), deployment.store)
    message = await deployment.send(1, "version 0")
    await one.observe(accepted(message))
    for number in range(1, 21):
        event = await deployment.edit(message, f"version {number}")
        await (one if number % 2 else two).observe(event)
    await settled(one)
    await settled(two)
    index = deployment.opened[0]
    digests = await index.digests((1, 0), (1, 1), limit=1)
    assert digests == {(1, 1): text_digest("version 20")}
    await one.close()
    await two.close()


async def test_a_writer_left_unfinished_is_taken_over(deployment: Deployment) -> None:
    """A writer that stopped without ending its run (killed) is claimed by a live one once
    it has not been heard from for a minute; its own next start sees it too."""
    if deployment.engine != "postgresql":
        pytest.skip("one writer per SQLite file")
    assert deployment.pool is not None
    dead, live = await deployment.index("dead"), await deployment.index("live")
    assert await live.claim_abandoned() is True  # the migration's row: never built
    assert await dead.begin_run() is True
    assert await live.claim_abandoned() is False  # heard from just now
    await deployment.pool.execute("UPDATE search_writers SET seen_at = 0 WHERE writer = 'dead'")
    assert await live.claim_abandoned() is True
    assert await live.claim_abandoned() is False
    assert await dead.begin_run() is True  # claimed: its row was removed
    assert await dead.begin_run() is False  # a second start without an end: unfinished
    await dead.end_run(complete=True)
    assert await dead.begin_run() is True


async def test_compaction_leaves_no_deleted_words_in_the_file(tmp_path: Path) -> None:
    """Once compacted, the words of a deleted message are nowhere in the search file."""
    index = await SqliteSearchIndex.open(tmp_path / "search.sqlite3")
    try:
        secret = Document(1, 1, 1_000, ("zanzibarite",), text_digest("zanzibarite"))
        plain = Document(1, 2, 1_000, ("ordinary",), text_digest("ordinary"))
        async with index.changing([1]) as changes:
            await changes.add([secret, plain])
        async with index.changing([1]) as changes:
            await changes.bury([Buried(1, 1, 1_000)])
        await index.compact()
    finally:
        await index.close()
    for name in ("search.sqlite3", "search.sqlite3-wal"):
        path = tmp_path / name
        if path.exists():
            assert b"zanzibarite" not in path.read_bytes(), name
    assert b"ordinary" in (tmp_path / "search.sqlite3").read_bytes()
