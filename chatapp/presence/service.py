"""Presence kept in this process: who is online, fed by heartbeats, expired on a timing wheel."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Collection, Iterable

import structlog
from pydantic import BaseModel

from chatapp.accounts.events import DeviceRevoked
from chatapp.bus import Bus
from chatapp.clock import Clock
from chatapp.presence.events import (
    ConnectionClosed,
    ConnectionOpened,
    HeartbeatReceived,
    PresenceChanged,
    Status,
)
from chatapp.presence.store import PresenceStore, PresenceStoreError
from chatapp.presence.tracker import UserPresence
from chatapp.presence.wheel import TimingWheel

log = structlog.get_logger(__name__)

# last_active_at is written on every change of status, and otherwise at most
# this often per user: heartbeats must not cost a disk write each.
PERSIST_INTERVAL_MS = 60_000

SWEEP_INTERVAL = 0.5
# A sweep this much later than its interval means the process was stopped
# (SIGSTOP, a suspended VM) or starved: its own heartbeats may still be unread.
# Half a timeout: a device that heartbeats at least twice per timeout had its
# deadline about that far ahead, so a shorter gap does not expire it. The floor
# keeps tiny (test) timeouts from seeing a stall in every busy moment.
STALL_SHARE_OF_TIMEOUT = 0.5
STALL_FLOOR_SECONDS = 1.0


# What moves presence, handled on one queue so that their order holds. A
# heartbeat of a device already live, with nothing to persist, is taken
# directly (`heard`) instead: it only moves that device's deadline forward and
# its last_active_at, which no event in the queue depends on, and nothing it
# does undoes an event behind it (a revocation queued before it still drops
# the device when handled). Any other heartbeat is an event in the queue.
OBSERVED_EVENTS: tuple[type[BaseModel], ...] = (
    ConnectionOpened,
    ConnectionClosed,
    HeartbeatReceived,
    DeviceRevoked,
)


class LocalPresence:
    """A device is live while it heartbeats; a user is online while any device is live.

    A dropped connection changes nothing by itself: the device stays live until
    its heartbeats stop for `timeout`, so a client that reconnects in time
    never shows as offline. Logging out the last device ends it at once.

    The state lives in this process; it learns everything from the bus
    (`observe`), so the gateway that reports connections may run elsewhere.
    """

    def __init__(self, store: PresenceStore, bus: Bus, clock: Clock, *, timeout_ms: int) -> None:
        self._store = store
        self._bus = bus
        self._clock = clock
        self._timeout = timeout_ms / 1000
        self._wheel: TimingWheel[tuple[int, int]] = TimingWheel(resolution=0.1)
        self._live_devices: dict[int, set[int]] = {}
        self._last_active: dict[int, int] = {}
        self._persisted_at: dict[int, int] = {}
        self._connections: dict[int, set[str]] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self._sweep_interval = SWEEP_INTERVAL
        self._stall_after = max(self._timeout * STALL_SHARE_OF_TIMEOUT, STALL_FLOOR_SECONDS)
        self._swept_at: float | None = None
        self._grace_until = 0.0

    # -- what the gateway reports ------------------------------------------------------

    async def observe(self, event: BaseModel) -> None:
        """One of OBSERVED_EVENTS, from the bus."""
        if isinstance(event, HeartbeatReceived):
            await self.heartbeat(event.user_id, event.device_id)
        elif isinstance(event, ConnectionOpened):
            self.connected(event.user_id, event.connection_id)
            await self.heartbeat(event.user_id, event.device_id)
        elif isinstance(event, ConnectionClosed):
            self.disconnected(event.user_id, event.connection_id)
        elif isinstance(event, DeviceRevoked):
            await self.device_gone(event.user_id, event.device_id)

    async def heartbeat(self, user_id: int, device_id: int) -> None:
        now_ms = self._clock.now_ms()
        self._wheel.schedule((user_id, device_id), self._clock.monotonic() + self._timeout)
        devices = self._live_devices.setdefault(user_id, set())
        came_online = not devices
        devices.add(device_id)
        self._last_active[user_id] = now_ms
        if came_online:
            await self._change(user_id, "online", now_ms)
        elif now_ms - self._persisted_at.get(user_id, 0) >= PERSIST_INTERVAL_MS:
            await self._persist(user_id, "online", now_ms)

    def heard(self, user_id: int, device_id: int) -> bool:
        """A heartbeat of a live device whose last_active_at is not due to be saved: taken
        now, with no event (True). Otherwise False: it goes through `observe`."""
        devices = self._live_devices.get(user_id)
        if devices is None or device_id not in devices:
            return False
        now_ms = self._clock.now_ms()
        if now_ms - self._persisted_at.get(user_id, 0) >= PERSIST_INTERVAL_MS:
            return False
        self._wheel.schedule((user_id, device_id), self._clock.monotonic() + self._timeout)
        self._last_active[user_id] = now_ms
        return True

    def connected(self, user_id: int, connection_id: str) -> None:
        self._connections.setdefault(user_id, set()).add(connection_id)

    def disconnected(self, user_id: int, connection_id: str) -> None:
        connections = self._connections.get(user_id)
        if connections is not None:
            connections.discard(connection_id)
            if not connections:
                del self._connections[user_id]

    async def device_gone(self, user_id: int, device_id: int) -> None:
        """The device logged out or was revoked: it is not live any more, now."""
        self._wheel.cancel((user_id, device_id))
        await self._drop_device(user_id, device_id)

    async def expire_due(self) -> int:
        """Expire devices whose heartbeats stopped; returns how many expired."""
        expired = self._wheel.pop_due(self._clock.monotonic())
        for user_id, device_id in expired:
            await self._drop_device(user_id, device_id)
        return len(expired)

    async def sweep(self) -> int:
        """The sweeper's pass: `expire_due`, unless the process has just come back from a
        stall; returns how many expired.

        After a stall the heartbeats sent meanwhile are still in socket buffers and
        on the bus, behind this pass: expiring now would show every friend offline
        and online again in the same millisecond. So a pass that comes much later
        than its interval grants one timeout of grace, in which nothing expires by
        time (a logout still ends a device at once); a device that really stopped
        expires when the grace ends.
        """
        now = self._clock.monotonic()
        last, self._swept_at = self._swept_at, now
        if last is not None and now - last > self._sweep_interval + self._stall_after:
            self._grace_until = now + self._timeout
            log.warning(
                "presence_sweep_stalled",
                stalled_seconds=round(now - last, 3),
                grace_seconds=self._timeout,
            )
        if now < self._grace_until:
            return 0
        return await self.expire_due()

    @property
    def sweep_work(self) -> int:
        """Device entries examined by expiry so far (0 while nobody expires)."""
        return self._wheel.examined

    # -- what others ask -------------------------------------------------------------

    async def has_live_device(self, user_id: int) -> bool:
        """True while the user has a connected WebSocket (push is for the others)."""
        return user_id in self._connections

    async def live_among(self, user_ids: Collection[int]) -> set[int]:
        return {user_id for user_id in user_ids if user_id in self._connections}

    def is_online(self, user_id: int) -> bool:
        return user_id in self._live_devices

    async def statuses(self, user_ids: Iterable[int]) -> list[UserPresence]:
        return [await self._presence(user_id) for user_id in user_ids]

    # -- lifetime ----------------------------------------------------------------------

    def start(self, interval: float = SWEEP_INTERVAL) -> None:
        self._sweep_interval = interval
        self._swept_at = self._clock.monotonic()
        self._sweeper = asyncio.create_task(self._sweep_forever(interval), name="presence-sweeper")

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        # Whoever is online now will be offline when the process is gone.
        for user_id in list(self._live_devices):
            await self._persist(user_id, "offline", self._last_active[user_id])
        await self._store.close()

    # -- inside --------------------------------------------------------------------

    async def _drop_device(self, user_id: int, device_id: int) -> None:
        devices = self._live_devices.get(user_id)
        if devices is None:
            return
        devices.discard(device_id)
        if not devices:
            del self._live_devices[user_id]
            await self._change(user_id, "offline", self._last_active[user_id])

    async def _change(self, user_id: int, status: Status, last_active_at: int) -> None:
        await self._persist(user_id, status, last_active_at)
        self._bus.publish(
            PresenceChanged(user_id=user_id, status=status, last_active_at=last_active_at)
        )

    async def _persist(self, user_id: int, status: Status, last_active_at: int) -> None:
        try:
            await self._store.save(user_id, status, last_active_at)
        except Exception:
            log.exception("presence_not_saved", user_id=user_id)
            return
        self._persisted_at[user_id] = self._clock.now_ms()

    async def _presence(self, user_id: int) -> UserPresence:
        if user_id in self._live_devices:
            return UserPresence(
                user_id=user_id, status="online", last_active_at=self._last_active[user_id]
            )
        last_active_at = self._last_active.get(user_id)
        if last_active_at is None:
            try:
                stored = await self._store.load(user_id)
            except PresenceStoreError:
                log.exception("presence_not_loaded", user_id=user_id)
                stored = None
            # A stored "online" is from before a restart: nobody is online
            # until they heartbeat again.
            last_active_at = stored[1] if stored else 0
            self._last_active[user_id] = last_active_at
        return UserPresence(user_id=user_id, status="offline", last_active_at=last_active_at)

    async def _sweep_forever(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            await self.sweep()
