"""HTTP routes of friendships and presence."""

from __future__ import annotations

from aiohttp import web

from chatapp.api.call import Call
from chatapp.api.endpoint import Endpoint, json_answer, no_content
from chatapp.presence import UserPresence
from chatapp.protocol.http import (
    ChannelPresenceAnswer,
    FriendOut,
    FriendRequest,
    FriendRequestsAnswer,
    FriendsAnswer,
    FriendStatusAnswer,
    PresenceOut,
    RequestOut,
)

PREFIX = "/api/v1"


def presence_out(presence: UserPresence) -> PresenceOut:
    return PresenceOut.model_validate(presence.model_dump())


async def list_friends(call: Call) -> web.Response:
    services = call.services
    friend_ids = sorted(await services.friends.friends_of(call.caller.user_id))
    users = await services.accounts.get_users(friend_ids)
    presence = {p.user_id: p for p in await services.presence.statuses(friend_ids)}
    friends = [
        FriendOut(user=user, presence=presence_out(presence[user.user_id])) for user in users
    ]
    return json_answer(FriendsAnswer(friends=friends))


async def list_requests(call: Call) -> web.Response:
    incoming, outgoing = await call.services.friends.requests_of(call.caller.user_id)
    accounts = call.services.accounts
    return json_answer(
        FriendRequestsAnswer(
            incoming=[RequestOut(user=user) for user in await accounts.get_users(incoming)],
            outgoing=[RequestOut(user=user) for user in await accounts.get_users(outgoing)],
        )
    )


async def request_friend(call: Call) -> web.Response:
    body = await call.body(FriendRequest)
    status = await call.services.friends.request(call.caller.user_id, body.user_id)
    return json_answer(
        FriendStatusAnswer(status=status), status=201 if status == "pending" else 200
    )


async def remove_friend(call: Call) -> web.Response:
    await call.services.friends.remove(call.caller.user_id, call.path_id("user_id"))
    return no_content()


async def channel_presence(call: Call) -> web.Response:
    members = await call.services.social.presence_members(call.caller.user_id, call.path_id("id"))
    presence = await call.services.presence.statuses(members)
    return json_answer(ChannelPresenceAnswer(presence=[presence_out(p) for p in presence]))


ENDPOINTS = [
    Endpoint("GET", f"{PREFIX}/friends", list_friends, "Friends with their presence",
             {200: FriendsAnswer}, tag="friends"),
    Endpoint("GET", f"{PREFIX}/friends/requests", list_requests,
             "Pending friend requests, incoming and outgoing", {200: FriendRequestsAnswer},
             tag="friends"),
    Endpoint("POST", f"{PREFIX}/friends", request_friend,
             "Ask to be friends; asking back accepts",
             {200: FriendStatusAnswer, 201: FriendStatusAnswer}, body=FriendRequest,
             errors=(403, 404), tag="friends"),
    Endpoint("DELETE", f"{PREFIX}/friends/{{user_id}}", remove_friend,
             "Remove a friend, or withdraw or decline a request", {204: None}, errors=(404,),
             tag="friends"),
    Endpoint("GET", f"{PREFIX}/channels/{{id}}/presence", channel_presence,
             "Presence of a channel's members", {200: ChannelPresenceAnswer}, errors=(403, 404),
             tag="channels"),
]  # fmt: skip
