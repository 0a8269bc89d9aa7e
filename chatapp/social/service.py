"""Social: channels (direct and group), membership and read markers."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Protocol

import structlog

from chatapp.bus import Bus
from chatapp.clock import Clock
from chatapp.errors import Forbidden, InvalidInput, NotFound, RateLimited
from chatapp.ratelimit import RateLimiter
from chatapp.social.consent import Consent
from chatapp.social.events import ChannelChanged, ReadMarkerMoved
from chatapp.social.models import (
    Channel,
    ChannelLevels,
    Membership,
    MemberState,
    NotificationLevel,
)
from chatapp.social.receipts import Receipt, Receipts
from chatapp.social.sender_reads import SenderReadMarks
from chatapp.social.store import ChannelStore

log = structlog.get_logger(__name__)

GROUP_LIMIT = 100
CHANNEL_NAME_MAX = 100


class UserDirectory(Protocol):
    """What social needs to know about users: which of these exist."""

    async def existing_user_ids(self, user_ids: Iterable[int]) -> set[int]: ...


class Social:
    """Channels and who is in them.

    Membership is read on every send, so it is cached here. The cache follows
    this process's own writes at once, and every ChannelChanged from the bus
    (`channel_changed`) drops the channel's entry, so a change made by another
    process (a CLI command, another node) reaches it too.

    What users let each other do (blocks, who may add whom) is `consent`'s,
    asked where each action is taken.
    """

    def __init__(
        self,
        store: ChannelStore,
        users: UserDirectory,
        bus: Bus,
        clock: Clock,
        sender_reads: SenderReadMarks,
        *,
        receipts: Receipts,
        consent: Consent,
        group_changes: RateLimiter | None = None,
    ) -> None:
        self._store = store
        self._consent = consent
        self._receipts = receipts
        self._group_changes = group_changes
        self.sender_reads = sender_reads
        self._users = users
        self._bus = bus
        self._clock = clock
        self._members: dict[int, frozenset[int]] = {}
        # Which of the cached channels are direct: kept and dropped with their members.
        self._direct: set[int] = set()

    async def channel_changed(self, event: ChannelChanged) -> None:
        """From the bus: whoever changed the channel, the cached members may be stale."""
        self._members.pop(event.channel_id, None)
        self._direct.discard(event.channel_id)

    async def members(self, channel_id: int) -> frozenset[int] | None:
        """The channel's members, or None when there is no such channel."""
        cached = self._members.get(channel_id)
        if cached is not None:
            return cached
        channel = await self._store.get_channel(channel_id)
        if channel is None:
            return None
        return self._remember(channel)

    async def get_channel(self, channel_id: int) -> Channel | None:
        """Any channel, member or not: for modules that already know who may see it."""
        return await self._store.get_channel(channel_id)

    async def group_owner(self, channel_id: int) -> int | None:
        """The owner of a group (who may delete its messages); None otherwise."""
        channel = await self._store.get_channel(channel_id)
        if channel is None or channel.kind != "group":
            return None
        return channel.owner_id

    async def open_direct(self, caller_id: int, other_id: int) -> tuple[Channel, bool]:
        """The one direct channel of this pair, created on first use; True when created now."""
        await self._require_users([other_id])
        await self._consent.refuse_if_blocked(caller_id, other_id)
        low, high = sorted((caller_id, other_id))
        key = f"{low}:{high}"
        existing = await self._store.direct_channel(key)
        if existing is not None:
            return existing, False
        created = await self._store.create_channel(
            kind="direct",
            name="",
            owner_id=None,
            member_ids=[low, high],
            created_at=self._clock.now_ms(),
            direct_key=key,
        )
        if created is None:  # the other side created it at the same moment
            raced = await self._store.direct_channel(key)
            assert raced is not None
            return raced, False
        self._remember(created)
        self._tell(created, "added", created.members)
        return created, True

    async def create_group(self, caller_id: int, name: str, member_ids: Sequence[int]) -> Channel:
        checked_name = _check_name(name)
        members = {caller_id, *member_ids}
        if len(members) > GROUP_LIMIT:
            raise InvalidInput("group_full", f"a group has at most {GROUP_LIMIT} members")
        await self._count_group_change(caller_id)
        await self._require_users(members - {caller_id})
        await self._consent.refuse_adds(caller_id, members)
        channel = await self._store.create_channel(
            kind="group",
            name=checked_name,
            owner_id=caller_id,
            member_ids=sorted(members),
            created_at=self._clock.now_ms(),
        )
        assert channel is not None
        self._remember(channel)
        self._tell(channel, "added", channel.members)
        log.info("group_created", channel_id=channel.channel_id, members=len(members))
        return channel

    async def channel_for(self, caller_id: int, channel_id: int) -> Channel:
        """The channel, if the caller is a member: 404 when absent, 403 not_member otherwise."""
        channel = await self._store.get_channel(channel_id)
        if channel is None:
            raise NotFound("not_found", f"no channel {channel_id}")
        if caller_id not in channel.members:
            raise Forbidden("not_member", "you are not a member of this channel")
        return channel

    async def require_member(self, caller_id: int, channel_id: int) -> frozenset[int]:
        members = await self.members(channel_id)
        if members is None:
            raise NotFound("not_found", f"no channel {channel_id}")
        if caller_id not in members:
            raise Forbidden("not_member", "you are not a member of this channel")
        return members

    async def require_sender(self, caller_id: int, channel_id: int) -> frozenset[int]:
        """The channel's members, if the caller may post to it (a message, an edit, a
        reaction, typing): a member, and in a direct channel, neither member blocks the other
        (403 `blocked`)."""
        members = await self.require_member(caller_id, channel_id)
        if channel_id in self._direct:
            for other in members - {caller_id}:
                await self._consent.refuse_if_blocked(caller_id, other)
        return members

    async def presence_members(self, caller_id: int, channel_id: int) -> tuple[int, ...]:
        """The members whose presence the caller may see: all of them, unless one of them
        blocks the caller (403 `blocked`, the list refused whole)."""
        channel = await self.channel_for(caller_id, channel_id)
        await self._consent.refuse_if_any_blocks(caller_id, channel.members)
        return channel.members

    async def set_notification_level(
        self, caller_id: int, channel_id: int, level: NotificationLevel
    ) -> None:
        """Which of the channel's messages the caller wants pushed; the caller's devices are
        told with an `updated` channel event (none when the level is already this one)."""
        await self.channel_for(caller_id, channel_id)
        state = await self._store.member_state(channel_id, caller_id)
        if state is not None and state.notification_level == level:
            return
        if not await self._store.set_notification_level(channel_id, caller_id, level):
            raise Forbidden("not_member", "you are not a member of this channel")
        log.info("notification_level_set", channel_id=channel_id, level=level)
        self._bus.publish(
            ChannelChanged(channel_id=channel_id, event="updated", user_ids=(caller_id,))
        )

    async def channel_levels(
        self, channel_id: int, user_ids: Collection[int]
    ) -> ChannelLevels | None:
        """The channel's kind and the notification levels of those of `user_ids` who are
        members (read from the store, so a change on any node counts at once)."""
        return await self._store.channel_levels(channel_id, user_ids)

    async def rename(self, caller_id: int, channel_id: int, name: str) -> Channel:
        channel = await self._owned_group(caller_id, channel_id)
        await self._store.rename(channel_id, _check_name(name))
        renamed = await self._reload(channel_id)
        self._tell(renamed, "updated", channel.members)
        return renamed

    async def add_member(self, caller_id: int, channel_id: int, user_id: int) -> Channel:
        channel = await self._owned_group(caller_id, channel_id)
        if user_id in channel.members:
            return channel
        if len(channel.members) >= GROUP_LIMIT:
            raise InvalidInput("group_full", f"a group has at most {GROUP_LIMIT} members")
        await self._count_group_change(caller_id)
        await self._require_users([user_id])
        await self._consent.refuse_adds(caller_id, [user_id])
        await self._store.add_member(channel_id, user_id, joined_at=self._clock.now_ms())
        updated = await self._reload(channel_id)
        self._tell(updated, "added", (user_id,))
        self._tell(updated, "updated", channel.members)
        return updated

    async def remove_member(self, caller_id: int, channel_id: int, user_id: int) -> None:
        """The owner removes anyone; any member removes itself (leaves)."""
        channel = await self.channel_for(caller_id, channel_id)
        if channel.kind == "direct":
            raise Forbidden("forbidden", "nobody can leave or be removed from a direct channel")
        if user_id != caller_id and caller_id != channel.owner_id:
            raise Forbidden("forbidden", "only the owner removes other members")
        # The group outlives its owner: the store passes it on in the same write.
        if not await self._store.remove_member(channel_id, user_id):
            raise NotFound("not_found", f"user {user_id} is not a member")
        remaining = [member for member in channel.members if member != user_id]
        updated = await self._reload(channel_id)
        self._tell(updated, "removed", (user_id,))
        self._tell(updated, "updated", remaining)

    async def leave_every_group(self, user_id: int) -> int:
        """Take the user out of every group, as leaving each does (ownership passes on, the
        members are told); direct channels stay, since nobody leaves one. How many groups."""
        left = 0
        for membership in await self._store.memberships(user_id):
            channel = membership.channel
            if channel.kind != "group":
                continue
            try:
                await self.remove_member(user_id, channel.channel_id, user_id)
            except (NotFound, Forbidden):
                continue  # left meanwhile, through another request
            left += 1
        return left

    async def memberships(self, user_id: int) -> list[Membership]:
        return [
            self._with_sent_reads(membership, user_id)
            for membership in await self._store.memberships(user_id)
        ]

    def _with_sent_reads(self, membership: Membership, user_id: int) -> Membership:
        """The membership with its read marker moved up to what the user has sent since.

        Copied only when the marker moves: a user in 1,000 channels has
        1,000 of them, and a copy costs more than the comparison.
        """
        stored = membership.read_message_id
        merged = self.sender_reads.merged(membership.channel.channel_id, user_id, stored)
        if merged == stored:
            return membership
        return membership.model_copy(update={"read_message_id": merged})

    async def read_marker(self, user_id: int, channel_id: int) -> int:
        marker = await self._store.read_marker(channel_id, user_id)
        return self.sender_reads.merged(channel_id, user_id, marker or 0)

    async def member_state(self, user_id: int, channel_id: int) -> MemberState:
        """The user's read marker (with what they sent since) and notification level; for one
        who is not a member, nothing read and the default level."""
        state = await self._store.member_state(channel_id, user_id)
        stored = state.read_message_id if state else 0
        return MemberState(
            read_message_id=self.sender_reads.merged(channel_id, user_id, stored),
            notification_level=state.notification_level if state else "all",
        )

    async def mark_read(
        self,
        user_id: int,
        channel_id: int,
        message_id: int,
        *,
        origin_connection: str | None = None,
    ) -> int:
        """Move the user's read marker forward (never back); returns the marker now."""
        members = await self.require_member(user_id, channel_id)
        before = await self.read_marker(user_id, channel_id)
        stored = await self._store.advance_read_marker(channel_id, user_id, message_id) or 0
        after = self.sender_reads.merged(channel_id, user_id, stored)
        if after > before:
            self._bus.publish(
                ReadMarkerMoved(
                    user_id=user_id,
                    channel_id=channel_id,
                    message_id=after,
                    origin_connection=origin_connection,
                )
            )
            await self._receipts.share(user_id, channel_id, after, members)
        return after

    async def receipts(self, caller_id: int, channel_id: int) -> list[Receipt]:
        """The read receipts the caller may see in the channel (see `Receipts.visible_to`)."""
        members = await self.require_member(caller_id, channel_id)
        return await self._receipts.visible_to(caller_id, channel_id, members)

    async def _count_group_change(self, caller_id: int) -> None:
        if self._group_changes is None:
            return
        retry_after = await self._group_changes.acquire(str(caller_id))
        if retry_after is not None:
            raise RateLimited(
                retry_after,
                f"too many group changes; try again in {max(retry_after, 0.1):.1f} s",
            )

    async def _owned_group(self, caller_id: int, channel_id: int) -> Channel:
        channel = await self.channel_for(caller_id, channel_id)
        if channel.kind != "group":
            raise Forbidden("forbidden", "a direct channel cannot be changed")
        if channel.owner_id != caller_id:
            raise Forbidden("forbidden", "only the owner can do this")
        return channel

    async def _reload(self, channel_id: int) -> Channel:
        channel = await self._store.get_channel(channel_id)
        assert channel is not None
        self._remember(channel)
        return channel

    async def _require_users(self, user_ids: Iterable[int]) -> None:
        wanted = set(user_ids)
        missing = wanted - await self._users.existing_user_ids(wanted)
        if missing:
            raise NotFound("not_found", f"no user {min(missing)}")

    def _remember(self, channel: Channel) -> frozenset[int]:
        members = frozenset(channel.members)
        self._members[channel.channel_id] = members
        if channel.kind == "direct":
            self._direct.add(channel.channel_id)
        return members

    def _tell(self, channel: Channel, event: str, user_ids: Iterable[int]) -> None:
        users = tuple(user_ids)
        if users:
            self._bus.publish(
                ChannelChanged(channel_id=channel.channel_id, event=event, user_ids=users)
            )


def _check_name(name: str) -> str:
    stripped = name.strip()
    if not 1 <= len(stripped) <= CHANNEL_NAME_MAX:
        raise InvalidInput("invalid_name", f"a group name is 1 to {CHANNEL_NAME_MAX} characters")
    return stripped
