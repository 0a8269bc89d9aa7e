"""The bus between nodes: Redis pub/sub, one channel per cluster, local delivery first.

Every node hears every event. A node's own events reach its own subscribers
at once, through an embedded `InProcessBus`, exactly once and in publication
order; the copy that comes back from Redis carries this process's tag and is
ignored. Events from other nodes are handed to the same embedded bus as they
arrive.

Pub/sub can drop messages: while this node is not subscribed (Redis down,
the connection killed) it misses what others publish. Each time the
subscription comes back after such a gap, every callable in `on_reconnect` is
called, so that whoever delivers from the store (the gateway) can send what
may have been missed. `connected` says whether the node hears the cluster now.

Nothing here fails the node: `publish` queues and returns; a task sends the
queue, retrying with backoff while Redis is away (a batch whose fate is
unknown is sent again, so under failures another node may hear an event
twice); local delivery never waits for Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import structlog
from pydantic import BaseModel
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from chatapp.bus import (
    BatchSubscriber,
    BusStats,
    EventCodec,
    EventT,
    InProcessBus,
    Subscriber,
    UnknownEvent,
)
from chatapp.cluster import envelope, tasks
from chatapp.cluster.backoff import Backoff
from chatapp.cluster.identity import NodeIdentity
from chatapp.cluster.keys import ClusterKeys
from chatapp.presence.events import ConnectionClosed, ConnectionOpened, HeartbeatReceived

log = structlog.get_logger(__name__)

# The gateway's connection events feed presence on the node that holds the
# socket, which writes them to Redis itself (`RedisPresence`). Sending them to
# every node would cost a message per heartbeat per node, and a node that
# lagged could replay them after the connection had closed.
NODE_LOCAL_EVENTS: tuple[type[BaseModel], ...] = (
    ConnectionOpened,
    ConnectionClosed,
    HeartbeatReceived,
)

_BATCH = 256
# The most one Redis message carries of a batch; a batch past it is sent as several.
_BUNDLE_BYTES = 1 << 20


class RedisBus:
    """`Bus` over Redis pub/sub. Start it before publishing; close it on shutdown.

    `local_only` event types are delivered here and never sent. A subscription
    that hears nothing for `silence_limit` seconds, not even the answer to the
    PING sent after a third of it, is taken for dead (a path to Redis that
    vanished without closing the socket) and opened again.
    """

    def __init__(
        self,
        redis: Redis,
        keys: ClusterKeys,
        node: NodeIdentity,
        codec: EventCodec,
        *,
        local_only: tuple[type[BaseModel], ...] = NODE_LOCAL_EVENTS,
        queue_capacity: int = 100_000,
        silence_limit: float = 15.0,
    ) -> None:
        self._redis = redis
        self._channel = keys.bus_channel
        self._tag = node.tag
        self._codec = codec
        self._local_only = frozenset(local_only)
        self._local = InProcessBus(queue_capacity=queue_capacity)
        # Events this node published itself: for work that must happen once in
        # the cluster and belongs to the node where the event happened (push).
        self._own = InProcessBus(queue_capacity=queue_capacity)
        self._outgoing: asyncio.Queue[bytes] = asyncio.Queue(queue_capacity)
        self._silence_limit = silence_limit
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self._subscribed_before = False
        self._missed = False
        self.on_reconnect: list[Callable[[], None]] = []
        """Called (in order, from the bus's task) each time events may have been missed."""
        self.connected = False
        self.reconnects = 0
        self.dropped = 0
        self._sent = 0
        self._received = 0
        self._sending = 0

    # -- the Bus protocol ------------------------------------------------------------------

    def publish(self, event: BaseModel) -> None:
        self._local.publish(event)
        self._own.publish(event)
        if type(event) in self._local_only:
            return
        try:
            message = self._codec.encode(event)
        except UnknownEvent:
            log.error("bus_event_not_encodable", event_type=type(event).__name__)
            return
        try:
            self._outgoing.put_nowait(message)
            self._sent += 1
        except asyncio.QueueFull:
            self.dropped += 1
            log.warning("bus_event_not_sent", event_type=type(event).__name__)

    def subscribe(
        self, event_type: type[EventT], handler: Subscriber[EventT], *, name: str
    ) -> None:
        self._local.subscribe(event_type, handler, name=name)

    def subscribe_all(
        self,
        event_types: tuple[type[BaseModel], ...],
        handler: Subscriber[BaseModel],
        *,
        name: str,
    ) -> None:
        self._local.subscribe_all(event_types, handler, name=name)

    def subscribe_own(
        self,
        event_types: tuple[type[BaseModel], ...],
        handler: Subscriber[BaseModel],
        *,
        name: str,
    ) -> None:
        """Like `subscribe_all`, for the events published on this node only."""
        self._own.subscribe_all(event_types, handler, name=name)

    def subscribe_own_batches(
        self,
        event_types: tuple[type[BaseModel], ...],
        handler: BatchSubscriber,
        *,
        name: str,
        most: int,
    ) -> None:
        """`InProcessBus.subscribe_batches`, for the events published on this node only."""
        self._own.subscribe_batches(event_types, handler, name=name, most=most)

    # -- lifetime ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start local delivery and the tasks that talk to Redis; never waits for Redis."""
        await self._local.start()
        await self._own.start()
        self._closing = False
        self._tasks = [
            asyncio.create_task(self._send_forever(), name="redis-bus:send"),
            asyncio.create_task(self._listen_forever(), name="redis-bus:listen"),
        ]

    async def close(self, *, flush_timeout: float = 1.0) -> None:
        """Send what is queued (for at most `flush_timeout` s), then stop."""
        if self._tasks:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._outgoing.join(), flush_timeout)
        self._closing = True
        await tasks.stop(*self._tasks)
        self._tasks = []
        self.connected = False
        await self._local.close()
        await self._own.close()

    def stats(self) -> BusStats:
        waiting = self._outgoing.qsize() + self._sending
        backlog = waiting + self._local.backlog() + self._own.backlog()
        return BusStats(sent=self._sent, received=self._received, backlog=backlog)

    async def drain(self) -> None:
        """Wait until queued events are sent to Redis and local subscribers are done.

        Events still on their way from other nodes are not waited for.
        """
        await self._outgoing.join()
        await self._local.drain()
        await self._own.drain()

    # -- sending ---------------------------------------------------------------------------

    async def _send_forever(self) -> None:
        backoff = Backoff()
        while not self._closing:
            batch = [await self._outgoing.get()]
            while len(batch) < _BATCH and not self._outgoing.empty():
                batch.append(self._outgoing.get_nowait())
            self._sending = len(batch)
            while not self._closing:
                if await self._send(batch):
                    break
                await asyncio.sleep(backoff.next())
            backoff.reset()
            self._sending = 0
            for _ in batch:
                self._outgoing.task_done()

    async def _send(self, batch: list[bytes]) -> bool:
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for bundle in _bundles(batch):
                    pipe.publish(self._channel, envelope.wrap_many(self._tag, bundle))
                await pipe.execute()
        except RedisError as error:
            log.warning("bus_send_failed", error=str(error), waiting=len(batch))
            return False
        return True

    # -- listening ---------------------------------------------------------------------------

    async def _listen_forever(self) -> None:
        backoff = Backoff()
        while not self._closing:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(self._channel)
                await self._listen(pubsub, backoff)
            except RedisError as error:
                self._lost(error)
            finally:
                with contextlib.suppress(RedisError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]
            await asyncio.sleep(backoff.next())

    async def _listen(self, pubsub: PubSub, backoff: Backoff) -> None:
        loop = asyncio.get_running_loop()
        heard_at = pinged_at = loop.time()
        while not self._closing:
            message = await pubsub.get_message(timeout=min(1.0, self._silence_limit / 6))
            now = loop.time()
            if message is None:
                if now - heard_at > self._silence_limit:
                    raise RedisError(f"nothing heard for {self._silence_limit:.1f} s")
                if now - max(heard_at, pinged_at) > self._silence_limit / 3:
                    pinged_at = now
                    await pubsub.ping()
                continue
            heard_at = now
            kind = message["type"]
            if kind in (b"subscribe", "subscribe"):
                backoff.reset()
                self._subscribed()
            elif kind in (b"message", "message"):
                self._receive(message["data"])

    def _subscribed(self) -> None:
        # The client library also reconnects and resubscribes by itself after
        # a drop; either way the confirmation arrives again, and that is the
        # sign that something may have been missed.
        missed = self._subscribed_before or self._missed
        self._subscribed_before = True
        self._missed = False
        self.connected = True
        if not missed:
            log.info("bus_subscribed", channel=self._channel)
            return
        self.reconnects += 1
        log.warning("bus_reconnected", channel=self._channel, reconnects=self.reconnects)
        for callback in list(self.on_reconnect):
            try:
                callback()
            except Exception:
                log.exception("bus_reconnect_callback_failed")

    def _lost(self, error: RedisError) -> None:
        if self.connected or not self._missed:
            log.warning("bus_connection_lost", error=str(error))
        self.connected = False
        self._missed = True

    def _receive(self, message: bytes) -> None:
        origin, payloads = envelope.unwrap_many(message)
        if origin == self._tag:
            return
        for payload in payloads:
            try:
                event = self._codec.decode(payload)
            except UnknownEvent as refusal:
                log.warning("bus_message_refused", origin=origin, reason=str(refusal))
                continue
            if type(event) in self._local_only:
                continue
            self._received += 1
            self._local.publish(event)


def _bundles(batch: list[bytes]) -> list[list[bytes]]:
    """The batch's events in order, as few messages as `_BUNDLE_BYTES` allows."""
    bundles: list[list[bytes]] = [[]]
    size = 0
    for payload in batch:
        if bundles[-1] and size + len(payload) > _BUNDLE_BYTES:
            bundles.append([])
            size = 0
        bundles[-1].append(payload)
        size += len(payload) + 1
    return bundles
