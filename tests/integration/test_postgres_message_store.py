"""The PostgreSQL message store: the LevelDB store's guarantees, with many nodes writing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
import structlog.testing

from chatapp.messaging import AcceptedMessage, MessageStoreError
from chatapp.messaging.adapters.postgres_messages import ONE_STATEMENT_MOST, PostgresMessageStore
from chatapp.testing.cluster_services import fresh_name, postgres_url

MIGRATIONS = sorted((Path(__file__).resolve().parents[2] / "migrations/postgresql").glob("*.sql"))


@pytest_asyncio.fixture
async def schema_url() -> AsyncIterator[str]:
    """A database URL whose search_path is a fresh schema with every migration applied."""
    url = postgres_url()
    schema = fresh_name("t")
    admin = await asyncpg.connect(url)
    try:
        await admin.execute(f"CREATE SCHEMA {schema}")
        for migration in MIGRATIONS:
            await admin.execute(f"SET search_path = {schema}; {migration.read_text()}")
        yield f"{url}?search_path={schema}"
    finally:
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
        await admin.close()


@pytest_asyncio.fixture
async def nodes(schema_url: str) -> AsyncIterator[list[PostgresMessageStore]]:
    """Three stores on three pools: three nodes sharing one database."""
    pools = [await asyncpg.create_pool(schema_url, min_size=1, max_size=4) for _ in range(3)]
    stores = [PostgresMessageStore(pool) for pool in pools]
    try:
        yield stores
    finally:
        for store in stores:
            await store.close()
        for pool in pools:
            await pool.close()


def send(
    store: PostgresMessageStore,
    sender: int,
    client_msg_id: str,
    text: str = "hi",
    channel: int = 1,
    members: tuple[int, ...] = (1, 2, 3),
) -> asyncio.Future[AcceptedMessage]:
    return store.submit(
        sender_id=sender,
        channel_id=channel,
        client_msg_id=client_msg_id,
        text=text,
        member_ids=members,
        created_at=1_700_000_000_000,
    )


async def test_concurrent_sends_from_three_nodes_keep_ids_and_seqs_contiguous(
    nodes: list[PostgresMessageStore],
) -> None:
    """300 sends into one channel from three nodes at once: ids 1..300, every inbox 1..300."""
    futures = [send(nodes[n % 3], sender=1 + n % 3, client_msg_id=f"m{n}") for n in range(300)]
    accepted = await asyncio.gather(*futures)
    assert sorted(a.message.message_id for a in accepted) == list(range(1, 301))
    for user in (1, 2, 3):
        page = await nodes[0].inbox(user, since=0, limit=1000)
        assert [entry.seq for entry in page.entries] == list(range(1, 301))
        # An inbox lists the channel's messages in id order: commits follow the counters.
        assert [entry.message.message_id for entry in page.entries] == list(range(1, 301))
    assert await nodes[2].last_message_id(1) == 300
    assert await nodes[1].max_seq(2) == 300


async def test_batches_crossing_channels_and_inboxes_from_three_nodes_never_deadlock(
    nodes: list[PostgresMessageStore],
) -> None:
    """Each node's batches name the same channels and members in other orders, two nodes'
    as one statement and the third's as a transaction (more than ONE_STATEMENT_MOST sends):
    the counters are locked in one order, so no batch is retried, and every inbox is
    contiguous."""
    channels = {1: (1, 2, 3), 2: (3, 2), 3: (2, 1), 4: (4, 3, 2, 1)}
    order = [[1, 2, 3, 4], [4, 3, 2, 1], [3, 1, 4, 2] * 3]
    assert len(order[0]) <= ONE_STATEMENT_MOST < len(order[2])
    with structlog.testing.capture_logs() as logs:
        for round_ in range(15):
            await asyncio.gather(
                *(
                    send(
                        nodes[n],
                        sender=channels[c][0],
                        client_msg_id=f"{round_}-{n}-{i}",
                        channel=c,
                        members=channels[c],
                    )
                    for n in range(3)
                    for i, c in enumerate(order[n])
                )
            )
    assert [log for log in logs if log["event"] == "message_batch_retried"] == []
    for channel in channels:
        assert await nodes[0].last_message_id(channel) == 75
    for user in (1, 2, 3, 4):
        expected = 75 * sum(user in members for members in channels.values())
        page = await nodes[1].inbox(user, since=0, limit=1000)
        assert [entry.seq for entry in page.entries] == list(range(1, expected + 1))


async def test_the_same_client_msg_id_on_two_nodes_stores_one_message(
    nodes: list[PostgresMessageStore],
) -> None:
    """A retry that lands on another node at the same moment gets the original."""
    first, second = await asyncio.gather(
        send(nodes[0], 1, "twice", "one"), send(nodes[1], 1, "twice", "one")
    )
    assert first.message == second.message
    assert sorted((first.duplicate, second.duplicate)) == [False, True]
    assert (await nodes[2].history(1)).messages == [first.message]
    again = await send(nodes[2], 1, "twice", "different text, other channel", channel=9)
    assert again.duplicate
    assert again.message == first.message
    assert await nodes[2].original(1, "twice") == again


async def test_a_repeat_in_one_batch_is_answered_with_the_first(
    nodes: list[PostgresMessageStore],
) -> None:
    """Two sends with one client_msg_id queued together store one message."""
    a, b = await asyncio.gather(send(nodes[0], 1, "x"), send(nodes[0], 1, "x"))
    assert (a.duplicate, b.duplicate) == (False, True)
    assert a.message == b.message
    assert b.inbox_seqs == {1: a.seq}


async def test_one_batch_of_sends_numbers_channels_and_inboxes_in_queue_order(
    nodes: list[PostgresMessageStore],
) -> None:
    """Sends queued together into two channels with shared members, a repeat of a stored
    send and a repeat within the batch: ids per channel and seqs per member follow the
    queue, repeats get their original, and every inbox reads back as answered."""
    store = nodes[0]
    stored = await send(store, 1, "old", "before", channel=5, members=(1, 2))
    queued = [
        send(store, 1, "a", "a", channel=5, members=(1, 2)),
        send(store, 2, "b", "b", channel=6, members=(2, 3)),
        send(store, 1, "old", "ignored", channel=6, members=(2, 3)),
        send(store, 3, "c", "c", channel=6, members=(2, 3)),
        send(store, 2, "b", "b again", channel=6, members=(2, 3)),
        send(store, 2, "d", "d", channel=5, members=(1, 2)),
    ]
    a, b, old, c, b_again, d = await asyncio.gather(*queued)

    assert [(x.message.channel_id, x.message.message_id) for x in (a, b, c, d)] == [
        (5, 2),
        (6, 1),
        (6, 2),
        (5, 3),
    ]
    assert [x.inbox_seqs for x in (a, b, c, d)] == [
        {1: 2, 2: 2},
        {2: 3, 3: 1},
        {2: 4, 3: 2},
        {1: 3, 2: 5},
    ]
    assert [x.seq for x in (a, b, c, d)] == [2, 3, 2, 5]
    assert not any(x.duplicate for x in (a, b, c, d))
    assert old == stored._replace(duplicate=True, inbox_seqs={1: stored.seq})
    assert b_again == b._replace(duplicate=True, inbox_seqs={2: b.seq})
    for user, expected in ((1, [1, 2, 3]), (2, [1, 2, 3, 4, 5]), (3, [1, 2])):
        page = await nodes[1].inbox(user, since=0, limit=10)
        assert [entry.seq for entry in page.entries] == expected
    inbox_of_2 = await nodes[1].inbox(2, since=0, limit=10)
    assert [e.message.text for e in inbox_of_2.entries] == ["before", "a", "b", "c", "d"]
    assert await nodes[2].last_message_ids([5, 6]) == {5: 3, 6: 2}


async def test_a_send_record_without_its_message_fails_that_send_alone(
    schema_url: str, nodes: list[PostgresMessageStore]
) -> None:
    """The tables have no foreign keys: a `sends` row whose message is missing answers its
    repeat with MessageStoreError, and the batch's other sends are stored."""
    admin = await asyncpg.connect(schema_url)
    try:
        await admin.execute(
            "INSERT INTO sends (sender_id, client_msg_id, channel_id, message_id, seq)"
            " VALUES (1, 'orphan', 1, 99, 99)"
        )
    finally:
        await admin.close()
    orphan, other = await asyncio.gather(
        send(nodes[0], 1, "orphan"), send(nodes[0], 1, "fine"), return_exceptions=True
    )
    assert isinstance(orphan, MessageStoreError)
    assert "orphan" in str(orphan)
    assert isinstance(other, AcceptedMessage)
    assert (other.message.message_id, other.duplicate) == (1, False)


