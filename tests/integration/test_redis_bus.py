"""The Redis bus between nodes: every node hears every event once, its own in order."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable

import pytest
from pydantic import BaseModel

from chatapp.bus import Bus
from chatapp.cluster import envelope
from chatapp.cluster.bus import RedisBus
from chatapp.cluster.connection import open_redis
from chatapp.cluster.identity import NodeIdentity
from chatapp.cluster.keys import ClusterKeys
from chatapp.cluster.reset import forget_cluster
from chatapp.events import event_codec
from chatapp.gateway.events import TypingStarted
from chatapp.presence.events import HeartbeatReceived
from chatapp.testing.cluster_services import fresh_name, redis_url
from chatapp.testing.proxy import TcpProxy

# Ids far from the tests' own channel ids, so a sentinel is never mistaken for an event.
_SENTINELS = itertools.count(1_000_000)


class Node:
    """One node's bus, named so that a test can find its connections in CLIENT LIST."""

    def __init__(
        self, url: str, keys: ClusterKeys, node_id: str, *, silence_limit: float = 15.0
    ) -> None:
        self.name = fresh_name(node_id)
        self.redis = open_redis(url, client_name=self.name)
        self.bus = RedisBus(
            self.redis, keys, NodeIdentity(node_id), event_codec(), silence_limit=silence_limit
        )
        self.heard: list[BaseModel] = []

        async def record(event: BaseModel) -> None:
            self.heard.append(event)

        self.bus.subscribe_all((TypingStarted, HeartbeatReceived), record, name="recorder")

    def typing(self) -> list[tuple[int, int]]:
        """(user_id, channel_id) of what this node heard, sentinels left out."""
        return [
            (e.user_id, e.channel_id)
            for e in self.heard
            if isinstance(e, TypingStarted) and e.channel_id < 1_000_000
        ]

    async def close(self) -> None:
        await self.bus.close()
        await self.redis.aclose()


async def eventually(condition: Callable[[], bool]) -> None:
    """Wait (a Redis round trip or a few) until `condition()` holds; fail after 3 s."""
    for _ in range(600):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("not within 3 s")


async def settle(*nodes: Node) -> None:
    """Return once everything published so far has reached every node.

    Redis delivers one channel's messages in order, so when each node has
    heard a sentinel published after the events, it has heard the events;
    anything that was to arrive twice would have arrived too.
    """
    sentinels = {}
    for node in nodes:
        sentinels[id(node)] = next(_SENTINELS)
        node.bus.publish(TypingStarted(channel_id=sentinels[id(node)], user_id=0, member_ids=()))
    for node in nodes:
        others = {sentinels[id(other)] for other in nodes if other is not node}
        await hears(node, others)


async def hears(node: Node, channel_ids: set[int]) -> None:
    """Wait until `node` has heard typing in each of these channels."""
    await eventually(
        lambda: channel_ids <= {e.channel_id for e in node.heard if isinstance(e, TypingStarted)}
    )


@pytest.fixture
async def keys() -> AsyncIterator[ClusterKeys]:
    url = redis_url()
    keys = ClusterKeys(fresh_name("t"))
    yield keys
    redis = open_redis(url)
    await forget_cluster(redis, keys)
    await redis.aclose()


@pytest.fixture
async def two_nodes(keys: ClusterKeys) -> AsyncIterator[tuple[Node, Node]]:
    nodes = Node(redis_url(), keys, "a"), Node(redis_url(), keys, "b")
    for node in nodes:
        await node.bus.start()
    await eventually(lambda: all(node.bus.connected for node in nodes))
    yield nodes
    for node in nodes:
        await node.close()


def test_the_redis_bus_is_a_bus() -> None:
    """RedisBus satisfies the `Bus` protocol, so no module knows which bus it got."""
    bus: Bus = RedisBus(open_redis(redis_url()), ClusterKeys(), NodeIdentity("n"), event_codec())
    assert callable(bus.publish)


