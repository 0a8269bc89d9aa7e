"""Every event that crosses the bus: one list, so a bus between processes knows them all."""

from __future__ import annotations

from pydantic import BaseModel

from chatapp.accounts.events import DeviceRevoked
from chatapp.bus.codec import EventCodec
from chatapp.gateway.events import TypingStarted
from chatapp.messaging.events import MessageAccepted, MessageUpdated
from chatapp.presence.events import (
    ConnectionClosed,
    ConnectionOpened,
    HeartbeatReceived,
    PresenceChanged,
)
from chatapp.social.events import (
    ChannelChanged,
    FriendshipChanged,
    ReadMarkerMoved,
    ReceiptShared,
)

EVENT_TYPES: tuple[type[BaseModel], ...] = (
    ChannelChanged,
    ConnectionClosed,
    ConnectionOpened,
    DeviceRevoked,
    FriendshipChanged,
    HeartbeatReceived,
    MessageAccepted,
    MessageUpdated,
    PresenceChanged,
    ReadMarkerMoved,
    ReceiptShared,
    TypingStarted,
)


def event_codec() -> EventCodec:
    return EventCodec(EVENT_TYPES)
