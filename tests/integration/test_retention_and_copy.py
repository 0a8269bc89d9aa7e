"""Retention's ledgers on LevelDB and PostgreSQL, and the message store's snapshot copy.

On real engines: channels found by skip scan and by `channel_counters`,
cursors that only move forward and survive a reopen, PostgreSQL's turn
held by one pool at a time, and a copy of a store that keeps being written
to, which holds exactly what had landed when it began.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from chatapp.bootstrap.maintenance import check_folder
from chatapp.messaging.adapters import LevelDBMessageStore, leveldb_copy
from chatapp.messaging.adapters.leveldb_copy import CopyFailed, copy_store
from chatapp.messaging.adapters.leveldb_retention import LevelDBRetentionLedger
from chatapp.messaging.adapters.leveldb_watermark import read_watermark
from chatapp.messaging.adapters.postgres_messages import PostgresMessageStore
from chatapp.messaging.adapters.postgres_retention import PostgresRetention
from chatapp.messaging.models import Deletion
from chatapp.messaging.retention import ChannelCursor
from chatapp.messaging.store import MessageStore
from chatapp.storage.postgres import apply_postgres_migrations, open_postgres

# Letters in no other record, no four of them in a row twice: LevelDB compresses its
# tables (Snappy copies runs of four bytes or more it has seen), so only such a text is
# sure to show in the files as written.
MARKER = "qzxjvkwbmfhgtydr"


async def send(store: MessageStore, channel_id: int, count: int, *, sender: int = 1) -> None:
    for number in range(count):
        await store.append(
            sender_id=sender,
            channel_id=channel_id,
            client_msg_id=f"{channel_id}-{number}",
            text=f"message {number}",
            member_ids=[1, 2],
            created_at=1000 + number,
        )


@pytest.fixture
async def leveldb(tmp_path: Path) -> AsyncIterator[LevelDBMessageStore]:
    store = await LevelDBMessageStore.open(tmp_path / "messages")
    try:
        yield store
    finally:
        await store.close()


async def test_the_leveldb_ledger_lists_channels_and_keeps_cursors(
    leveldb: LevelDBMessageStore, tmp_path: Path
) -> None:
    """Channels with messages come in id order, a page at a time, with their last message id;
    a cursor moves only forward in effect and is there after a reopen, and `chatapp check`
    takes the cursors for records it knows."""
    for channel_id, count in ((3, 2), (7, 5), (2**40, 1)):
        await send(leveldb, channel_id, count)
    ledger = LevelDBRetentionLedger(leveldb)

    assert await ledger.channels(after=0, limit=10) == [
        ChannelCursor(3, 0, 2), ChannelCursor(7, 0, 5), ChannelCursor(2**40, 0, 1),
    ]  # fmt: skip
    assert [c.channel_id for c in await ledger.channels(after=3, limit=1)] == [7]
    assert await ledger.channels(after=2**40, limit=10) == []
    await ledger.advance(7, 4)
    assert (await ledger.channels(after=3, limit=1))[0].expired_through == 4

    await leveldb.close()
    reopened = await LevelDBMessageStore.open(tmp_path / "messages")
    try:
        assert (await LevelDBRetentionLedger(reopened).channels(after=6, limit=1)) == [
            ChannelCursor(7, 4, 5)
        ]
    finally:
        await reopened.close()
    checked = await check_folder(tmp_path)
    assert not [line for line in checked.lines if line.startswith("messages:")], checked.lines


async def test_a_copy_holds_what_had_landed_when_it_began_while_writes_go_on(
    leveldb: LevelDBMessageStore, tmp_path: Path
) -> None:
    """The copy is a store of its own with everything written before the copy began, and
    sends keep landing while it is made; a deleted text is not in the copy's files."""
    await send(leveldb, 1, 3000)
    secret = await leveldb.append(
        sender_id=1,
        channel_id=1,
        client_msg_id="hidden-one",
        text=MARKER,
        member_ids=[1, 2],
        created_at=2000,
    )
    deletion = Deletion(channel_id=1, message_id=secret.message.message_id, deleted_by=1)
    await leveldb.change(deletion, member_ids=[1, 2])
    stop = asyncio.Event()
    written: list[int] = []

    async def keep_writing() -> None:
        number = 0
        while not stop.is_set():
            accepted = await leveldb.append(
                sender_id=2,
                channel_id=9,
                client_msg_id=f"late-{number}",
                text="late",
                member_ids=[1, 2],
                created_at=5000,
            )
            written.append(accepted.message.message_id)
            number += 1

    writer = asyncio.create_task(keep_writing())
    await asyncio.sleep(0.05)
    before = len(written)
    copied = await copy_store(leveldb.run_off_loop, tmp_path / "copy" / "messages")
    stop.set()
    await writer

    assert copied.messages >= 3001 + before
    assert copied.last_message_ids[1] == 3001
    assert len(written) > before + 1, "the writes stopped while the copy was made"
    mark = read_watermark(tmp_path / "copy" / "messages")
    assert mark is not None
    assert (mark.messages_stored, mark.closed_cleanly) == (copied.messages, True)
    copy = await LevelDBMessageStore.open(tmp_path / "copy" / "messages")
    try:
        page = await copy.history(1, limit=3)
        assert [m.deleted for m in page.messages] == [False, False, True]
        deleted = await copy.get(1, 3001)
        assert deleted is not None
        assert (deleted.deleted, deleted.text) == (True, "")
        in_copy = (await copy.history(9, limit=10_000)).messages
        assert [m.message_id for m in in_copy] == list(range(1, len(in_copy) + 1))
        assert len(in_copy) >= before
    finally:
        await copy.close()
    files = b"".join(path.read_bytes() for path in (tmp_path / "copy" / "messages").iterdir())
    assert MARKER.encode() not in files
    assert leveldb.damage() is None


