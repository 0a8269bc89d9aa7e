"""What the social module tells the rest of the server."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class ChannelChanged(BaseModel):
    """A channel was created, changed, or lost a member; `user_ids` are the ones to tell."""

    model_config = ConfigDict(frozen=True)

    channel_id: int
    event: Literal["added", "removed", "updated"]
    user_ids: tuple[int, ...]


class ReadMarkerMoved(BaseModel):
    """A user's read marker in a channel moved forward.

    `origin_connection` is the connection that moved it, which needs no echo.
    """

    model_config = ConfigDict(frozen=True)

    user_id: int
    channel_id: int
    message_id: int
    origin_connection: str | None = None


class ReceiptShared(BaseModel):
    """A member who shares read receipts has read a channel up to `message_id`.

    `viewer_ids` are the other members who share receipts too, as they were
    when the marker moved: the ones whose devices are told, on whichever node
    they are connected.
    """

    model_config = ConfigDict(frozen=True)

    channel_id: int
    user_id: int
    message_id: int
    viewer_ids: tuple[int, ...]


class FriendshipChanged(BaseModel):
    """A friendship between two users was requested, accepted or removed."""

    model_config = ConfigDict(frozen=True)

    user_ids: tuple[int, int]
    status: Literal["pending", "accepted", "removed"]
    requested_by: int