async def test_each_node_hears_the_other_once_and_its_own_once_in_order(
    two_nodes: tuple[Node, Node],
) -> None:
    """Events from the other node arrive once each; a node's own arrive once, in order."""
    a, b = two_nodes
    for channel_id in range(30):
        a.bus.publish(TypingStarted(channel_id=channel_id, user_id=1, member_ids=(1, 2)))
        b.bus.publish(TypingStarted(channel_id=channel_id, user_id=2, member_ids=(1, 2)))
        if channel_id % 10 == 0:
            await asyncio.sleep(0)
    # A node's own events reach its subscribers without waiting for Redis.
    await a.bus.drain()
    assert [c for u, c in a.typing() if u == 1] == list(range(30))
    await settle(a, b)

    for node in (a, b):
        heard = node.typing()
        assert sorted(heard) == sorted([(1, c) for c in range(30)] + [(2, c) for c in range(30)])
        for user_id in (1, 2):
            assert [c for u, c in heard if u == user_id] == list(range(30))


async def test_connection_events_stay_on_their_node(two_nodes: tuple[Node, Node]) -> None:
    """Heartbeats feed presence on the socket's node only: they never cross the bus."""
    a, b = two_nodes
    a.bus.publish(HeartbeatReceived(user_id=1, device_id=1, connection_id="a-1"))
    await settle(a, b)
    assert [type(e) for e in a.heard if isinstance(e, HeartbeatReceived)] == [HeartbeatReceived]
    assert not any(isinstance(e, HeartbeatReceived) for e in b.heard)


async def test_a_killed_subscription_is_recovered_and_reported(
    two_nodes: tuple[Node, Node],
) -> None:
    """When Redis drops a node's subscription it subscribes again and says events may be lost."""
    a, b = two_nodes
    reported: list[str] = []
    a.bus.on_reconnect.append(lambda: reported.append("gap"))
    admin = open_redis(redis_url())
    try:
        clients = await admin.client_list(_type="pubsub")
        ids = [c["id"] for c in clients if c["name"] == a.name]
        assert len(ids) == 1
        await admin.client_kill_filter(_id=ids[0])
    finally:
        await admin.aclose()

    await eventually(lambda: reported == ["gap"] and a.bus.connected)
    assert a.bus.reconnects == 1
    b.bus.publish(TypingStarted(channel_id=7, user_id=2, member_ids=(1, 2)))
    a.bus.publish(TypingStarted(channel_id=8, user_id=1, member_ids=(1, 2)))
    await settle(a, b)
    assert (2, 7) in a.typing()
    assert (1, 8) in b.typing()
    assert reported == ["gap"]


async def test_events_published_while_redis_is_away_arrive_when_it_is_back(
    keys: ClusterKeys,
) -> None:
    """A node cut off from Redis keeps delivering locally, then sends what it queued and
    reports the gap once it is subscribed again."""
    proxy = await TcpProxy(6379).start()
    a = Node(proxy.through(redis_url()), keys, "a")
    b = Node(redis_url(), keys, "b")
    reported: list[str] = []
    a.bus.on_reconnect.append(lambda: reported.append("gap"))
    try:
        for node in (a, b):
            await node.bus.start()
        await eventually(lambda: a.bus.connected and b.bus.connected)

        proxy.cut()
        proxy.refuse_new()
        await eventually(lambda: not a.bus.connected)
        for channel_id in range(5):
            a.bus.publish(TypingStarted(channel_id=channel_id, user_id=1, member_ids=(1, 2)))
        await eventually(lambda: len(a.typing()) == 5)

        proxy.accept_new()
        await eventually(lambda: a.bus.connected)
        await settle(a, b)
        assert b.typing() == [(1, c) for c in range(5)]
        assert a.typing() == [(1, c) for c in range(5)]
        assert reported == ["gap"]
    finally:
        await a.close()
        await b.close()
        await proxy.close()


