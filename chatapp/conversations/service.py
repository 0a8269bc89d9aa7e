"""A user's view of their channels: social's membership joined with messaging's counters.

Neither social nor messaging knows the other's data; this small layer above
both answers "what does this channel look like to this user".
"""

from __future__ import annotations

from chatapp.messaging import Messaging
from chatapp.protocol.http import ChannelOut
from chatapp.social import Channel, Social


class Conversations:
    def __init__(self, social: Social, messaging: Messaging) -> None:
        self._social = social
        self._messaging = messaging

    async def view(
        self, channel: Channel, user_id: int, read_message_id: int | None = None
    ) -> ChannelOut:
        """The channel as `user_id` sees it, with their read marker and unread count."""
        last = await self._messaging.last_message_id(channel.channel_id)
        read = (
            read_message_id
            if read_message_id is not None
            else await self._social.read_marker(user_id, channel.channel_id)
        )
        return ChannelOut(
            channel_id=channel.channel_id,
            kind=channel.kind,
            name=channel.name,
            owner_id=channel.owner_id,
            members=list(channel.members),
            last_message_id=last,
            read_message_id=read,
            unread_count=max(0, last - read),
            created_at=channel.created_at,
        )

    async def list_for(self, user_id: int) -> list[ChannelOut]:
        """The user's channels, most recent activity (last message, else creation) first."""
        ranked: list[tuple[int, ChannelOut]] = []
        for membership in await self._social.memberships(user_id):
            view = await self.view(membership.channel, user_id, membership.read_message_id)
            last = (
                await self._messaging.message(view.channel_id, view.last_message_id)
                if view.last_message_id
                else None
            )
            ranked.append((last.created_at if last else view.created_at, view))
        ranked.sort(key=lambda pair: (pair[0], pair[1].channel_id), reverse=True)
        return [view for _, view in ranked]
