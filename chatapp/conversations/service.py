"""A user's view of their channels: social's membership joined with messaging's counters.

Neither social nor messaging knows the other's data; this small layer above
both answers "what does this channel look like to this user".

Every channel object carries the start of its last message (`last_message`),
wherever it is built: `GET /channels`, the other channel answers and the
`channel` frames. That costs one read of the channel's last message the first
time (off the event loop, only the text's start decoded) and none while the
kept preview is still the last (see `previews`); so the hundred channel
objects of one change to a group cost one read.

Measured with `python -m bench.channel_list` (one user in 1,000 groups of
99 members, each group's last message 100,000 emoji; the server as its own
process on the 2-core dev box, load average 1.5-2). Before, when the list
read every last message whole, one by one: a `GET /channels` took 2.3-3.8 s;
ten at once 10-29 s, `/healthz` meanwhile p50 7-40 ms, p99 65-97 ms, max
105-200 ms, the loop-lag gauge up to 37-137 ms. Now: 42-66 ms each (the
first after a start 2.3-2.5 s, the reads off the loop); ten at once 0.55-0.6 s
(2.6-2.9 s right after a start), `/healthz` p50 0.3-0.8 ms, p99 10-54 ms,
max 30-112 ms, the gauge up to 10-62 ms. What is left on the loop is mostly
the 100,000 member ids themselves: parsing, models, JSON.
"""

from __future__ import annotations

import asyncio
from typing import Final

from chatapp.conversations.previews import LastMessages
from chatapp.messaging import MessagePreview, MessageUpdated, Messaging
from chatapp.protocol.http import PREVIEW_CHARS, ChannelOut, LastMessageOut
from chatapp.social import Channel, Social
from chatapp.social.models import NotificationLevel

PIECE: Final = 32
"""Channels handled between two turns of the event loop when a list is long."""


class Conversations:
    def __init__(self, social: Social, messaging: Messaging) -> None:
        self._social = social
        self._last_messages = LastMessages(messaging, max_chars=PREVIEW_CHARS)

    async def message_updated(self, event: MessageUpdated) -> None:
        """From the bus: an edited or deleted last message changes the channel's preview."""
        if event.update != "reactions":
            self._last_messages.forget(event.message.channel_id, event.message.message_id)

    async def view(self, channel: Channel, user_id: int) -> ChannelOut:
        """The channel as `user_id` sees it: their read marker, unread count and notification
        level, and the preview."""
        counters, previews = await self._last_messages.of([channel.channel_id])
        state = await self._social.member_state(user_id, channel.channel_id)
        return _channel_out(
            channel,
            counters[channel.channel_id],
            state.read_message_id,
            state.notification_level,
            previews.get(channel.channel_id),
        )

    async def list_for(self, user_id: int) -> list[ChannelOut]:
        """The user's channels, most recent activity (last message, else creation) first.

        Social answers the memberships and read markers in one query;
        messaging the counters (from memory, or read together off the loop)
        and the previews (`LastMessages`: in batches, off the loop); the
        channel objects are built in pieces of `PIECE`, with a turn of the
        loop between them.
        """
        memberships = await self._social.memberships(user_id)
        last_ids, previews = await self._last_messages.of(
            [membership.channel.channel_id for membership in memberships]
        )
        views: list[ChannelOut] = []
        for first in range(0, len(memberships), PIECE):
            await asyncio.sleep(0)
            views.extend(
                _channel_out(
                    membership.channel,
                    last_ids[membership.channel.channel_id],
                    membership.read_message_id,
                    membership.notification_level,
                    previews.get(membership.channel.channel_id),
                )
                for membership in memberships[first : first + PIECE]
            )
        return sorted(views, key=_activity, reverse=True)


def _channel_out(
    channel: Channel,
    last: int,
    read: int,
    level: NotificationLevel,
    preview: MessagePreview | None,
) -> ChannelOut:
    if preview is not None:
        # The preview may have been read just after a message the counter has
        # yet to count: the channel object never names a message beyond its last.
        last = max(last, preview.message_id)
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
        last_message=None if preview is None else _last_message_out(preview),
        notification_level=level,
    )


def _last_message_out(preview: MessagePreview) -> LastMessageOut:
    return LastMessageOut(
        message_id=preview.message_id,
        sender_id=preview.sender_id,
        created_at=preview.created_at,
        text=preview.text,
        truncated=preview.truncated,
        edited=preview.edited,
        deleted=preview.deleted,
    )


def _activity(view: ChannelOut) -> tuple[int, int]:
    created = view.last_message.created_at if view.last_message else view.created_at
    return created, view.channel_id
