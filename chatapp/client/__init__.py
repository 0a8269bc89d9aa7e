"""An async Python client for the chat server; also the harness of our own tests."""

from chatapp.client.http import ChatApiError, ChatClient, RawAnswer
from chatapp.client.realtime import (
    Ack,
    Backoff,
    ChannelEvent,
    ErrorEvent,
    Event,
    MessageEvent,
    PresenceEvent,
    ReadEvent,
    RealtimeClient,
    RealtimeError,
    State,
    TypingEvent,
)

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
    "State",
    "TypingEvent",
]
