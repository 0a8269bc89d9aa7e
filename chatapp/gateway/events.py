"""What the gateway tells the rest of the server (connection events are presence's)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class TypingStarted(BaseModel):
    """A member is typing in a channel; the other members' devices are told."""

    model_config = ConfigDict(frozen=True)

    channel_id: int
    user_id: int
    member_ids: tuple[int, ...]