async def test_a_copy_into_an_existing_store_fails_without_harm(
    leveldb: LevelDBMessageStore, tmp_path: Path
) -> None:
    """A target that is a store already is refused as CopyFailed; the serving store is not
    taken for damaged."""
    await send(leveldb, 1, 3)
    await copy_store(leveldb.run_off_loop, tmp_path / "copy")
    with pytest.raises(CopyFailed):
        await copy_store(leveldb.run_off_loop, tmp_path / "copy")
    assert leveldb.damage() is None
    assert (await leveldb.history(1)).messages[-1].message_id == 3


@pytest.fixture
async def pools(postgres_schema_url: str) -> AsyncIterator[tuple[asyncpg.Pool, asyncpg.Pool]]:
    """Two nodes' pools on one migrated schema."""
    first = await open_postgres(postgres_schema_url, max_size=3)
    second = await open_postgres(postgres_schema_url, max_size=3)
    try:
        await apply_postgres_migrations(first, now_ms=1)
        yield first, second
    finally:
        await first.close()
        await second.close()


async def test_the_postgres_ledger_and_its_turn(pools: tuple[asyncpg.Pool, asyncpg.Pool]) -> None:
    """Channels come from channel_counters with their cursors; a cursor never moves back; the
    turn is one node's at a time and free again when that node's sweep ends."""
    first, second = pools
    store = PostgresMessageStore(first)
    try:
        await send(store, 4, 3)
        await send(store, 8, 1)
    finally:
        await store.close()
    ledger = PostgresRetention(first)
    assert await ledger.channels(after=0, limit=10) == [
        ChannelCursor(4, 0, 3),
        ChannelCursor(8, 0, 1),
    ]
    await ledger.advance(4, 2)
    await PostgresRetention(second).advance(4, 1)
    assert (await ledger.channels(after=0, limit=1)) == [ChannelCursor(4, 2, 3)]

    async with ledger.hold() as mine:
        assert mine
        async with PostgresRetention(second).hold() as theirs:
            assert not theirs
        async with ledger.hold() as again_here:
            assert not again_here  # another connection of the same pool is another session
    async with PostgresRetention(second).hold() as theirs:
        assert theirs


async def test_a_sweep_cancelled_while_it_lets_go_leaves_the_turn_free(
    pools: tuple[asyncpg.Pool, asyncpg.Pool],
) -> None:
    """The pool hands connections back without resetting their sessions, so a sweep whose
    unlock is cancelled ends its session instead: the turn is not kept by a connection
    idling in the pool, and the pool still works."""
    first, second = pools
    ledger = PostgresRetention(first)
    holding = asyncio.Event()

    async def sweep() -> None:
        async with ledger.hold() as mine:
            assert mine
            holding.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(sweep())
    await holding.wait()
    task.cancel()  # the sweep stops, and starts to let go of the turn
    await asyncio.sleep(0)
    task.cancel()  # and is cancelled again while it does
    with pytest.raises(asyncio.CancelledError):
        await task
    async with PostgresRetention(second).hold() as theirs:
        assert theirs
    async with ledger.hold() as mine_again:
        assert mine_again


async def test_a_text_deleted_while_a_copy_is_made_still_leaves_the_files(
    leveldb: LevelDBMessageStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The copy's snapshot keeps old versions through compactions; once it is released, the
    text deleted meanwhile is compacted out of the store's files. The copy, as of before the
    deletion, has it."""
    monkeypatch.setattr(leveldb_copy, "PIECE_RECORDS", 50)
    await send(leveldb, 1, 2000)
    secret = await leveldb.append(
        sender_id=1,
        channel_id=2,
        client_msg_id="hidden-one",
        text=MARKER,
        member_ids=[1, 2],
        created_at=2000,
    )
    copying = asyncio.create_task(leveldb.copy_to(tmp_path / "copy"))
    await asyncio.sleep(0.2)
    assert not copying.done()
    deletion = Deletion(channel_id=2, message_id=secret.message.message_id, deleted_by=1)
    await leveldb.change(deletion, member_ids=[1, 2])
    await copying
    await leveldb.erased()

    files = b"".join(path.read_bytes() for path in (tmp_path / "messages").iterdir())
    assert MARKER.encode() not in files
    copy = await LevelDBMessageStore.open(tmp_path / "copy")
    try:
        kept = await copy.get(2, secret.message.message_id)
        assert kept is not None
        assert kept.text == MARKER
    finally:
        await copy.close()
