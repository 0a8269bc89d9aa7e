"""Walking a whole message store page by page, and loading one from the walk.

The same sends go into the in-memory fake, LevelDB and PostgreSQL; each walk
(messages, inbox entries, idempotency records) must give the same records in
the same order whatever the page size, and a LevelDB store loaded from them
must open clean and continue every id and seq.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from chatapp.messaging import (
    InboxRecord,
    MessageStore,
    MessageStoreError,
    SendRecord,
    StoredMessage,
)
from chatapp.messaging.adapters import LevelDBMessageStore
from chatapp.messaging.adapters.leveldb_load import LevelDBLoader
from chatapp.messaging.adapters.postgres_messages import PostgresMessageStore
from chatapp.testing.fakes import FakeMessageStore
from tests.integration.store_engines import fresh_schema

MIGRATIONS = sorted((Path(__file__).resolve().parents[2] / "migrations/postgresql").glob("*.sql"))
SENDS = [
    (sender, channel, f"{tag}-{number}")
    for number in range(7)
    for sender, channel, tag in ((1, 10, "b"), (2, 10, "a"), (3, 11, "zz"), (1, 11, "A"))
]
MEMBERS = {10: (1, 2, 3), 11: (1, 3)}


@contextlib.asynccontextmanager
async def opened(engine: str, tmp_path: Path) -> AsyncIterator[MessageStore]:
    if engine == "fake":
        yield FakeMessageStore()
    elif engine == "leveldb":
        store = await LevelDBMessageStore.open(tmp_path / "messages")
        try:
            yield store
        finally:
            await store.close()
    else:
        async with fresh_schema() as url:
            pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
            try:
                for migration in MIGRATIONS:
                    await pool.execute(migration.read_text())
                store_pg = PostgresMessageStore(pool)
                yield store_pg
                await store_pg.close()
            finally:
                await pool.close()


async def fill(store: MessageStore) -> None:
    for sender, channel, client_msg_id in SENDS:
        await store.append(
            sender_id=sender,
            channel_id=channel,
            client_msg_id=client_msg_id,
            text=f"text of {client_msg_id} \u00e9",
            member_ids=MEMBERS[channel],
            created_at=1_000,
        )


async def walk(store: MessageStore, limit: int) -> tuple[list[Any], list[Any], list[Any]]:
    messages: list[StoredMessage] = []
    while page := await store.scan_messages(
        after=(messages[-1].channel_id, messages[-1].message_id) if messages else (0, 0),
        limit=limit,
    ):
        assert len(page) <= limit
        messages += page
    inbox: list[InboxRecord] = []
    while entries := await store.scan_inbox(
        after=(inbox[-1].user_id, inbox[-1].seq) if inbox else (0, 0), limit=limit
    ):
        inbox += entries
    sends: list[SendRecord] = []
    while records := await store.scan_sends(
        after=(sends[-1].sender_id, sends[-1].client_msg_id) if sends else None, limit=limit
    ):
        sends += records
    return messages, inbox, sends


@pytest.mark.parametrize("engine", ["fake", "leveldb", "postgresql"])
@pytest.mark.parametrize("limit", [1, 3, 1000])
async def test_every_engine_walks_the_same_records_in_key_order(
    engine: str, limit: int, tmp_path: Path
) -> None:
    """Each walk gives every record once, in key order, the same on every engine."""
    async with opened(engine, tmp_path) as store:
        await fill(store)
        messages, inbox, sends = await walk(store, limit)
    assert len(messages) == len(SENDS)
    assert [(m.channel_id, m.message_id) for m in messages] == sorted(
        (m.channel_id, m.message_id) for m in messages
    )
    assert len(inbox) == sum(len(MEMBERS[channel]) for _, channel, _ in SENDS)
    assert [(e.user_id, e.seq) for e in inbox] == sorted((e.user_id, e.seq) for e in inbox)
    # By sender, then by the bytes of the client_msg_id: "A-0" before "b-0".
    keys = [(s.sender_id, s.client_msg_id.encode()) for s in sends]
    assert keys == sorted(keys)
    assert len(keys) == len(SENDS)
    async with opened("fake", tmp_path) as reference:
        await fill(reference)
        assert (messages, inbox, sends) == await walk(reference, 1000)


async def test_a_loaded_leveldb_store_opens_clean_and_continues_every_counter(
    tmp_path: Path,
) -> None:
    """Records loaded into an empty folder: the start-up survey passes, ids and seqs go on."""
    async with opened("fake", tmp_path) as source:
        await fill(source)
        messages, inbox, sends = await walk(source, 1000)
    loader = LevelDBLoader(tmp_path / "loaded")
    loader.put_messages(messages)
    loader.put_inbox(inbox)
    loader.put_sends(sends)
    loader.finish()
    store = await LevelDBMessageStore.open(tmp_path / "loaded")
    try:
        assert not store.created
        assert (await store.survey()).problems == []
        assert await walk(store, 1000) == (messages, inbox, sends)
        accepted = await store.append(
            sender_id=2,
            channel_id=11,
            client_msg_id="new",
            text="after",
            member_ids=MEMBERS[11],
            created_at=2_000,
        )
        assert accepted.message.message_id == source_last(messages, 11) + 1
        assert accepted.inbox_seqs[1] == max(e.seq for e in inbox if e.user_id == 1) + 1
        repeat = await store.original(1, "A-3")
        assert repeat is not None
        assert repeat.message.client_msg_id == "A-3"
    finally:
        await store.close()


def source_last(messages: list[StoredMessage], channel_id: int) -> int:
    return max(m.message_id for m in messages if m.channel_id == channel_id)


def test_a_loader_refuses_a_folder_that_has_a_store(tmp_path: Path) -> None:
    """Loading never writes over a store: a folder with files in it is refused."""
    (tmp_path / "messages").mkdir()
    (tmp_path / "messages" / "CURRENT").write_text("x")
    with pytest.raises(MessageStoreError, match="not empty"):
        LevelDBLoader(tmp_path / "messages")


@pytest.mark.parametrize("engine", ["fake", "leveldb", "postgresql"])
async def test_every_engine_counts_its_messages_without_a_walk(engine: str, tmp_path: Path) -> None:
    """`messages_stored`: 0 when empty, then one per accepted send; a repeated send is the
    same message and is not counted again (the admin page's figure)."""
    async with opened(engine, tmp_path) as store:
        assert await store.messages_stored() == 0
        await fill(store)
        assert await store.messages_stored() == len(SENDS)
        sender, channel, client_msg_id = SENDS[0]
        await store.append(
            sender_id=sender,
            channel_id=channel,
            client_msg_id=client_msg_id,
            text="again",
            member_ids=MEMBERS[channel],
            created_at=2_000,
        )
        assert await store.messages_stored() == len(SENDS)
