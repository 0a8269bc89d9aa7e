"""Channels as the social module knows them: who is in them and who owns them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

ChannelKind = Literal["direct", "group"]


class Channel(BaseModel):
    model_config = ConfigDict(frozen=True)

    channel_id: int
    kind: ChannelKind
    name: str
    owner_id: int | None
    members: tuple[int, ...]
    created_at: int


class Membership(BaseModel):
    """One user's place in a channel."""

    model_config = ConfigDict(frozen=True)

    channel: Channel
    read_message_id: int
