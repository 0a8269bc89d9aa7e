"""Presence: heartbeats in, online/offline changes out."""

from chatapp.presence.events import PresenceChanged
from chatapp.presence.service import Presence, UserPresence
from chatapp.presence.store import LevelDBPresenceStore, PresenceStore
from chatapp.presence.wheel import TimingWheel

__all__ = [
    "LevelDBPresenceStore",
    "Presence",
    "PresenceChanged",
    "PresenceStore",
    "TimingWheel",
    "UserPresence",
]
