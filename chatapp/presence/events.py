"""What presence tells the rest of the server, and what it is told.

The connection events are published by the gateway, wherever it runs, and
kept here because presence is what they feed: a gateway on another node
imports them without importing presence's implementation.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

Status = Literal["online", "offline"]


class PresenceChanged(BaseModel):
    """A user went online or offline."""

    model_config = ConfigDict(frozen=True)

    user_id: int
    status: Status
    last_active_at: int


class ConnectionOpened(BaseModel):
    """A device said hello with a valid token: it is connected (and alive) now.

    `connection_id` is unique across every node of a cluster.
    """

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
    """A device said it is alive."""

    model_config = ConfigDict(frozen=True)

    user_id: int
    device_id: int
    connection_id: str
