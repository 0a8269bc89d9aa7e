"""Presence shared through Redis: one online and one offline per transition, whatever the nodes."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable

import pytest
from pydantic import BaseModel

from chatapp.accounts.events import DeviceRevoked
from chatapp.clock import ManualClock
from chatapp.cluster.bus import RedisBus
from chatapp.cluster.connection import open_redis
from chatapp.cluster.identity import NodeIdentity
from chatapp.cluster.keys import ClusterKeys
from chatapp.cluster.presence import OBSERVED_EVENTS, RedisPresence
from chatapp.cluster.registry import NodeRegistry
from chatapp.cluster.reset import forget_cluster
from chatapp.events import event_codec
from chatapp.gateway.events import TypingStarted
from chatapp.presence import PresenceTracker
from chatapp.presence.events import (
    ConnectionClosed,
    ConnectionOpened,
    HeartbeatReceived,
    PresenceChanged,
)
from chatapp.presence.tracker import UserPresence
from chatapp.testing.cluster_services import fresh_name, redis_url
from chatapp.testing.fakes import FakePresenceStore

TIMEOUT_MS = 30_000
_SENTINELS = itertools.count(1_000_000)


class Node:
    """One node of the cluster: its bus, presence and registry entry, on the shared clock."""

    def __init__(
        self, keys: ClusterKeys, clock: ManualClock, store: FakePresenceStore, node_id: str
    ) -> None:
        self.node_id = node_id
        self.redis = open_redis(redis_url())
        identity = NodeIdentity(node_id)
        self.bus = RedisBus(self.redis, keys, identity, event_codec())
        self.presence = RedisPresence(
            self.redis, store, clock, keys=keys, node=identity, timeout_ms=TIMEOUT_MS
        )
        self.registry = NodeRegistry(
            self.redis,
            clock,
            keys=keys,
            node=identity,
            ws_url=f"ws://{node_id}.test/ws",
            connections=lambda: 0,
            ttl_ms=TIMEOUT_MS,
        )
        self.heard: list[BaseModel] = []
        self.bus.subscribe_all(OBSERVED_EVENTS, self.presence.observe, name="presence")
        self.bus.subscribe_all((PresenceChanged, TypingStarted), self._record, name="recorder")
        self._serial = itertools.count(1)

    async def _record(self, event: BaseModel) -> None:
        self.heard.append(event)

    def changes(self) -> list[tuple[int, str, int]]:
        return [
            (e.user_id, e.status, e.last_active_at)
            for e in self.heard
            if isinstance(e, PresenceChanged)
        ]

    async def start(self) -> None:
        await self.registry.start()
        await self.bus.start()

    async def close(self) -> None:
        await self.registry.stop()
        await self.bus.close()
        await self.redis.aclose()

    async def open(self, user_id: int, device_id: int) -> str:
        """A device says hello here; returns its connection id."""
        connection_id = f"{self.node_id}-{next(self._serial)}"
        self.bus.publish(
            ConnectionOpened(user_id=user_id, device_id=device_id, connection_id=connection_id)
        )
        await self.bus.drain()
        return connection_id

    async def heartbeat(self, user_id: int, device_id: int, connection_id: str) -> None:
        self.bus.publish(
            HeartbeatReceived(user_id=user_id, device_id=device_id, connection_id=connection_id)
        )
        await self.bus.drain()

    async def close_connection(self, user_id: int, device_id: int, connection_id: str) -> None:
        self.bus.publish(
            ConnectionClosed(user_id=user_id, device_id=device_id, connection_id=connection_id)
        )
        await self.bus.drain()


async def eventually(condition: Callable[[], bool]) -> None:
    """Wait (a Redis round trip or a few) until `condition()` holds; fail after 3 s."""
    for _ in range(600):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("not within 3 s")


async def settle(*nodes: Node) -> None:
    """Return once everything Redis published so far has reached every node.

    Each node publishes a sentinel after the changes; Redis delivers in order,
    so a node that heard the others' sentinels has heard every change before them.
    """
    sentinels = {id(node): next(_SENTINELS) for node in nodes}
    for node in nodes:
        node.bus.publish(TypingStarted(channel_id=sentinels[id(node)], user_id=0, member_ids=()))
    for node in nodes:
        wanted = {sentinels[id(other)] for other in nodes if other is not node}
        await hears(node, wanted)


async def hears(node: Node, channel_ids: set[int]) -> None:
    """Wait until `node` has heard typing in each of these channels."""
    await eventually(
        lambda: channel_ids <= {e.channel_id for e in node.heard if isinstance(e, TypingStarted)}
    )


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def store() -> FakePresenceStore:
    return FakePresenceStore()


@pytest.fixture
async def keys() -> AsyncIterator[ClusterKeys]:
    url = redis_url()
    keys = ClusterKeys(fresh_name("t"))
    yield keys
    redis = open_redis(url)
    await forget_cluster(redis, keys)
    await redis.aclose()


@pytest.fixture
async def nodes(
    keys: ClusterKeys, clock: ManualClock, store: FakePresenceStore
) -> AsyncIterator[tuple[Node, Node]]:
    pair = Node(keys, clock, store, "a"), Node(keys, clock, store, "b")
    for node in pair:
        await node.start()
    await eventually(lambda: all(node.bus.connected for node in pair))
    yield pair
    for node in pair:
        await node.close()


async def refresh(clock: ManualClock, seconds: float, *nodes: Node) -> None:
    """Let time pass for live nodes: the clock moves and each node refreshes its entry."""
    clock.advance(seconds)
    for node in nodes:
        assert await node.registry.refresh()


def test_redis_presence_is_a_presence_tracker(keys: ClusterKeys) -> None:
    """RedisPresence answers what other modules ask of presence (`PresenceTracker`)."""
    redis = open_redis(redis_url())
    tracker: PresenceTracker = RedisPresence(
        redis, FakePresenceStore(), ManualClock(), keys=keys, node=NodeIdentity("n"), timeout_ms=1
    )
    assert callable(tracker.statuses)


async def test_online_once_and_offline_once_across_two_nodes(
    nodes: tuple[Node, Node], clock: ManualClock, store: FakePresenceStore
) -> None:
    """Devices of one user on two nodes: every node hears one online, then one offline."""
    a, b = nodes
    opened_at = clock.now_ms()
    on_a = await a.open(1, 10)
    on_b = await b.open(1, 11)
    await refresh(clock, 5, a, b)
    await a.heartbeat(1, 10, on_a)
    await b.heartbeat(1, 11, on_b)
    last_active_at = clock.now_ms()
    await settle(a, b)
    assert a.changes() == b.changes() == [(1, "online", opened_at)]

    await refresh(clock, TIMEOUT_MS / 1000, a, b)
    expired = await asyncio.gather(a.presence.expire_due(), b.presence.expire_due())
    assert sum(expired) == 2
    await settle(a, b)
    offline = (1, "offline", last_active_at)
    assert a.changes() == b.changes() == [(1, "online", opened_at), offline]
    assert store.saved[1] == ("offline", last_active_at)
    assert await b.presence.statuses([1]) == [
        UserPresence(user_id=1, status="offline", last_active_at=last_active_at)
    ]


async def test_a_device_moving_between_nodes_never_shows_offline(
    nodes: tuple[Node, Node], clock: ManualClock
) -> None:
    """A device that drops its socket on one node and reconnects on another in time stays online."""
    a, b = nodes
    on_a = await a.open(2, 20)
    await refresh(clock, TIMEOUT_MS / 1000 - 1, a, b)
    await a.close_connection(2, 20, on_a)
    await b.open(2, 20)
    await refresh(clock, 2, a, b)
    assert await a.presence.expire_due() + await b.presence.expire_due() == 0
    assert await a.presence.has_live_device(2)
    await settle(a, b)
    assert [c[:2] for c in a.changes()] == [c[:2] for c in b.changes()] == [(2, "online")]

    await refresh(clock, TIMEOUT_MS / 1000, a, b)
    assert await b.presence.expire_due() == 1
    await settle(a, b)
    assert [c[:2] for c in a.changes()] == [(2, "online"), (2, "offline")]


async def test_has_live_device_while_any_node_holds_a_socket(
    nodes: tuple[Node, Node], clock: ManualClock
) -> None:
    """Either node knows whether the user has a socket on any node, heartbeats or not."""
    a, b = nodes
    assert not await b.presence.has_live_device(3)
    on_a = await a.open(3, 30)
    assert await b.presence.has_live_device(3)
    assert await a.presence.has_live_device(3)
    # The socket stays open without heartbeats: still connected, though offline.
    await refresh(clock, 2 * TIMEOUT_MS / 1000, a, b)
    await a.presence.expire_due()
    assert await b.presence.has_live_device(3)
    await a.close_connection(3, 30, on_a)
    assert not await b.presence.has_live_device(3)


async def test_who_is_live_among_many_is_one_answer_from_either_node(
    nodes: tuple[Node, Node],
) -> None:
    """`live_among` answers as `has_live_device` would for each, also after Redis forgot its
    scripts; nobody asked, nobody answered."""
    a, b = nodes
    await a.open(5, 50)
    await b.open(7, 70)
    assert await a.presence.live_among([5, 6, 7, 8]) == {5, 7}
    await a.redis.script_flush()
    assert await b.presence.live_among([8, 7, 6, 5]) == {5, 7}
    assert await b.presence.live_among([]) == set()


async def test_a_dead_nodes_users_go_offline(
    keys: ClusterKeys, nodes: tuple[Node, Node], clock: ManualClock
) -> None:
    """A node that dies without a word: its users lose their live devices and go offline once."""
    a, b = nodes
    await a.open(4, 40)
    await settle(a, b)
    assert await b.presence.has_live_device(4)
    # Node a is killed: it neither refreshes its entry nor reports anything again.
    await a.bus.close()
    clock.advance(TIMEOUT_MS / 1000 + 1)
    assert await b.registry.refresh()

    assert not await b.presence.has_live_device(4)
    assert [n.node_id for n in await b.registry.live_nodes()] == ["b"]
    assert await b.presence.expire_due() == 1
    await eventually(lambda: len(b.changes()) == 2)
    assert [c[:2] for c in b.changes()] == [(4, "online"), (4, "offline")]

    # Started again under the same id, the node's old connections do not come back.
    again = Node(keys, clock, FakePresenceStore(), "a")
    await a.registry.stop()
    await again.start()
    try:
        assert not await again.presence.has_live_device(4)
    finally:
        await again.close()


async def test_a_revoked_device_goes_offline_at_once_and_stays_off(
    nodes: tuple[Node, Node], clock: ManualClock
) -> None:
    """DeviceRevoked, heard by every node, ends the device once; its late heartbeats are ignored."""
    a, b = nodes
    on_a = await a.open(5, 50)
    clock.advance(1)
    b.bus.publish(DeviceRevoked(user_id=5, device_id=50))
    await b.bus.drain()
    await a.heartbeat(5, 50, on_a)  # sent before the revocation reached node a
    await settle(a, b)
    await a.bus.drain()
    assert (
        [c[:2] for c in a.changes()]
        == [c[:2] for c in b.changes()]
        == [
            (5, "online"),
            (5, "offline"),
        ]
    )
    assert (await a.presence.statuses([5]))[0].status == "offline"


async def test_statuses_come_from_redis_then_from_the_store(
    nodes: tuple[Node, Node], clock: ManualClock, store: FakePresenceStore
) -> None:
    """A user live on one node is online on the other; an unseen user's time is the stored one."""
    a, b = nodes
    store.saved[7] = ("online", 123)
    await a.open(6, 60)
    assert await b.presence.statuses([6, 7, 8]) == [
        UserPresence(user_id=6, status="online", last_active_at=clock.now_ms()),
        UserPresence(user_id=7, status="offline", last_active_at=123),
        UserPresence(user_id=8, status="offline", last_active_at=0),
    ]


async def test_heartbeats_heard_without_events_move_deadlines_in_one_batch(
    nodes: tuple[Node, Node], clock: ManualClock
) -> None:
    """Heartbeats handed to `heard` (as the gateway does) are written in batches: devices
    heard in time stay online, one heard after its revocation stays offline."""
    a, b = nodes
    await a.open(6, 60)
    await a.open(7, 70)
    await b.open(8, 80)
    await refresh(clock, TIMEOUT_MS / 1000 - 1, a, b)
    b.bus.publish(DeviceRevoked(user_id=8, device_id=80))
    await b.bus.drain()
    for user_id, device_id in ((6, 60), (7, 70)):
        assert a.presence.heard(user_id, device_id)
    assert b.presence.heard(8, 80)  # too late: the revocation came first
    await a.presence.heartbeats_written()
    await b.presence.heartbeats_written()
    await refresh(clock, 2, a, b)
    assert await a.presence.expire_due() + await b.presence.expire_due() == 0
    statuses = await a.presence.statuses([6, 7, 8])
    assert [s.status for s in statuses] == ["online", "online", "offline"]
