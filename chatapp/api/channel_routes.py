"""HTTP routes of channels, messages, read markers and sync."""

from __future__ import annotations

import asyncio

from aiohttp import web

from chatapp.api.call import Call
from chatapp.api.endpoint import Endpoint, json_answer, no_content
from chatapp.messaging.models import InboxEntry, StoredMessage
from chatapp.messaging.updates import update_object
from chatapp.protocol.http import (
    AddMemberRequest,
    ChannelAnswer,
    ChannelsAnswer,
    DirectRequest,
    GroupRequest,
    HistoryQuery,
    MessageOut,
    MessagesAnswer,
    NotificationsRequest,
    ReadRequest,
    RenameRequest,
    SendAnswer,
    SendRequest,
    SyncAnswer,
    SyncEvent,
    SyncQuery,
    UpdateOut,
)

PREFIX = "/api/v1"
CHANNELS_PER_PIECE = 32
"""Channel objects encoded between two turns of the event loop in `GET /channels`."""


def message_out(message: StoredMessage) -> MessageOut:
    return MessageOut.model_validate(message.model_dump())


def sync_event(entry: InboxEntry) -> SyncEvent:
    if entry.update is None:
        return SyncEvent(seq=entry.seq, message=message_out(entry.message))
    update = UpdateOut.model_validate(update_object(entry.update, entry.message))
    return SyncEvent(seq=entry.seq, update=update)


async def open_direct(call: Call) -> web.Response:
    body = await call.body(DirectRequest)
    channel, created = await call.services.social.open_direct(call.caller.user_id, body.user_id)
    view = await call.services.conversations.view(channel, call.caller.user_id)
    return json_answer(ChannelAnswer(channel=view), status=201 if created else 200)


async def create_group(call: Call) -> web.Response:
    body = await call.body(GroupRequest)
    channel = await call.services.social.create_group(
        call.caller.user_id, body.name, body.member_ids
    )
    view = await call.services.conversations.view(channel, call.caller.user_id)
    return json_answer(ChannelAnswer(channel=view), status=201)


async def list_channels(call: Call) -> web.Response:
    """`ChannelsAnswer`, encoded in pieces with a turn of the loop between them.

    1,000 channels of 100 members are 1.3 MB of JSON, about 6 ms to encode
    in one go, and ten lists that finish together would run back to back.
    """
    channels = await call.services.conversations.list_for(call.caller.user_id)
    parts: list[bytes] = []
    for first in range(0, len(channels), CHANNELS_PER_PIECE):
        if first:
            await asyncio.sleep(0)
        piece = channels[first : first + CHANNELS_PER_PIECE]
        parts.extend(channel.model_dump_json().encode() for channel in piece)
    body = b'{"channels":[' + b",".join(parts) + b"]}"
    return web.Response(body=body, content_type="application/json")


async def get_channel(call: Call) -> web.Response:
    channel = await call.services.social.channel_for(call.caller.user_id, call.path_id("id"))
    return json_answer(
        ChannelAnswer(channel=await call.services.conversations.view(channel, call.caller.user_id))
    )


async def rename_channel(call: Call) -> web.Response:
    body = await call.body(RenameRequest)
    channel = await call.services.social.rename(call.caller.user_id, call.path_id("id"), body.name)
    return json_answer(
        ChannelAnswer(channel=await call.services.conversations.view(channel, call.caller.user_id))
    )


async def add_member(call: Call) -> web.Response:
    body = await call.body(AddMemberRequest)
    channel = await call.services.social.add_member(
        call.caller.user_id, call.path_id("id"), body.user_id
    )
    return json_answer(
        ChannelAnswer(channel=await call.services.conversations.view(channel, call.caller.user_id))
    )


async def set_notifications(call: Call) -> web.Response:
    body = await call.body(NotificationsRequest)
    await call.services.social.set_notification_level(
        call.caller.user_id, call.path_id("id"), body.level
    )
    return no_content()


async def remove_member(call: Call) -> web.Response:
    await call.services.social.remove_member(
        call.caller.user_id, call.path_id("id"), call.path_id("user_id")
    )
    return no_content()


