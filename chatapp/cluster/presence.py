"""Presence shared by every node: live devices, deadlines and connections in Redis.

The node that holds a socket reports it: its gateway's `ConnectionOpened`,
`HeartbeatReceived` and `ConnectionClosed` stay on that node (the bus keeps
them local, see `NODE_LOCAL_EVENTS`) and are written to Redis here.
`DeviceRevoked` comes from any node; handling it again changes nothing.

A device is live while its deadline (`presence:deadlines`, a sorted set) is
ahead; each heartbeat moves it `timeout` ahead. A user is online while any
device is live, so a device that reconnects on another node within the
timeout never shows offline. Every node sweeps, and a due device is popped by
exactly one sweep: the Lua script that pops it also makes the user offline
and publishes that, once in the cluster (`presence_scripts`).

A connection counts while its node's registry entry is live (this run of the
node: the entry's `instance`), so the users of a node that dies stop having
live devices when its entry expires, and go offline when their deadlines pass.

Heartbeats are taken without an event (`heard`) and written in batches: the
heartbeats heard while a batch is in Redis go in the next, one pipeline of
scripts each, so a node's idle sockets cost Redis one round trip per batch
rather than one per heartbeat. Their order against the other events does not
matter here: a heartbeat only moves a deadline forward, and one that lands
after its device was revoked is ignored by the script (the tombstone).

Time is the injected clock's wall time (`now_ms`), shared by the nodes: their
clocks must agree to well within the timeout (NTP does).
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Iterable

import structlog
from pydantic import BaseModel
from redis.asyncio import Redis
from redis.exceptions import RedisError

from chatapp.accounts.events import DeviceRevoked
from chatapp.clock import Clock
from chatapp.cluster import envelope, presence_scripts, tasks
from chatapp.cluster.identity import NodeIdentity
from chatapp.cluster.keys import ClusterKeys
from chatapp.cluster.scripts import run_for_each
from chatapp.presence.events import ConnectionClosed, ConnectionOpened, HeartbeatReceived, Status
from chatapp.presence.service import OBSERVED_EVENTS, PERSIST_INTERVAL_MS
from chatapp.presence.store import PresenceStore, PresenceStoreError
from chatapp.presence.tracker import UserPresence

log = structlog.get_logger(__name__)

__all__ = ["OBSERVED_EVENTS", "RedisPresence"]

# Devices popped per script run: a sweep never holds Redis for long.
_EXPIRY_BATCH = 1000


class RedisPresence:
    """`PresenceTracker` with its state in Redis; `observe` as `LocalPresence.observe`.

    Subscribe `observe` to `OBSERVED_EVENTS` on the node's `RedisBus`, and run
    the node's `NodeRegistry`: connections count only while it is registered.
    `PresenceChanged` is published by Redis on the bus channel, so it needs no bus here.
    """

    def __init__(
        self,
        redis: Redis,
        store: PresenceStore,
        clock: Clock,
        *,
        keys: ClusterKeys,
        node: NodeIdentity,
        timeout_ms: int,
    ) -> None:
        self._redis = redis
        self._store = store
        self._clock = clock
        self._keys = keys
        self._owner = node.tag
        self._timeout_ms = timeout_ms
        self._announce = envelope.prefix(envelope.EVERYONE)
        self._heartbeat = redis.register_script(presence_scripts.HEARTBEAT)
        self._device_gone = redis.register_script(presence_scripts.DEVICE_GONE)
        self._expire_due = redis.register_script(presence_scripts.EXPIRE_DUE)
        self._has_live = redis.register_script(presence_scripts.HAS_LIVE_CONNECTION)
        self._sweeper: asyncio.Task[None] | None = None
        # Heartbeats heard and not yet written; the task writing them, while it runs.
        self._beats: set[tuple[int, int]] = set()
        self._writing_beats: asyncio.Task[None] | None = None

    # -- what the gateway reports ------------------------------------------------------

    async def observe(self, event: BaseModel) -> None:
        """One of OBSERVED_EVENTS, from the bus; a Redis failure is logged and skipped."""
        try:
            if isinstance(event, HeartbeatReceived):
                await self.heartbeat(event.user_id, event.device_id)
            elif isinstance(event, ConnectionOpened):
                await self.connected(event.user_id, event.connection_id)
                await self.heartbeat(event.user_id, event.device_id)
            elif isinstance(event, ConnectionClosed):
                await self.disconnected(event.user_id, event.connection_id)
            elif isinstance(event, DeviceRevoked):
                await self.device_gone(event.user_id, event.device_id)
        except RedisError as error:
            log.warning("presence_not_recorded", event_type=type(event).__name__, error=str(error))

    def heard(self, user_id: int, device_id: int) -> bool:
        """A heartbeat, written with the next batch; always taken (True)."""
        self._beats.add((user_id, device_id))
        if self._writing_beats is None:
            self._writing_beats = asyncio.get_running_loop().create_task(
                self._write_beats(), name="presence-heartbeats"
            )
        return True

    async def heartbeats_written(self) -> None:
        """Wait until the heartbeats heard so far are in Redis (or failed to be)."""
        while self._writing_beats is not None:
            await asyncio.wait((self._writing_beats,))

    async def heartbeat(self, user_id: int, device_id: int) -> None:
        await self._heartbeats([(user_id, device_id)])

    async def _heartbeats(self, devices: Iterable[tuple[int, int]]) -> None:
        """Move the devices' deadlines, in one round trip; save who came online."""
        now_ms = self._clock.now_ms()
        devices = list(devices)
        async with self._redis.pipeline(transaction=False) as pipe:
            for user_id, device_id in devices:
                await self._heartbeat(
                    keys=self._device_keys(user_id, device_id),
                    args=[
                        _member(user_id, device_id),
                        device_id,
                        now_ms,
                        now_ms + self._timeout_ms,
                        PERSIST_INTERVAL_MS,
                        self._keys.bus_channel,
                        self._announce,
                        user_id,
                    ],
                    client=pipe,
                )
            answers = await pipe.execute()
        for (user_id, _), (came_online, persist, last_active_at) in zip(
            devices, answers, strict=True
        ):
            if came_online:
                log.info("presence_changed", user_id=user_id, status="online")
            if persist:
                await self._persist(user_id, "online", int(last_active_at))

    async def _write_beats(self) -> None:
        try:
            while self._beats:
                beats, self._beats = self._beats, set()
                try:
                    await self._heartbeats(sorted(beats))
                except RedisError as error:
                    log.warning("presence_not_recorded", event_type="heartbeats", error=str(error))
        finally:
            self._writing_beats = None

    async def connected(self, user_id: int, connection_id: str) -> None:
        await self._redis.hset(self._keys.connections(user_id), connection_id, self._owner)

    async def disconnected(self, user_id: int, connection_id: str) -> None:
        await self._redis.hdel(self._keys.connections(user_id), connection_id)

    async def device_gone(self, user_id: int, device_id: int) -> None:
        """The device logged out or was revoked: it is not live any more, on any node."""
        went_offline, last_active_at = await self._device_gone(
            keys=self._device_keys(user_id, device_id),
            args=[
                _member(user_id, device_id),
                device_id,
                # Long enough for any heartbeat already on its way to arrive and be ignored.
                2 * self._timeout_ms,
                self._keys.bus_channel,
                self._announce,
                user_id,
            ],
        )
        if went_offline:
            log.info("presence_changed", user_id=user_id, status="offline")
            await self._persist(user_id, "offline", int(last_active_at))

    async def expire_due(self) -> int:
        """Expire devices whose heartbeats stopped, cluster-wide; returns how many this node did."""
        expired = 0
        while True:
            answer = await self._expire_due(
                keys=[self._keys.deadlines],
                args=[
                    self._clock.now_ms(),
                    _EXPIRY_BATCH,
                    self._keys.devices_prefix,
                    self._keys.user_prefix,
                    self._keys.bus_channel,
                    self._announce,
                ],
            )
            expired += int(answer[0])
            offline = answer[1:]
            for user_id, last_active_at in zip(offline[::2], offline[1::2], strict=True):
                log.info("presence_changed", user_id=int(user_id), status="offline")
                await self._persist(int(user_id), "offline", int(last_active_at))
            if int(answer[0]) < _EXPIRY_BATCH:
                return expired

    # -- what others ask -------------------------------------------------------------

    async def has_live_device(self, user_id: int) -> bool:
        """True while a live node holds a WebSocket of the user.

        When Redis cannot answer: False, so a notification is pushed rather than lost.
        """
        try:
            live = await self._has_live(
                keys=[self._keys.connections(user_id)],
                args=[self._clock.now_ms(), self._keys.nodes, self._keys.node_prefix],
            )
        except RedisError as error:
            log.warning("presence_unknown", user_id=user_id, error=str(error))
            return False
        return bool(live)

    async def live_among(self, user_ids: Collection[int]) -> set[int]:
        """`has_live_device` for each, as one pipeline. When Redis cannot answer: nobody, so
        notifications are pushed rather than lost."""
        wanted = list(user_ids)
        if not wanted:
            return set()
        try:
            answers = await run_for_each(
                self._redis,
                self._has_live,
                [self._keys.connections(user_id) for user_id in wanted],
                [self._clock.now_ms(), self._keys.nodes, self._keys.node_prefix],
            )
        except RedisError as error:
            log.warning("presence_unknown", users=len(wanted), error=str(error))
            return set()
        return {user_id for user_id, live in zip(wanted, answers, strict=True) if live}

    async def statuses(self, user_ids: Iterable[int]) -> list[UserPresence]:
        """Raises `PresenceStoreError` when Redis cannot answer."""
        wanted = list(user_ids)
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for user_id in wanted:
                    pipe.exists(self._keys.devices(user_id))
                    pipe.hget(self._keys.user(user_id), "last_active_at")
                answers = await pipe.execute()
            unknown = [u for u, seen in zip(wanted, answers[1::2], strict=True) if seen is None]
            remembered = await self._remember(unknown)
        except RedisError as error:
            raise PresenceStoreError(f"presence unavailable: {error}") from None
        return [
            UserPresence(
                user_id=user_id,
                status="online" if live else "offline",
                last_active_at=int(seen) if seen is not None else remembered[user_id],
            )
            for user_id, live, seen in zip(wanted, answers[::2], answers[1::2], strict=True)
        ]

    # -- lifetime ----------------------------------------------------------------------

    def start(self, interval: float = 0.5) -> None:
        self._sweeper = asyncio.create_task(self._sweep_forever(interval), name="presence-sweeper")

    async def close(self) -> None:
        """Stop sweeping and close the store. Users stay online: other nodes may hold them."""
        await tasks.stop(self._sweeper)
        self._sweeper = None
        await tasks.stop(self._writing_beats)
        await self._store.close()

    # -- inside --------------------------------------------------------------------

    def _device_keys(self, user_id: int, device_id: int) -> list[str]:
        keys = self._keys
        return [
            keys.deadlines,
            keys.devices(user_id),
            keys.user(user_id),
            keys.revoked(user_id, device_id),
        ]

    async def _remember(self, user_ids: list[int]) -> dict[int, int]:
        """last_active_at from the store for users Redis has not seen, kept in Redis after."""
        found: dict[int, int] = {}
        for user_id in user_ids:
            try:
                stored = await self._store.load(user_id)
            except PresenceStoreError:
                log.exception("presence_not_loaded", user_id=user_id)
                stored = None
            # A stored "online" is from before Redis forgot: nobody is online
            # until they heartbeat again.
            found[user_id] = stored[1] if stored else 0
            # HSETNX: a heartbeat that landed meanwhile is newer and stays.
            await self._redis.hsetnx(self._keys.user(user_id), "last_active_at", found[user_id])
        return found

    async def _persist(self, user_id: int, status: Status, last_active_at: int) -> None:
        try:
            await self._store.save(user_id, status, last_active_at)
        except Exception:
            log.exception("presence_not_saved", user_id=user_id)

    async def _sweep_forever(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.expire_due()
            except RedisError as error:
                log.warning("presence_not_expired", error=str(error))


def _member(user_id: int, device_id: int) -> str:
    return f"{user_id}:{device_id}"
