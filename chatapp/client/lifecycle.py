"""Where a realtime client is in its life, and the errors that end it."""

from __future__ import annotations

from enum import Enum


class State(Enum):
    CONNECTING = "connecting"
    READY = "ready"  # connected and caught up: what arrives now is live
    CLOSED = "closed"


class RealtimeError(Exception):
    """The server refused a frame (`code` as in the protocol), or the client stopped."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class TokenRefused(Exception):
    """The server closed with 4401: the token is unknown or revoked."""