async def list_messages(call: Call) -> web.Response:
    query = call.query(HistoryQuery)
    page = await call.services.messaging.history(
        call.caller.user_id,
        call.path_id("id"),
        before=query.before,
        after=query.after,
        limit=query.limit,
    )
    return json_answer(
        MessagesAnswer(
            messages=[message_out(message) for message in page.messages], has_more=page.has_more
        )
    )


async def send_message(call: Call) -> web.Response:
    body = await call.body(SendRequest)
    accepted = await call.services.messaging.accept(
        call.caller.user_id,
        call.path_id("id"),
        body.client_msg_id,
        body.text,
        reply_to=body.reply_to,
    )
    return json_answer(
        SendAnswer(message=message_out(accepted.message), seq=accepted.seq),
        status=200 if accepted.duplicate else 201,
    )


async def mark_read(call: Call) -> web.Response:
    body = await call.body(ReadRequest)
    channel_id = call.path_id("id")
    last = await call.services.messaging.last_message_id(channel_id)
    await call.services.social.mark_read(
        call.caller.user_id, channel_id, min(body.message_id, last)
    )
    return no_content()


async def sync(call: Call) -> web.Response:
    query = call.query(SyncQuery)
    page = await call.services.messaging.inbox(
        call.caller.user_id, since=query.since, limit=query.limit
    )
    events = [sync_event(entry) for entry in page.entries]
    return json_answer(
        SyncAnswer(
            events=events,
            next_since=events[-1].seq if events else query.since,
            has_more=page.has_more,
        )
    )


ENDPOINTS = [
    Endpoint("POST", f"{PREFIX}/channels/direct", open_direct,
             "Open the direct channel with a user (created once)",
             {200: ChannelAnswer, 201: ChannelAnswer}, body=DirectRequest, errors=(403, 404),
             tag="channels"),
    Endpoint("POST", f"{PREFIX}/channels/group", create_group, "Create a group",
             {201: ChannelAnswer}, body=GroupRequest, errors=(403, 404, 422), tag="channels"),
    Endpoint("GET", f"{PREFIX}/channels", list_channels,
             "The caller's channels, most recent activity first", {200: ChannelsAnswer},
             tag="channels"),
    Endpoint("GET", f"{PREFIX}/channels/{{id}}", get_channel, "One channel",
             {200: ChannelAnswer}, errors=(403, 404), tag="channels"),
    Endpoint("PATCH", f"{PREFIX}/channels/{{id}}", rename_channel, "Rename a group (owner only)",
             {200: ChannelAnswer}, body=RenameRequest, errors=(403, 404, 422), tag="channels"),
    Endpoint("POST", f"{PREFIX}/channels/{{id}}/members", add_member,
             "Add a member (owner only)", {200: ChannelAnswer}, body=AddMemberRequest,
             errors=(403, 404, 422), tag="channels"),
    Endpoint("DELETE", f"{PREFIX}/channels/{{id}}/members/{{user_id}}", remove_member,
             "Remove a member (owner), or leave (self)", {204: None}, errors=(403, 404),
             tag="channels"),
    Endpoint("PUT", f"{PREFIX}/channels/{{id}}/notifications", set_notifications,
             "Choose which of the channel's messages are pushed to the caller", {204: None},
             body=NotificationsRequest, errors=(403, 404), tag="channels"),
    Endpoint("GET", f"{PREFIX}/channels/{{id}}/messages", list_messages,
             "A page of history, oldest first", {200: MessagesAnswer}, query=HistoryQuery,
             errors=(403, 404), tag="messages"),
    Endpoint("POST", f"{PREFIX}/channels/{{id}}/messages", send_message, "Send a message",
             {200: SendAnswer, 201: SendAnswer}, body=SendRequest, errors=(403, 404, 422, 503),
             tag="messages"),
    Endpoint("POST", f"{PREFIX}/channels/{{id}}/read", mark_read,
             "Move the caller's read marker forward", {204: None}, body=ReadRequest,
             errors=(403, 404), tag="messages"),
    Endpoint("GET", f"{PREFIX}/sync", sync, "Inbox entries after a seq", {200: SyncAnswer},
             query=SyncQuery, tag="messages"),
]  # fmt: skip
