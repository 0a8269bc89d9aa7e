"""A `ChannelStore` in memory, with SQLite's one-direct-channel-per-pair and forward markers."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from chatapp.social.models import (
    Channel,
    ChannelKind,
    ChannelLevels,
    Membership,
    MemberState,
    NotificationLevel,
)
from chatapp.social.store import ChannelStoreError
from chatapp.testing.fakes.failures import CanFail


@dataclass(slots=True)
class _ChannelRecord:
    channel_id: int
    kind: ChannelKind
    name: str
    owner_id: int | None
    direct_key: str | None
    created_at: int
    # user_id -> read_message_id
    read_markers: dict[int, int] = field(default_factory=dict)
    # user_id -> notification level, for members whose level is not "all"
    levels: dict[int, NotificationLevel] = field(default_factory=dict)

    def level_of(self, user_id: int) -> NotificationLevel:
        return self.levels.get(user_id, "all")

    def channel(self) -> Channel:
        return Channel(
            channel_id=self.channel_id,
            kind=self.kind,
            name=self.name,
            owner_id=self.owner_id,
            members=tuple(sorted(self.read_markers)),
            created_at=self.created_at,
        )


class FakeChannelStore(CanFail):
    """`ChannelStore` in dicts: what `SqliteChannelStore` does, without the database.

    Channel ids count from 1. A `direct_key` names at most one channel (a
    second create with it returns None). Members are listed in ascending id,
    a read marker starts at 0 and only ever moves forward. Adding a member to
    a channel that does not exist raises `ChannelStoreError`, as SQLite's
    foreign key would. A member's notification level starts as "all" and leaves with
    the member. `failing`/`fail_next` (see `CanFail`) raise
    `ChannelStoreError`; a failed call changes nothing.

    Tests may write to it directly to play "another process" (a CLI command,
    another node) changing a channel behind the social module's back.
    """

    error = ChannelStoreError

    def __init__(self) -> None:
        super().__init__()
        self._channels: dict[int, _ChannelRecord] = {}

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
        self._fail_if_told("create_channel")
        if direct_key is not None and self._by_direct_key(direct_key) is not None:
            return None
        record = _ChannelRecord(
            channel_id=len(self._channels) + 1,
            kind=kind,
            name=name,
            owner_id=owner_id,
            direct_key=direct_key,
            created_at=created_at,
            read_markers=dict.fromkeys(sorted(set(member_ids)), 0),
        )
        self._channels[record.channel_id] = record
        return record.channel()

    async def direct_channel(self, direct_key: str) -> Channel | None:
        self._fail_if_told("direct_channel")
        record = self._by_direct_key(direct_key)
        return record.channel() if record else None

    async def get_channel(self, channel_id: int) -> Channel | None:
        self._fail_if_told("get_channel")
        record = self._channels.get(channel_id)
        return record.channel() if record else None

    async def rename(self, channel_id: int, name: str) -> None:
        self._fail_if_told("rename")
        if (record := self._channels.get(channel_id)) is not None:
            record.name = name

    async def add_member(self, channel_id: int, user_id: int, *, joined_at: int) -> bool:
        self._fail_if_told("add_member")
        record = self._channels.get(channel_id)
        if record is None:
            raise ChannelStoreError(f"IntegrityError: no channel {channel_id}")
        if user_id in record.read_markers:
            return False
        record.read_markers[user_id] = 0
        return True

    async def remove_member(self, channel_id: int, user_id: int) -> bool:
        self._fail_if_told("remove_member")
        record = self._channels.get(channel_id)
        if record is None or user_id not in record.read_markers:
            return False
        del record.read_markers[user_id]
        record.levels.pop(user_id, None)
        if record.owner_id == user_id:
            record.owner_id = min(record.read_markers, default=None)
        return True

    async def memberships(self, user_id: int) -> list[Membership]:
        self._fail_if_told("memberships")
        return [
            Membership(
                channel=record.channel(),
                read_message_id=record.read_markers[user_id],
                notification_level=record.level_of(user_id),
            )
            for _, record in sorted(self._channels.items())
            if user_id in record.read_markers
        ]

    async def member_state(self, channel_id: int, user_id: int) -> MemberState | None:
        self._fail_if_told("member_state")
        record = self._channels.get(channel_id)
        if record is None or user_id not in record.read_markers:
            return None
        return MemberState(
            read_message_id=record.read_markers[user_id],
            notification_level=record.level_of(user_id),
        )

    async def set_notification_level(
        self, channel_id: int, user_id: int, level: NotificationLevel
    ) -> bool:
        self._fail_if_told("set_notification_level")
        record = self._channels.get(channel_id)
        if record is None or user_id not in record.read_markers:
            return False
        record.levels[user_id] = level
        return True

    async def channel_levels(
        self, channel_id: int, user_ids: Collection[int]
    ) -> ChannelLevels | None:
        self._fail_if_told("channel_levels")
        record = self._channels.get(channel_id)
        if record is None:
            return None
        levels = {
            user_id: record.level_of(user_id)
            for user_id in sorted(set(user_ids))
            if user_id in record.read_markers
        }
        return ChannelLevels(kind=record.kind, levels=levels)

    async def read_marker(self, channel_id: int, user_id: int) -> int | None:
        self._fail_if_told("read_marker")
        record = self._channels.get(channel_id)
        return record.read_markers.get(user_id) if record else None

    async def read_markers(self, channel_id: int) -> dict[int, int]:
        self._fail_if_told("read_markers")
        record = self._channels.get(channel_id)
        return dict(record.read_markers) if record else {}

    async def advance_read_markers(self, marks: Sequence[tuple[int, int, int]]) -> None:
        self._fail_if_told("advance_read_markers")
        for channel_id, user_id, message_id in marks:
            self._advance(channel_id, user_id, message_id)

    async def advance_read_marker(
        self, channel_id: int, user_id: int, message_id: int
    ) -> int | None:
        self._fail_if_told("advance_read_marker")
        return self._advance(channel_id, user_id, message_id)

    def _advance(self, channel_id: int, user_id: int, message_id: int) -> int | None:
        record = self._channels.get(channel_id)
        if record is None or user_id not in record.read_markers:
            return None
        marker = max(record.read_markers[user_id], message_id)
        record.read_markers[user_id] = marker
        return marker

    def _by_direct_key(self, direct_key: str) -> _ChannelRecord | None:
        for record in self._channels.values():
            if record.direct_key == direct_key:
                return record
        return None
