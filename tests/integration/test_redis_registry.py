"""The node registry: live nodes expire after the TTL, discovery picks the least loaded."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest

from chatapp.clock import ManualClock
from chatapp.cluster.connection import RedisClient, open_redis
from chatapp.cluster.identity import NodeIdentity
from chatapp.cluster.keys import ClusterKeys
from chatapp.cluster.registry import STALE_REFRESHES, NodeIdTaken, NodeRegistry
from chatapp.cluster.reset import forget_cluster
from chatapp.discovery import NodeInfo
from chatapp.testing.cluster_services import fresh_name, redis_url

TTL_MS = 30_000
REFRESH_S = 2.0


class Counter:
    """A node's live connection count, set by the test."""

    def __init__(self) -> None:
        self.value = 0

    def __call__(self) -> int:
        return self.value


@pytest.fixture
async def redis() -> AsyncIterator[RedisClient]:
    client = open_redis(redis_url())
    yield client
    await client.aclose()


@pytest.fixture
async def keys(redis: RedisClient) -> AsyncIterator[ClusterKeys]:
    keys = ClusterKeys(fresh_name("t"))
    yield keys
    await forget_cluster(redis, keys)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def registry(
    redis: RedisClient,
    clock: ManualClock,
    keys: ClusterKeys,
    node_id: str,
    connections: Counter | None = None,
) -> NodeRegistry:
    return NodeRegistry(
        redis,
        clock,
        keys=keys,
        node=NodeIdentity(node_id),
        ws_url=f"wss://{node_id}.example/ws",
        connections=connections or Counter(),
        ttl_ms=TTL_MS,
        refresh_interval=REFRESH_S,
    )


async def test_a_node_is_listed_until_its_ttl_passes(
    redis: RedisClient, clock: ManualClock, keys: ClusterKeys
) -> None:
    """A registered node is live with its details; without refreshes it is gone after the TTL."""
    started_at = clock.now_ms()
    node = registry(redis, clock, keys, "a")
    await node.start()
    try:
        assert await node.live_nodes() == [
            NodeInfo(
                node_id="a",
                ws_url="wss://a.example/ws",
                connections=0,
                started_at=started_at,
                last_seen_at=started_at,
            )
        ]
        # Redis forgets the entry by itself too, on its own clock.
        assert 0 < await redis.pttl(keys.node("a")) <= TTL_MS

        clock.advance(TTL_MS / 1000 - 1)
        assert await node.refresh()
        clock.advance(TTL_MS / 1000 - 1)
        assert [n.last_seen_at for n in await node.live_nodes()] == [started_at + TTL_MS - 1000]

        clock.advance(1.001)
        assert await node.live_nodes() == []
    finally:
        await node.stop()


@contextlib.asynccontextmanager
async def loaded_pair(
    redis: RedisClient, clock: ManualClock, keys: ClusterKeys, load_a: int, load_b: int
) -> AsyncIterator[tuple[NodeRegistry, NodeRegistry, Counter]]:
    """Nodes a and b registered with these connection counts; b's count, to change."""
    counts = Counter(), Counter()
    counts[0].value, counts[1].value = load_a, load_b
    a = registry(redis, clock, keys, "a", counts[0])
    b = registry(redis, clock, keys, "b", counts[1])
    await a.start()
    await b.start()
    try:
        yield a, b, counts[1]
    finally:
        await a.stop()
        await b.stop()


async def test_discovery_picks_the_least_loaded_node(
    redis: RedisClient, clock: ManualClock, keys: ClusterKeys
) -> None:
    """The node with the fewest connections is chosen; a refresh brings new counts to discovery."""
    async with loaded_pair(redis, clock, keys, 5, 2) as (a, b, load_b):
        chosen = await a.least_loaded()
        assert chosen is not None
        assert (chosen.node_id, chosen.ws_url, chosen.connections) == ("b", "wss://b.example/ws", 2)

        load_b.value = 9
        assert await b.refresh()
        chosen = await b.least_loaded()
        assert chosen is not None
        assert chosen.node_id == "a"
        assert [(n.node_id, n.connections) for n in await a.live_nodes()] == [("a", 5), ("b", 9)]


async def chosen_id(node: NodeRegistry) -> str | None:
    chosen = await node.least_loaded()
    return chosen.node_id if chosen is not None else None


async def test_discovery_passes_over_a_node_that_stopped_refreshing(
    redis: RedisClient, clock: ManualClock, keys: ClusterKeys
) -> None:
    """A node that missed three refreshes (killed) is still live, as the registry promises,
    but discovery sends clients to the nodes that refresh, even when they hold more."""
    async with loaded_pair(redis, clock, keys, 1, 50) as (_, b, _):
        clock.advance(STALE_REFRESHES * REFRESH_S - 0.001)
        assert await b.refresh()
        assert await chosen_id(b) == "a"
        clock.advance(0.002)
        assert await b.refresh()
        assert await chosen_id(b) == "b"
        assert [n.node_id for n in await b.live_nodes()] == ["a", "b"]
        # Every node stale (Redis was away for all of them): the least loaded of all.
        clock.advance(STALE_REFRESHES * REFRESH_S + 1)
        assert await chosen_id(b) == "a"


async def test_a_second_live_node_with_the_same_id_is_refused(
    redis: RedisClient, clock: ManualClock, keys: ClusterKeys
) -> None:
    """Starting under a live node's id fails; once that node stops, or expires, the id is free."""
    first = registry(redis, clock, keys, "same")
    await first.start()
    second = registry(redis, clock, keys, "same")
    with pytest.raises(NodeIdTaken) as refusal:
        await second.start()
    assert refusal.value.free_in_ms == TTL_MS
    await first.stop()
    assert await first.live_nodes() == []

    await second.start()
    try:
        clock.advance(TTL_MS / 1000 + 0.001)
        third = registry(redis, clock, keys, "same")
        await third.start()
        # The expired node, should it come back, finds its id taken.
        assert not await second.refresh()
        await third.stop()
    finally:
        await second.stop()


async def test_stopping_leaves_the_registry_at_once(
    redis: RedisClient, clock: ManualClock, keys: ClusterKeys
) -> None:
    """A clean stop deletes the entry, so discovery never sends clients to a stopped node."""
    a = registry(redis, clock, keys, "a")
    b = registry(redis, clock, keys, "b")
    await a.start()
    await b.start()
    await a.stop()
    try:
        assert [n.node_id for n in await b.live_nodes()] == ["b"]
        assert not await redis.exists(keys.node("a"))
    finally:
        await b.stop()
    assert await b.least_loaded() is None
