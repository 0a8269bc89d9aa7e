"""What the gateway tells the rest of the server."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class TypingStarted(BaseModel):
    """A member is typing in a channel; the other members' devices are told."""

    model_config = ConfigDict(frozen=True)

    channel_id: int
    user_id: int
    member_ids: tuple[int, ...]


class ConnectionOpened(BaseModel):
    """A device said hello with a valid token: it is connected (and alive) now."""

    model_config = ConfigDict(frozen=True)

    user_id: int
    device_id: int
    connection_id: str


class ConnectionClosed(BaseModel):
    """A connection ended, for whatever reason. The device may come back."""

    model_config = ConfigDict(frozen=True)

    user_id: int
    device_id: int
    connection_id: str


class HeartbeatReceived(BaseModel):
    """A device said it is alive (presence listens)."""

    model_config = ConfigDict(frozen=True)

    user_id: int
    device_id: int
    connection_id: str