async def test_history_pages_and_text_round_trips(nodes: list[PostgresMessageStore]) -> None:
    """Pages by before/after as the protocol says; any Unicode text, U+0000 included."""
    texts = [f"message {n} \x00 é 👋" for n in range(1, 11)]
    for n, text in enumerate(texts, 1):
        await send(nodes[n % 3], 1, f"h{n}", text)
    newest = await nodes[0].history(1, limit=3)
    assert [m.message_id for m in newest.messages] == [8, 9, 10]
    assert newest.has_more
    older = await nodes[0].history(1, before=8, limit=3)
    assert [m.message_id for m in older.messages] == [5, 6, 7]
    assert older.has_more
    newer = await nodes[0].history(1, after=7, limit=5)
    assert [m.message_id for m in newer.messages] == [8, 9, 10]
    assert not newer.has_more
    between = await nodes[0].history(1, after=2, before=6, limit=2)
    assert [m.message_id for m in between.messages] == [3, 4]
    assert between.has_more
    assert [m.text for m in (await nodes[1].history(1, limit=10)).messages] == texts
    stored = await nodes[2].get(1, 4)
    assert stored is not None
    assert stored.text == texts[3]
    assert await nodes[2].get(1, 11) is None


async def test_last_messages_are_each_channels_last_with_its_text_cut(
    nodes: list[PostgresMessageStore],
) -> None:
    """One query for many channels: each channel's last message, only its first bytes read and
    cut to max_chars code points (an emoji never split, U+0000 kept), truncated when cut;
    channels without messages are absent."""
    await send(nodes[0], 1, "a1", "first", channel=1)
    await send(nodes[1], 1, "a2", "a" * 199 + "😀" * 100_000 + "tail", channel=1)
    await send(nodes[2], 2, "b1", "short \x00 😀", channel=2)
    await send(nodes[0], 1, "c1", "é" * 200, channel=3)
    await send(nodes[0], 1, "d1", "é" * 201, channel=4)

    previews = await nodes[1].last_messages([4, 1, 77, 2, 3, 1], max_chars=200)

    assert {c: (p.message_id, p.sender_id, p.text, p.truncated) for c, p in previews.items()} == {
        1: (2, 1, "a" * 199 + "😀", True),
        2: (1, 2, "short \x00 😀", False),
        3: (1, 1, "é" * 200, False),
        4: (1, 1, "é" * 200, True),
    }
    assert all(p.channel_id == c for c, p in previews.items())
    assert previews[2].created_at == 1_700_000_000_000
    assert await nodes[2].last_message_ids([4, 1, 77, 2, 3, 1]) == {4: 1, 1: 2, 77: 0, 2: 1, 3: 1}
    assert await nodes[0].last_messages([], max_chars=200) == {}
    with pytest.raises(ValueError, match="channel_id"):
        await nodes[0].last_messages([2**63], max_chars=200)