async def test_a_silent_path_to_redis_is_noticed_and_replaced(keys: ClusterKeys) -> None:
    """A subscription whose answers stop coming (no reset, no close) is opened again."""
    proxy = await TcpProxy(6379).start()
    a = Node(proxy.through(redis_url()), keys, "a", silence_limit=0.3)
    reported: list[str] = []
    a.bus.on_reconnect.append(lambda: reported.append("gap"))
    try:
        await a.bus.start()
        await eventually(lambda: a.bus.connected)
        proxy.mute_server()
        await eventually(lambda: reported == ["gap"])
        assert proxy.accepted >= 2
    finally:
        await a.bus.close(flush_timeout=0)
        await a.redis.aclose()
        await proxy.close()


async def test_without_redis_a_node_keeps_serving_locally(keys: ClusterKeys) -> None:
    """With Redis unreachable, publish neither blocks nor raises and local delivery goes on."""
    redis = open_redis("redis://127.0.0.1:1/0")
    bus = RedisBus(redis, keys, NodeIdentity("alone"), event_codec())
    heard: list[BaseModel] = []

    async def record(event: BaseModel) -> None:
        heard.append(event)

    bus.subscribe(TypingStarted, record, name="recorder")
    await bus.start()
    try:
        for channel_id in range(3):
            bus.publish(TypingStarted(channel_id=channel_id, user_id=1, member_ids=(1,)))
        await eventually(lambda: len(heard) == 3)
        assert [e.channel_id for e in heard if isinstance(e, TypingStarted)] == [0, 1, 2]
        assert not bus.connected
    finally:
        await bus.close(flush_timeout=0)
        await redis.aclose()


async def test_own_subscribers_hear_only_what_their_node_published(
    two_nodes: tuple[Node, Node],
) -> None:
    """subscribe_own is for work done once in the cluster: only the publishing node hears."""
    a, b = two_nodes
    own: dict[str, list[int]] = {"a": [], "b": []}
    for name, node in (("a", a), ("b", b)):

        async def record(event: BaseModel, name: str = name) -> None:
            if isinstance(event, TypingStarted) and event.channel_id < 1_000_000:
                own[name].append(event.channel_id)

        node.bus.subscribe_own((TypingStarted,), record, name="own")
    a.bus.publish(TypingStarted(channel_id=1, user_id=1, member_ids=()))
    b.bus.publish(TypingStarted(channel_id=2, user_id=2, member_ids=()))
    await settle(a, b)
    await a.bus.drain()
    await b.bus.drain()
    assert own == {"a": [1], "b": [2]}
    assert sorted(a.typing()) == sorted(b.typing()) == [(1, 1), (2, 2)]


async def test_events_sent_together_travel_as_few_messages_and_arrive_in_order(
    two_nodes: tuple[Node, Node], keys: ClusterKeys
) -> None:
    """A burst of events goes to Redis as bundles, not a message each; the other node
    hears every one, in order, and a bad event in a bundle costs only itself."""
    a, b = two_nodes
    watcher = open_redis(redis_url())
    pubsub = watcher.pubsub()
    await pubsub.subscribe(keys.bus_channel)
    try:
        for channel_id in range(300):
            a.bus.publish(TypingStarted(channel_id=channel_id, user_id=1, member_ids=(1, 2)))
        await eventually(lambda: len(b.typing()) == 300)
        assert b.typing() == [(1, c) for c in range(300)]
        messages = 0
        while await pubsub.get_message(timeout=0.2) is not None:
            messages += 1
        assert 1 < messages < 300 // 4  # the subscription confirmation, then the bundles

        good = TypingStarted(channel_id=7, user_id=3, member_ids=(3,))
        await watcher.publish(
            keys.bus_channel,
            envelope.wrap_many("elsewhere", [b"{not json", event_codec().encode(good)]),
        )
        await eventually(lambda: (3, 7) in b.typing())
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]
        await watcher.aclose()
