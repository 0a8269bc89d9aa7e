"""Races between nodes on PostgreSQL, made certain rather than likely.

Another node's write is held open in a transaction; the store's call is
started, and shown to be waiting on that transaction's lock; then the other
node commits. What the call answers shows it settled the race on the row's
lock or constraint, not on a read made before it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import TypeVar

import asyncpg
import pytest

from chatapp.accounts import UsernameTaken
from chatapp.accounts.adapters.postgres_push_targets import PostgresPushTargetStore
from chatapp.accounts.adapters.postgres_users import PostgresUserStore
from chatapp.social.adapters.postgres_channels import PostgresChannelStore
from chatapp.social.adapters.postgres_friends import PostgresFriendStore
from chatapp.storage.postgres import apply_postgres_migrations, open_postgres

T = TypeVar("T")


@dataclass
class Cluster:
    """This node's pool, and a plain connection playing the other node."""

    pool: asyncpg.Pool
    other: asyncpg.Connection

    async def while_other_holds(self, write: str, call: Awaitable[T], *, commit: bool) -> T:
        """Run `write` in an open transaction, start `call`, wait until it blocks on it, end it."""
        transaction = self.other.transaction()
        await transaction.start()
        try:
            await self.other.execute(write)
            started = asyncio.ensure_future(call)
            await self._wait_until_blocked(started)
        finally:
            await (transaction.commit() if commit else transaction.rollback())
        return await asyncio.wait_for(started, 5)

    async def _wait_until_blocked(self, started: asyncio.Future[T]) -> None:
        other_pid = self.other.get_server_pid()
        for _ in range(500):
            assert not started.done(), "the call did not wait for the other node's transaction"
            waiting = await self.pool.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))",
                other_pid,
            )
            if waiting:
                return
            await asyncio.sleep(0.01)
        pytest.fail("the call never waited for the other node's transaction")


@pytest.fixture
async def cluster(postgres_schema_url: str) -> AsyncIterator[Cluster]:
    pool = await open_postgres(postgres_schema_url, max_size=3)
    await apply_postgres_migrations(pool, now_ms=1)
    other = await asyncpg.connect(postgres_schema_url)
    try:
        yield Cluster(pool, other)
    finally:
        await other.close()
        await pool.close()


def create(users: PostgresUserStore, username: str) -> Awaitable[object]:
    return users.create_user(username=username, display_name="A", password_hash="h", created_at=2)


OTHER_CREATES_ALICE = (
    "INSERT INTO users (username, display_name, password_hash, created_at)"
    " VALUES ('alice', 'Other', 'h', 1)"
)


async def test_a_create_waits_for_another_nodes_insert_of_the_name(cluster: Cluster) -> None:
    """Committed, the other node's insert makes ours UsernameTaken; rolled back, ours succeeds."""
    users = PostgresUserStore(cluster.pool)
    with pytest.raises(UsernameTaken):
        await cluster.while_other_holds(OTHER_CREATES_ALICE, create(users, "alice"), commit=True)
    bob = OTHER_CREATES_ALICE.replace("alice", "bob")
    created = await cluster.while_other_holds(bob, create(users, "bob"), commit=False)
    assert await users.get_credentials("bob") is not None
    assert created is not None


async def test_a_direct_create_waits_for_another_nodes_and_answers_none(cluster: Cluster) -> None:
    """While another node creates the pair's channel ours waits; once that commits ours is None."""
    channels = PostgresChannelStore(cluster.pool)
    created = await cluster.while_other_holds(
        "INSERT INTO channels (kind, direct_key, created_at) VALUES ('direct', '1:2', 1)",
        channels.create_channel(
            kind="direct", name="", owner_id=None, member_ids=[1, 2], created_at=2, direct_key="1:2"
        ),
        commit=True,
    )
    assert created is None
    assert await cluster.pool.fetchval("SELECT count(*) FROM channels") == 1


async def test_a_push_target_waits_for_a_revoke_and_then_refuses(cluster: Cluster) -> None:
    """A revoke in flight on another node holds the target's write; once it commits, refused."""
    users = PostgresUserStore(cluster.pool)
    targets = PostgresPushTargetStore(cluster.pool)
    alice = await users.create_user(
        username="alice", display_name="A", password_hash="h", created_at=1
    )
    phone = await users.create_device(
        user_id=alice.user_id, name="phone", token_hash="t", created_at=1
    )
    stored = await cluster.while_other_holds(
        f"UPDATE devices SET revoked_at = 5 WHERE device_id = {phone.device_id}",
        targets.set_target(
            user_id=alice.user_id,
            device_id=phone.device_id,
            provider="log",
            target=None,
            updated_at=6,
        ),
        commit=True,
    )
    assert stored is False
    assert await cluster.pool.fetchval("SELECT count(*) FROM push_targets") == 0


async def test_a_marker_never_moves_back_past_another_nodes_move(cluster: Cluster) -> None:
    """Another node moves the marker to 10; our move to 5 waits, then answers 10 and keeps it."""
    channels = PostgresChannelStore(cluster.pool)
    channel = await channels.create_channel(
        kind="group", name="g", owner_id=1, member_ids=[1, 2], created_at=1
    )
    assert channel is not None
    marker = await cluster.while_other_holds(
        "UPDATE channel_members SET read_message_id = 10"
        f" WHERE channel_id = {channel.channel_id} AND user_id = 1",
        channels.advance_read_marker(channel.channel_id, 1, 5),
        commit=True,
    )
    assert marker == 10
    assert await channels.read_marker(channel.channel_id, 1) == 10
    await cluster.while_other_holds(
        "UPDATE channel_members SET read_message_id = 20"
        f" WHERE channel_id = {channel.channel_id} AND user_id = 1",
        channels.advance_read_markers([(channel.channel_id, 1, 15)]),
        commit=True,
    )
    assert await channels.read_marker(channel.channel_id, 1) == 20


async def test_a_request_waiting_on_the_other_sides_accepts_it(cluster: Cluster) -> None:
    """User 2's request, made while user 1's is being written, accepts it once that commits."""
    friends = PostgresFriendStore(cluster.pool)
    friendship = await cluster.while_other_holds(
        "INSERT INTO friendships (user_low, user_high, requested_by, status, created_at)"
        " VALUES (1, 2, 1, 'pending', 1)",
        friends.request(2, 1, at=2),
        commit=True,
    )
    assert (friendship.requested_by, friendship.status) == (1, "accepted")
