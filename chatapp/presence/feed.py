"""What presence learns from the bus: connections, heartbeats and logouts."""

from __future__ import annotations

from pydantic import BaseModel

from chatapp.accounts import DeviceRevoked
from chatapp.bus import Bus
from chatapp.gateway.events import ConnectionClosed, ConnectionOpened, HeartbeatReceived
from chatapp.presence.service import Presence


def feed_presence(bus: Bus, presence: Presence) -> None:
    """Subscribe presence to the events that move it, on one queue so their order holds."""

    async def handle(event: BaseModel) -> None:
        if isinstance(event, HeartbeatReceived):
            presence.heartbeat(event.user_id, event.device_id)
        elif isinstance(event, ConnectionOpened):
            presence.connected(event.user_id, event.connection_id)
            presence.heartbeat(event.user_id, event.device_id)
        elif isinstance(event, ConnectionClosed):
            presence.disconnected(event.user_id, event.connection_id)
        elif isinstance(event, DeviceRevoked):
            presence.device_gone(event.user_id, event.device_id)

    bus.subscribe_all(
        (ConnectionOpened, ConnectionClosed, HeartbeatReceived, DeviceRevoked),
        handle,
        name="presence",
    )
