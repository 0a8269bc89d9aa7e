"""What the rest of the server may ask presence: the seam a remote presence plugs into."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Protocol

from pydantic import BaseModel, ConfigDict

from chatapp.presence.events import Status


class UserPresence(BaseModel):
    model_config = ConfigDict(frozen=True)

    user_id: int
    status: Status
    last_active_at: int


class LiveDevices(Protocol):
    """Who is connected right now (push is for the others)."""

    async def has_live_device(self, user_id: int) -> bool:
        """True while the user has at least one connected WebSocket, on any node."""
        ...

    async def live_among(self, user_ids: Collection[int]) -> set[int]:
        """Those of `user_ids` for whom `has_live_device` is True, asked at once."""
        ...


class PresenceTracker(LiveDevices, Protocol):
    """Presence as its readers see it. The local tracker keeps the state in this
    process; a cluster's answers the same calls from a shared store."""

    async def statuses(self, user_ids: Iterable[int]) -> list[UserPresence]:
        """Each user's status and last_active_at, in the order asked."""
        ...


class HeartbeatSink(Protocol):
    """Where the gateway hands a heartbeat without an event (one arrives per device every
    few seconds: a bus event and a model each would be most of what an idle server does)."""

    def heard(self, user_id: int, device_id: int) -> bool:
        """Take a connected device's heartbeat now; False if it must go through `observe`
        as a `HeartbeatReceived` instead, in order with the other events."""
        ...


class PresenceKeeper(PresenceTracker, HeartbeatSink, Protocol):
    """What the composition root runs: fed from the bus, started and stopped.

    `LocalPresence` keeps the state in this process; `chatapp.cluster`'s
    `RedisPresence` keeps it in Redis for every node.
    """

    async def observe(self, event: BaseModel) -> None:
        """One of the events the implementation's OBSERVED_EVENTS names."""
        ...

    def start(self, interval: float = 0.5) -> None: ...

    async def close(self) -> None: ...