async def test_bad_arguments_are_the_callers_and_a_closed_store_refuses(
    nodes: list[PostgresMessageStore],
) -> None:
    """Out-of-range ids raise ValueError at once; after close every call is MessageStoreError."""
    with pytest.raises(ValueError, match="channel_id"):
        send(nodes[0], 1, "bad", channel=2**63)
    with pytest.raises(ValueError, match="client_msg_id"):
        send(nodes[0], 1, "")
    await nodes[0].close()
    with pytest.raises(MessageStoreError):
        await nodes[0].history(1)
    with pytest.raises(MessageStoreError):
        send(nodes[0], 1, "late")


async def test_a_lost_database_fails_the_batch_without_storing_it(
    schema_url: str,
) -> None:
    """With its pool gone, a send fails with MessageStoreError; nothing half-written remains."""
    pool = await asyncpg.create_pool(schema_url, min_size=1, max_size=2)
    store = PostgresMessageStore(pool)
    await send(store, 1, "before")
    await pool.close()
    with pytest.raises(MessageStoreError):
        await send(store, 1, "after")
    await store.close()
    fresh_pool = await asyncpg.create_pool(schema_url, min_size=1, max_size=2)
    fresh = PostgresMessageStore(fresh_pool)
    try:
        assert [m.client_msg_id for m in (await fresh.history(1)).messages] == ["before"]
        assert await fresh.max_seq(2) == 1
    finally:
        await fresh.close()
        await fresh_pool.close()
