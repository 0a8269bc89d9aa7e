"""The node registry: which nodes are live, where clients reach them, how loaded they are.

Each node keeps an entry (`<cluster>:node:<node_id>`, a hash) and a deadline
in `<cluster>:nodes` (a sorted set, the injected clock's ms). It refreshes
both every `refresh_interval` seconds with its live connection count, so
discovery sees counts at most that old; a node that stops refreshing (killed)
is not live once its deadline passes, `ttl_ms` after its last refresh, and
Redis deletes its hash a little later (PEXPIRE, on Redis's own clock).

Registering is refused while another process holds a live entry under the
same node id; stopping deletes the entry at once.

Discovery prefers the nodes that refreshed within `STALE_REFRESHES` of their
intervals: a killed node stays live for `ttl_ms` (30 s by default), and
with its last count frozen it was often the least loaded, so the clients it
dropped were sent back to it until it expired.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from chatapp.clock import Clock
from chatapp.cluster import tasks
from chatapp.cluster.connection import ClusterUnavailable
from chatapp.cluster.identity import NodeIdentity
from chatapp.cluster.keys import ClusterKeys
from chatapp.discovery import NodeInfo

log = structlog.get_logger(__name__)

STALE_REFRESHES = 3
"""Refresh intervals missed after which discovery sends nobody to a node still live."""

# KEYS: nodes, node:<id>; ARGV: node_id, instance, now, ttl, ws_url, connections, started_at
# -> 0 when written, else ms until the other process's entry expires.
_WRITE = """
local now = tonumber(ARGV[3])
local deadline = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]) or '0')
local holder = redis.call('HGET', KEYS[2], 'instance')
if holder and holder ~= ARGV[2] and deadline > now then return deadline - now end
redis.call('HSET', KEYS[2], 'node_id', ARGV[1], 'instance', ARGV[2], 'ws_url', ARGV[5],
  'connections', ARGV[6], 'started_at', ARGV[7], 'last_seen_at', ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), ARGV[1])
return 0
"""

# KEYS: nodes, node:<id>; ARGV: node_id, instance. Only this process's entry is removed.
_REMOVE = """
if redis.call('HGET', KEYS[2], 'instance') == ARGV[2] then
  redis.call('DEL', KEYS[2])
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 1
end
return 0
"""


class NodeIdTaken(Exception):
    """Another live node is registered under this node id."""

    def __init__(self, node_id: str, free_in_ms: int) -> None:
        super().__init__(
            f"node id {node_id!r} is in use by another live node "
            f"(its entry expires in {free_in_ms / 1000:.1f} s unless it is refreshed)"
        )
        self.node_id = node_id
        self.free_in_ms = free_in_ms


class NodeRegistry:
    """This node's entry, and what the entries of all nodes say (a `NodeDirectory`)."""

    def __init__(
        self,
        redis: Redis,
        clock: Clock,
        *,
        keys: ClusterKeys,
        node: NodeIdentity,
        ws_url: str,
        connections: Callable[[], int],
        ttl_ms: int,
        refresh_interval: float = 2.0,
    ) -> None:
        self._redis = redis
        self._clock = clock
        self._keys = keys
        self._node = node
        self._ws_url = ws_url
        self._connections = connections
        self._ttl_ms = ttl_ms
        self._refresh_interval = min(refresh_interval, ttl_ms / 3000)
        self._write = redis.register_script(_WRITE)
        self._remove = redis.register_script(_REMOVE)
        self._started_at = 0
        self._refresher: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Register (else `NodeIdTaken`, `ClusterUnavailable`); then refresh in the background."""
        self._started_at = self._clock.now_ms()
        try:
            free_in_ms = await self._write_entry()
        except RedisError as error:
            raise ClusterUnavailable(f"cannot register node: {error}") from None
        if free_in_ms:
            raise NodeIdTaken(self._node.node_id, free_in_ms)
        log.info("node_registered", node_id=self._node.node_id, ws_url=self._ws_url)
        self._refresher = asyncio.create_task(self._refresh_forever(), name="node-registry")

    async def refresh(self) -> bool:
        """Write this node's entry again; False (and logged) when another process holds the id."""
        free_in_ms = await self._write_entry()
        if free_in_ms:
            log.error("node_id_taken_over", node_id=self._node.node_id)
        return not free_in_ms

    async def stop(self) -> None:
        """Stop refreshing and leave the registry now (best effort when Redis is away)."""
        await tasks.stop(self._refresher)
        self._refresher = None
        try:
            await self._remove(
                keys=[self._keys.nodes, self._keys.node(self._node.node_id)],
                args=[self._node.node_id, self._node.instance],
            )
        except RedisError as error:
            log.warning("node_not_deregistered", error=str(error))
        else:
            log.info("node_deregistered", node_id=self._node.node_id)

    async def live_nodes(self) -> list[NodeInfo]:
        """Every live node, by node id; raises `ClusterUnavailable` when Redis cannot answer."""
        now = self._clock.now_ms()
        try:
            node_ids = await self._redis.zrangebyscore(self._keys.nodes, f"({now}", "+inf")
            async with self._redis.pipeline(transaction=False) as pipe:
                for node_id in node_ids:
                    pipe.hgetall(self._keys.node(_text(node_id)))
                entries = await pipe.execute()
            # Index members whose deadline passed long ago are no node's any more.
            await self._redis.zremrangebyscore(self._keys.nodes, "-inf", now - self._ttl_ms)
        except RedisError as error:
            raise ClusterUnavailable(f"cannot list nodes: {error}") from None
        nodes = [_node_info(entry) for entry in entries if entry]
        return sorted(nodes, key=lambda n: n.node_id)

    async def least_loaded(self) -> NodeInfo | None:
        """The live node with the fewest connections, of those that refreshed lately if any
        did; None when none is known or Redis is away.

        With None the caller answers with its own node.
        """
        try:
            nodes = await self.live_nodes()
        except ClusterUnavailable as error:
            log.warning("discovery_without_registry", error=str(error))
            return None
        stale_before = self._clock.now_ms() - STALE_REFRESHES * self._refresh_interval * 1000
        fresh = [node for node in nodes if node.last_seen_at >= stale_before]
        return min(fresh or nodes, key=lambda n: (n.connections, n.node_id), default=None)

    async def _write_entry(self) -> int:
        now = self._clock.now_ms()
        free_in_ms = await self._write(
            keys=[self._keys.nodes, self._keys.node(self._node.node_id)],
            args=[
                self._node.node_id,
                self._node.instance,
                now,
                self._ttl_ms,
                self._ws_url,
                self._connections(),
                self._started_at,
            ],
        )
        return int(free_in_ms)

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_interval)
            try:
                await self.refresh()
            except RedisError as error:
                log.warning("node_not_refreshed", error=str(error))


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _node_info(entry: dict[bytes, bytes]) -> NodeInfo:
    return NodeInfo(
        node_id=entry[b"node_id"].decode(),
        ws_url=entry[b"ws_url"].decode(),
        connections=int(entry[b"connections"]),
        started_at=int(entry[b"started_at"]),
        last_seen_at=int(entry[b"last_seen_at"]),
    )
