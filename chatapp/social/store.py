"""The contract of the channel store; SQLite is one implementation."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Protocol

from chatapp.errors import StoreFailed
from chatapp.social.models import (
    Channel,
    ChannelKind,
    ChannelLevels,
    Membership,
    MemberState,
    NotificationLevel,
)


class ChannelStoreError(StoreFailed):
    """The channel or friend store could not read or write."""


class ChannelStore(Protocol):
    async def create_channel(
        self,
        *,
        kind: ChannelKind,
        name: str,
        owner_id: int | None,
        member_ids: Sequence[int],
        created_at: int,
        direct_key: str | None = None,
    ) -> Channel | None:
        """Create a channel with its members; None if `direct_key` exists already."""
        ...

    async def direct_channel(self, direct_key: str) -> Channel | None: ...

    async def get_channel(self, channel_id: int) -> Channel | None: ...

    async def rename(self, channel_id: int, name: str) -> None: ...

    async def add_member(self, channel_id: int, user_id: int, *, joined_at: int) -> bool:
        """Add a member; False if already one."""
        ...

    async def remove_member(self, channel_id: int, user_id: int) -> bool:
        """Remove a member; False if not one. In the same write, a group this member owned
        passes to the member with the lowest user id (a stable stand-in for the
        longest-standing one), or to nobody when none is left: a group never outlives its
        owner with nobody able to run it."""
        ...

    async def memberships(self, user_id: int) -> list[Membership]:
        """Every channel the user is in, with the user's read marker and notification level."""
        ...

    async def member_state(self, channel_id: int, user_id: int) -> MemberState | None:
        """The member's read marker and notification level; None if not a member."""
        ...

    async def set_notification_level(
        self, channel_id: int, user_id: int, level: NotificationLevel
    ) -> bool:
        """Set the member's notification level; False if not a member."""
        ...

    async def channel_levels(
        self, channel_id: int, user_ids: Collection[int]
    ) -> ChannelLevels | None:
        """The channel's kind and the levels of those of `user_ids` who are members; None
        for no such channel."""
        ...

    async def read_marker(self, channel_id: int, user_id: int) -> int | None:
        """The member's read marker; None if not a member."""
        ...

    async def read_markers(self, channel_id: int) -> dict[int, int]:
        """Every member's read marker, by user id; empty for no such channel."""
        ...

    async def advance_read_markers(self, marks: Sequence[tuple[int, int, int]]) -> None:
        """Move many `(channel_id, user_id, message_id)` markers forward in one transaction."""
        ...

    async def advance_read_marker(
        self, channel_id: int, user_id: int, message_id: int
    ) -> int | None:
        """Move the marker to `message_id` unless it is already there or further.

        Returns the marker after the call; None if the user is not a member.
        """
        ...
