"""Pending pushes on a real PostgreSQL: each stored message's row is written with it, a stale
one is claimed by one sweeper at a time and handed over as the event its node heard, and a
message's windows open once whoever opens them (its node, late, or a sweeper)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from chatapp.clock import ManualClock
from chatapp.messaging.adapters.postgres_messages import PostgresMessageStore
from chatapp.messaging.adapters.postgres_push_pending import PostgresPendingPushes
from chatapp.messaging.models import AcceptedMessage
from chatapp.notify.adapters.postgres_windows import PostgresPushWindows
from chatapp.notify.windows import Opening

LEASE_MS = 10_000
ALICE, BOB, CAROL, DAVE = 1, 2, 3, 4


@pytest.fixture
async def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def channel_id(pool: asyncpg.Pool, clock: ManualClock) -> int:
    """A group of alice, bob and carol; dave joins it later than any message."""
    joined = clock.now_ms()
    channel: int = await pool.fetchval(
        "INSERT INTO channels (kind, name, owner_id, created_at)"
        " VALUES ('group', 'team', $1, $2) RETURNING channel_id",
        ALICE,
        joined,
    )
    await pool.executemany(
        "INSERT INTO channel_members (channel_id, user_id, joined_at) VALUES ($1, $2, $3)",
        [(channel, user, joined) for user in (ALICE, BOB, CAROL)]
        + [(channel, DAVE, joined + 3_600_000)],
    )
    return channel


@pytest.fixture
async def store(pool: asyncpg.Pool) -> AsyncIterator[PostgresMessageStore]:
    store = PostgresMessageStore(pool, pending_pushes=True)
    try:
        yield store
    finally:
        await store.close()


async def send(
    store: PostgresMessageStore, clock: ManualClock, channel_id: int, text: str
) -> AcceptedMessage:
    return await store.append(
        sender_id=ALICE,
        channel_id=channel_id,
        client_msg_id=text.replace("\x00", "0"),
        text=text,
        member_ids=(ALICE, BOB, CAROL),
        created_at=clock.now_ms(),
        mentions=(CAROL,),
    )


def sweeper(pool: asyncpg.Pool, clock: ManualClock, name: str) -> PostgresPendingPushes:
    return PostgresPendingPushes(pool, clock, node_name=name, lease_ms=LEASE_MS)


def windows(pool: asyncpg.Pool, clock: ManualClock, name: str) -> PostgresPushWindows:
    return PostgresPushWindows(
        pool, clock, node_name=name, window_ms=1_000, lease_ms=LEASE_MS, pending_pushes=True
    )


def opening(accepted: AcceptedMessage, user_id: int) -> Opening:
    message = accepted.message
    return Opening(
        user_id=user_id,
        device_id=user_id * 10,
        channel_id=message.channel_id,
        sender_id=message.sender_id,
        message_id=message.message_id,
        seq=accepted.inbox_seqs[user_id],
        created_at=message.created_at,
        text=message.text,
        text_truncated=False,
    )


async def pending_rows(pool: asyncpg.Pool) -> list[tuple[int, int]]:
    rows = await pool.fetch("SELECT channel_id, message_id FROM push_pending ORDER BY 1, 2")
    return [(row[0], row[1]) for row in rows]


async def test_a_message_is_stored_with_its_pending_row_and_only_with_pushes_on(
    pool: asyncpg.Pool, clock: ManualClock, channel_id: int, store: PostgresMessageStore
) -> None:
    """Each new message of a batch has its row; a repeated send adds none, and a store
    without pending pushes (a node that does not push) writes none."""
    first, second = await asyncio.gather(
        send(store, clock, channel_id, "one"), send(store, clock, channel_id, "two")
    )
    await send(store, clock, channel_id, "one")
    assert await pending_rows(pool) == sorted(
        [(channel_id, first.message.message_id), (channel_id, second.message.message_id)]
    )
    quiet = PostgresMessageStore(pool)
    try:
        await send(quiet, clock, channel_id, "three")
    finally:
        await quiet.close()
    assert len(await pending_rows(pool)) == 2


async def test_a_stale_message_is_claimed_by_one_sweeper_as_the_event_its_node_heard(
    pool: asyncpg.Pool, clock: ManualClock, channel_id: int, store: PostgresMessageStore
) -> None:
    """Nothing is stale inside the lease; then one of two sweepers looking at once gets
    the message with every recipient's inbox seq (not dave, who joined later), the other
    nothing; once that claim's lease has run out, the other gets it again."""
    accepted = await send(store, clock, channel_id, "hello\x00there")
    n1, n2 = sweeper(pool, clock, "n1"), sweeper(pool, clock, "n2")
    assert await n1.claim_stale() == []
    clock.advance(LEASE_MS / 1000)
    claims = await asyncio.gather(n1.claim_stale(), n2.claim_stale())
    assert sorted(len(claim) for claim in claims) == [0, 1]
    event = next(claim[0] for claim in claims if claim)
    assert event.message == accepted.message
    assert event.message.mentions == [CAROL]
    assert event.inbox_seqs == accepted.inbox_seqs
    assert set(event.inbox_seqs) == {ALICE, BOB, CAROL}
    assert await n1.claim_stale() == []
    assert await n2.claim_stale() == []
    clock.advance(LEASE_MS / 1000 + 0.001)
    again = await n2.claim_stale()
    assert [claimed.message.message_id for claimed in again] == [accepted.message.message_id]


async def test_a_message_opens_its_windows_once_whoever_opens_them(
    pool: asyncpg.Pool, clock: ManualClock, channel_id: int, store: PostgresMessageStore
) -> None:
    """Its node, late, and a sweeper both open the message's windows: the first takes the row
    off and opens them, the second opens nothing, and the row is never claimed again."""
    accepted = await send(store, clock, channel_id, "hello")
    late, swept = windows(pool, clock, "n1"), windows(pool, clock, "n2")
    await asyncio.gather(
        late.add([opening(accepted, BOB), opening(accepted, CAROL)]),
        swept.add([opening(accepted, BOB), opening(accepted, CAROL)]),
    )
    counts = await pool.fetch("SELECT device_id, count FROM push_windows ORDER BY device_id")
    assert [(row[0], row[1]) for row in counts] == [(BOB * 10, 1), (CAROL * 10, 1)]
    assert await pending_rows(pool) == []
    clock.advance(LEASE_MS / 1000)
    assert await sweeper(pool, clock, "n3").claim_stale() == []


async def test_handled_rows_go_in_one_flush_and_a_vanished_message_is_dropped(
    pool: asyncpg.Pool, clock: ManualClock, channel_id: int, store: PostgresMessageStore
) -> None:
    """Rows named handled go with the next flush; a stale row whose message is gone (or
    deleted) is taken off and handed to nobody."""
    handled = [await send(store, clock, channel_id, f"m{n}") for n in range(3)]
    gone = await send(store, clock, channel_id, "gone")
    await pool.execute(
        "DELETE FROM messages WHERE channel_id = $1 AND message_id = $2",
        channel_id,
        gone.message.message_id,
    )
    n1 = sweeper(pool, clock, "n1")
    for accepted in handled:
        n1.handled(accepted.message.channel_id, accepted.message.message_id)
    assert len(await pending_rows(pool)) == 4
    await n1.flush_handled()
    assert await pending_rows(pool) == [(channel_id, gone.message.message_id)]
    await n1.flush_handled()
    clock.advance(LEASE_MS / 1000)
    assert await n1.claim_stale() == []
    assert await pending_rows(pool) == []
