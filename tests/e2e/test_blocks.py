"""Blocking (protocol additions §5), through a real server with real WebSockets.

`PUT`, `DELETE` and `GET /me/blocks`, and every path a block closes: a direct
channel, its sends (HTTP and WebSocket), edits, reactions and typing, group
creation and member adds naming the blocker, friend requests, and presence
(HTTP and frames). Each answers 403 `blocked` and says nothing more: not who
blocked, not the blocker's name or id, not their presence. The module runs on
a two-node cluster too (tests/e2e/conftest.py): clients and sockets are spread
over the nodes, so a block made through one node holds on the other at once.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from chatapp.client import ChatApiError, ChatClient
from chatapp.testing import RawSocket, RunningServer


async def refused(call: Awaitable[Any]) -> ChatApiError:
    with pytest.raises(ChatApiError) as caught:
        await call
    return caught.value


async def blocked(call: Awaitable[Any], *, blocker: ChatClient) -> None:
    """The call is refused with 403 `blocked`, its message naming nothing of the blocker."""
    error = await refused(call)
    assert (error.status, error.code) == (403, "blocked"), error
    assert not reveals(error.message, blocker), error.message


def reveals(text: str, blocker: ChatClient) -> list[str]:
    """What of the blocker `text` names: their username, their user id."""
    user = blocker.login_answer.user if blocker.login_answer else None
    assert user is not None
    found = [user.username] if user.username in text else []
    return found + ([f"id {user.user_id}"] if str(user.user_id) in text.split() else [])


async def people(server: RunningServer, names: str) -> list[ChatClient]:
    """New users of these names, each logged in once."""
    return [await server.user(name) for name in names.split()]


async def befriend(a: ChatClient, b: ChatClient) -> None:
    await a.request("POST", "/api/v1/friends", {"user_id": b.user_id})
    await b.request("POST", "/api/v1/friends", {"user_id": a.user_id})


def ids(users: list[Any]) -> list[int]:
    return [user.user_id for user in users]


@asynccontextmanager
async def live(server: RunningServer, *clients: ChatClient) -> AsyncIterator[list[RawSocket]]:
    """A caught-up socket per client, spread over the server's nodes, opened once every earlier
    event was handled (so none of those arrives on them)."""
    await server.settle()
    opened: list[RawSocket] = []
    try:
        for number, client in enumerate(clients):
            ws_url = server.ws_urls[number % len(server.ws_urls)]
            opened.append(await RawSocket.open(ws_url, client.token or ""))
            await opened[-1].until("synced")
        await server.settle()
        yield opened
    finally:
        for socket in opened:
            await socket.close()


# -- the list ------------------------------------------------------------------------------


async def test_blocks_are_set_listed_and_lifted(chat_server: RunningServer) -> None:
    """PUT blocks (204, again 204), GET lists the blocked users' public profiles by user id,
    DELETE lifts (204, also when there is no block); each user sees only their own list."""
    alice, bob, carol = await people(chat_server, "alice bob carol")
    answer = await alice.raw_request("PUT", f"/api/v1/me/blocks/{carol.user_id}")
    assert (answer.status, answer.text) == (204, "")
    await alice.block(carol.user_id)
    await alice.block(bob.user_id)
    listed = await alice.request("GET", "/api/v1/me/blocks")
    assert listed == {
        "users": [
            (await alice.request("GET", f"/api/v1/users/{user_id}"))["user"]
            for user_id in sorted([bob.user_id, carol.user_id])
        ]
    }
    assert await bob.blocks() == []
    assert await carol.blocks() == []
    answer = await alice.raw_request("DELETE", f"/api/v1/me/blocks/{carol.user_id}")
    assert (answer.status, answer.text) == (204, "")
    await alice.unblock(carol.user_id)
    assert ids(await alice.blocks()) == [bob.user_id]
    await bob.unblock(alice.user_id)  # nothing to lift
    assert ids(await alice.blocks()) == [bob.user_id]


async def test_blocking_oneself_or_nobody_is_refused(chat_server: RunningServer) -> None:
    """Blocking or unblocking oneself: 400 `bad_request`; an unknown user or a path that is no
    user id: 404 `not_found`; the list is unchanged."""
    (alice,) = await people(chat_server, "alice")
    for method in ("PUT", "DELETE"):
        error = await refused(alice.request(method, f"/api/v1/me/blocks/{alice.user_id}"))
        assert (error.status, error.code) == (400, "bad_request")
        for path in ("987654", "0", "-1", "alice"):
            error = await refused(alice.request(method, f"/api/v1/me/blocks/{path}"))
            assert (error.status, error.code) == (404, "not_found")
    assert await alice.blocks() == []


# -- one to one ------------------------------------------------------------------------------


async def test_a_blocked_user_cannot_open_or_use_the_direct_channel(
    chat_server: RunningServer,
) -> None:
    """Once alice blocks bob, bob can neither open their direct channel nor post in it (HTTP
    send, edit, reaction): 403 `blocked`, nothing stored; nor can alice until she lifts the
    block. A channel never opened is not made by either. Both still read their history, and
    may delete their own messages."""
    alice, bob, carol = await people(chat_server, "alice bob carol")
    direct = await bob.open_direct(alice.user_id)
    earlier = await bob.send_message(direct.channel_id, "before the block")
    await alice.block(bob.user_id)
    await alice.block(carol.user_id)
    history = await alice.messages(direct.channel_id)

    message_id = earlier.message.message_id
    for call in (
        bob.open_direct(alice.user_id),
        bob.send_message(direct.channel_id, "let me in"),
        bob.edit_message(direct.channel_id, message_id, "changed after the block"),
        bob.react(direct.channel_id, message_id, "👍"),
        alice.send_message(direct.channel_id, "a word from the blocker"),
        alice.react(direct.channel_id, message_id, "👎"),
        carol.open_direct(alice.user_id),
        alice.open_direct(carol.user_id),
    ):
        await blocked(call, blocker=alice)
    assert await alice.messages(direct.channel_id) == history
    assert await bob.messages(direct.channel_id) == history
    assert [c.channel_id for c in await carol.channels()] == []
    assert [c.channel_id for c in await alice.channels()] == [direct.channel_id]

    await bob.delete_message(direct.channel_id, message_id)
    await alice.unblock(bob.user_id)
    assert (await bob.open_direct(alice.user_id)).channel_id == direct.channel_id
    await bob.send_message(direct.channel_id, "after the block was lifted")


async def test_websocket_sends_and_typing_are_refused_too(chat_server: RunningServer) -> None:
    """A `send` frame in the blocked direct channel gets `error` `blocked` (with its
    `client_msg_id` and `ref`, nothing else); `typing` gets `error` `blocked`; the blocker's
    sockets receive nothing of either, and sync shows nothing new."""
    alice, bob = await people(chat_server, "alice bob")
    direct = await bob.open_direct(alice.user_id)
    await alice.block(bob.user_id)
    before = (await alice.sync()).next_since
    async with live(chat_server, bob, alice) as (bob_socket, alice_socket):
        send = {"type": "send", "channel_id": direct.channel_id, "client_msg_id": "c1"}
        await bob_socket.send(send | {"text": "psst", "ref": "s"})
        error = await bob_socket.expect("error")
        assert error == {
            "type": "error",
            "code": "blocked",
            "message": error["message"],
            "ref": "s",
            "client_msg_id": "c1",
        }
        assert not reveals(error["message"], alice)
        await bob_socket.send({"type": "typing", "channel_id": direct.channel_id, "ref": "t"})
        typing = await bob_socket.expect("error")
        assert (typing["code"], typing["ref"]) == ("blocked", "t")
        await chat_server.settle()
        assert await alice_socket.silent(0.3)
    assert (await alice.sync(since=before)).events == []


async def test_a_blocked_user_cannot_send_a_friend_request(chat_server: RunningServer) -> None:
    """Either way between a blocked pair, a friend request is 403 `blocked` and leaves no
    request behind."""
    alice, bob = await people(chat_server, "alice bob")
    await alice.block(bob.user_id)
    await blocked(bob.request("POST", "/api/v1/friends", {"user_id": alice.user_id}), blocker=alice)
    await blocked(alice.request("POST", "/api/v1/friends", {"user_id": bob.user_id}), blocker=alice)
    for client in (alice, bob):
        requests = await client.request("GET", "/api/v1/friends/requests")
        assert requests == {"incoming": [], "outgoing": []}


async def test_blocking_ends_friendships_and_requests(chat_server: RunningServer) -> None:
    """A block ends the pair's friendship, and a pending request either way; lifting it brings
    neither back, but the two may befriend again."""
    alice, bob, carol, dave = await people(chat_server, "alice bob carol dave")
    await befriend(alice, bob)
    await carol.request("POST", "/api/v1/friends", {"user_id": alice.user_id})
    await alice.request("POST", "/api/v1/friends", {"user_id": dave.user_id})
    for other in (bob, carol, dave):
        await alice.block(other.user_id)
    for client in (alice, bob, carol, dave):
        assert (await client.request("GET", "/api/v1/friends"))["friends"] == []
        requests = await client.request("GET", "/api/v1/friends/requests")
        assert requests == {"incoming": [], "outgoing": []}
    await alice.unblock(bob.user_id)
    assert (await bob.request("GET", "/api/v1/friends"))["friends"] == []
    await befriend(alice, bob)
    friends = (await bob.request("GET", "/api/v1/friends"))["friends"]
    assert [friend["user"]["user_id"] for friend in friends] == [alice.user_id]


# -- groups --------------------------------------------------------------------------------


async def test_a_blocked_user_cannot_add_the_blocker_to_a_group(
    chat_server: RunningServer,
) -> None:
    """Creating a group that names a user who blocks the creator is refused whole (403
    `blocked`: no group is made, for anyone); so is adding that user to a group. The blocker
    may still add the blocked user."""
    alice, bob, carol = await people(chat_server, "alice bob carol")
    await alice.block(bob.user_id)
    await blocked(bob.create_group("party", [carol.user_id, alice.user_id]), blocker=alice)
    for client in (alice, bob, carol):
        assert await client.channels() == []
    group = await bob.create_group("party", [carol.user_id])
    await blocked(bob.add_member(group.channel_id, alice.user_id), blocker=alice)
    assert (await carol.channel(group.channel_id)).members == sorted(ids([bob, carol]))
    own = await alice.create_group("alice's", [carol.user_id])
    added = await alice.add_member(own.channel_id, bob.user_id)
    assert added.members == sorted(ids([alice, bob, carol]))


async def test_in_a_group_both_still_see_each_others_messages(chat_server: RunningServer) -> None:
    """A block changes nothing in a group they share: each one's messages reach the other, over
    HTTP and on their sockets, and both may still send there."""
    alice, bob, carol = await people(chat_server, "alice bob carol")
    group = await carol.create_group("shared", [alice.user_id, bob.user_id])
    await alice.block(bob.user_id)
    async with live(chat_server, alice, bob) as (alice_socket, bob_socket):
        from_alice = await alice.send_message(group.channel_id, "alice here")
        from_bob = await bob.send_message(group.channel_id, "bob here")
        for socket in (alice_socket, bob_socket):
            # Sent over HTTP: the sender's own sockets get the message too.
            frames = [await socket.expect("message") for _ in range(2)]
            assert [f["message"]["text"] for f in frames] == ["alice here", "bob here"]
    for client in (alice, bob):
        texts = [m.text for m in (await client.messages(group.channel_id)).messages]
        assert texts == [from_alice.message.text, from_bob.message.text]


# -- presence --------------------------------------------------------------------------------


async def test_a_blocked_user_learns_nothing_of_the_blockers_presence(
    chat_server: RunningServer,
) -> None:
    """After alice blocks bob (a friend until then), her going online and offline reaches her
    other friend's socket but not bob's; `GET /friends` no longer lists her for bob, and the
    presence of any channel she shares with bob is 403 `blocked` to him (to her, it answers)."""
    alice, bob, carol = await people(chat_server, "alice bob carol")
    await befriend(alice, bob)
    await befriend(alice, carol)
    group = await carol.create_group("shared", [alice.user_id, bob.user_id])
    direct = await bob.open_direct(alice.user_id)
    await alice.block(bob.user_id)
    async with live(chat_server, bob, carol) as (bob_socket, carol_socket):
        phone = await chat_server.device("alice")
        async with live(chat_server, phone) as (alice_socket,):
            online = await carol_socket.expect("presence")
            assert (online["user_id"], online["status"]) == (alice.user_id, "online")
            await alice_socket.send({"type": "heartbeat"})
            await alice_socket.expect("heartbeat_ack")
            await phone.logout()
            offline = await carol_socket.expect("presence")
            assert (offline["user_id"], offline["status"]) == (alice.user_id, "offline")
        await chat_server.settle()
        assert await bob_socket.silent(0.3)

    friends = (await bob.request("GET", "/api/v1/friends"))["friends"]
    assert [friend["user"]["user_id"] for friend in friends] == []
    for channel_id in (group.channel_id, direct.channel_id):
        await blocked(bob.request("GET", f"/api/v1/channels/{channel_id}/presence"), blocker=alice)
    shown = await alice.request("GET", f"/api/v1/channels/{group.channel_id}/presence")
    assert sorted(p["user_id"] for p in shown["presence"]) == sorted(ids([alice, bob, carol]))
    lone = await carol.create_group("without alice", [bob.user_id])
    await bob.request("GET", f"/api/v1/channels/{lone.channel_id}/presence")


async def test_a_block_refusal_looks_the_same_for_every_blocker(
    chat_server: RunningServer,
) -> None:
    """Whichever user blocked, and whichever side asks, the refusals of one kind carry the same
    code and message: nothing in them tells who blocked, or when."""
    alice, bob, carol = await people(chat_server, "alice bob carol")
    await alice.block(bob.user_id)
    await carol.block(alice.user_id)
    messages = set()
    for asker, other in ((bob, alice), (alice, bob), (alice, carol), (carol, alice)):
        error = await refused(asker.open_direct(other.user_id))
        messages.add((error.status, error.code, error.message))
        error = await refused(asker.request("POST", "/api/v1/friends", {"user_id": other.user_id}))
        messages.add((error.status, error.code, error.message))
    assert len({code for _, code, _ in messages}) == 1
    assert len(messages) == 1, json.dumps(sorted(messages))


async def test_a_block_made_on_one_node_holds_on_every_node_at_once(
    chat_server: RunningServer,
) -> None:
    """Blocks are read where they are checked: a send right after the block, through any node
    (every new client talks to the next node), is refused; one right after the unblock goes."""
    alice, bob = await people(chat_server, "alice bob")
    direct = await bob.open_direct(alice.user_id)
    bob_elsewhere = chat_server.client(bob.token)
    for _ in range(3):
        await alice.block(bob.user_id)
        results = await asyncio.gather(
            bob.send_message(direct.channel_id, "now?"),
            bob_elsewhere.send_message(direct.channel_id, "or now?"),
            return_exceptions=True,
        )
        assert all(isinstance(r, ChatApiError) and r.code == "blocked" for r in results), results
        await alice.unblock(bob.user_id)
        await bob_elsewhere.send_message(direct.channel_id, "and now")
