"""Channels as the social module knows them: who is in them and who owns them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

ChannelKind = Literal["direct", "group"]
NotificationLevel = Literal["all", "mentions", "none"]
"""Which of a channel's messages a member wants pushed: every one, those that mention the
member (in a direct channel, every one), or none."""


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
    notification_level: NotificationLevel = "all"


class MemberState(BaseModel):
    """What one member has made of a channel: how far they read, what they want pushed."""

    model_config = ConfigDict(frozen=True)

    read_message_id: int
    notification_level: NotificationLevel


class ChannelLevels(BaseModel):
    """The notification levels of some members of one channel, and the channel's kind."""

    model_config = ConfigDict(frozen=True)

    kind: ChannelKind
    levels: dict[int, NotificationLevel]
    """By user id; a user who is not a member is not in it."""
