"""An async Python client for the chat server; also the harness of our own tests."""

from chatapp.client.frames import (
    Ack,
    ChannelEvent,
    ErrorEvent,
    Event,
    MessageEvent,
    PresenceEvent,
    ReadEvent,
    ReceiptEvent,
    TypingEvent,
    UpdateEvent,
)
from chatapp.client.http import ChatApiError, ChatClient, RawAnswer
from chatapp.client.realtime import Backoff, RealtimeClient, RealtimeError, State

__all__ = [
    "Ack",
    "Backoff",
    "ChannelEvent",
    "ChatApiError",
    "ChatClient",
    "ErrorEvent",
    "Event",
    "MessageEvent",
    "PresenceEvent",
    "RawAnswer",
    "ReadEvent",
    "RealtimeClient",
    "RealtimeError",
    "ReceiptEvent",
    "State",
    "TypingEvent",
    "UpdateEvent",
]
