"""Presence: heartbeats in, online/offline changes out.

`PresenceTracker` is what other modules may ask; `LocalPresence` keeps the
state in this process. The LevelDB store is in `chatapp.presence.adapters`.
"""

from chatapp.presence.events import (
    ConnectionClosed,
    ConnectionOpened,
    HeartbeatReceived,
    PresenceChanged,
    Status,
)
from chatapp.presence.service import OBSERVED_EVENTS, LocalPresence
from chatapp.presence.store import PresenceStore, PresenceStoreError
from chatapp.presence.tracker import (
    HeartbeatSink,
    LiveDevices,
    PresenceKeeper,
    PresenceTracker,
    UserPresence,
)
from chatapp.presence.wheel import TimingWheel

__all__ = [
    "OBSERVED_EVENTS",
    "ConnectionClosed",
    "ConnectionOpened",
    "HeartbeatReceived",
    "HeartbeatSink",
    "LiveDevices",
    "LocalPresence",
    "PresenceChanged",
    "PresenceKeeper",
    "PresenceStore",
    "PresenceStoreError",
    "PresenceTracker",
    "Status",
    "TimingWheel",
    "UserPresence",
]
