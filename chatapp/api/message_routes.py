"""HTTP routes that change a sent message: edit, delete, react."""

from __future__ import annotations

from aiohttp import web

from chatapp.api.call import Call
from chatapp.api.channel_routes import PREFIX, message_out
from chatapp.api.endpoint import Endpoint, json_answer, no_content
from chatapp.errors import NotFound
from chatapp.protocol.http import EditRequest, MessageAnswer

_MESSAGE = f"{PREFIX}/channels/{{id}}/messages/{{message_id}}"


async def edit_message(call: Call) -> web.Response:
    body = await call.body(EditRequest)
    message = await call.services.messaging.edit(
        call.caller.user_id, call.path_id("id"), call.path_id("message_id"), body.text
    )
    return json_answer(MessageAnswer(message=message_out(message)))


async def delete_message(call: Call) -> web.Response:
    user = await call.services.accounts.get_user(call.caller.user_id)
    deletion = await call.services.messaging.delete(
        call.caller.user_id,
        call.path_id("id"),
        call.path_id("message_id"),
        caller_is_admin=user.is_admin,
    )
    if deletion.changed:
        # Someone else's message, deleted by an admin or the group's owner, goes on record.
        await call.services.operators.moderation.message_deleted(user.user_id, deletion.message)
    return no_content()


async def add_reaction(call: Call) -> web.Response:
    await _react(call, add=True)
    return no_content()


async def remove_reaction(call: Call) -> web.Response:
    await _react(call, add=False)
    return no_content()


async def _react(call: Call, *, add: bool) -> None:
    channel_id, message_id = call.path_id("id"), call.path_id("message_id")
    emoji = call.request.match_info.get("emoji")
    if emoji is None:
        raise NotFound("not_found", "no such reaction")
    await call.services.messaging.react(call.caller.user_id, channel_id, message_id, emoji, add=add)


ENDPOINTS = [
    Endpoint("PATCH", _MESSAGE, edit_message, "Edit one's own message (added to version 1)",
             {200: MessageAnswer}, body=EditRequest, errors=(403, 404, 409, 422, 429, 503),
             tag="messages"),
    Endpoint("DELETE", _MESSAGE, delete_message,
             "Delete a message: its sender, the group's owner or a server admin (added to"
             " version 1)", {204: None}, errors=(403, 404, 429, 503), tag="messages"),
    Endpoint("PUT", f"{_MESSAGE}/reactions/{{emoji}}", add_reaction,
             "Add the caller's reaction; emoji URL-encoded (added to version 1)", {204: None},
             errors=(403, 404, 409, 422, 429, 503), tag="messages"),
    Endpoint("DELETE", f"{_MESSAGE}/reactions/{{emoji}}", remove_reaction,
             "Take back the caller's reaction (added to version 1)", {204: None},
             errors=(403, 404, 409, 422, 429, 503), tag="messages"),
]  # fmt: skip
