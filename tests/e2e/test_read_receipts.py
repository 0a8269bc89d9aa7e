"""Read receipts others can see (protocol additions §4), through a real server.

`GET /channels/{id}/receipts`, the `receipt` frame and the `share_read_receipts`
setting of `PATCH /me`. The module runs on a two-node cluster too
(tests/e2e/conftest.py): sockets are spread over the nodes, so a receipt
crosses between them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from chatapp.client import ChatApiError, ChatClient, RealtimeClient, ReceiptEvent
from chatapp.testing import RawSocket, RunningServer


async def group_of(server: RunningServer, count: int) -> tuple[list[ChatClient], int]:
    """`count` new users in a group owned by the first; the group's id."""
    users = await server.users(count)
    group = await users[0].create_group("readers", [user.user_id for user in users[1:]])
    return users, group.channel_id


async def stop_sharing(client: ChatClient) -> None:
    assert (await client.update_me(share_read_receipts=False)).share_read_receipts is False


def listed(receipts: list[Any]) -> list[tuple[int, int]]:
    return [(receipt.user_id, receipt.read_message_id) for receipt in receipts]


@asynccontextmanager
async def sockets(server: RunningServer, *clients: ChatClient) -> AsyncIterator[list[RawSocket]]:
    """A live, caught-up socket per client, spread over the server's nodes in turn; opened
    after every earlier event has been handled, so none of those arrives on them."""
    await server.settle()
    opened: list[RawSocket] = []
    try:
        for number, client in enumerate(clients):
            ws_url = server.ws_urls[number % len(server.ws_urls)]
            opened.append(await RawSocket.open(ws_url, client.token or ""))
            await opened[-1].until("synced")
        yield opened
    finally:
        for socket in opened:
            await socket.close()


async def all_silent(server: RunningServer, *silent: RawSocket) -> bool:
    """True when, once every event so far is handled, none of these sockets gets a frame."""
    await server.settle()
    return all(await asyncio.gather(*(socket.silent(0.3) for socket in silent)))


def receipt(channel_id: int, reader: ChatClient, message_id: int) -> dict[str, Any]:
    return {
        "type": "receipt",
        "channel_id": channel_id,
        "user_id": reader.user_id,
        "message_id": message_id,
    }


# -- GET /channels/{id}/receipts ----------------------------------------------------------------


async def test_receipts_list_every_sharing_member_with_zero_for_nothing_read(
    chat_server: RunningServer,
) -> None:
    """Every member shares by default: the list has each of them by user id, the caller
    included, with their read marker; 0 for one who has read nothing, and the sender's
    marker at what they sent."""
    (alice, bob, carol), group_id = await group_of(chat_server, 3)
    for number in range(3):
        await alice.send_message(group_id, f"m{number}")
    await bob.mark_read(group_id, 2)
    await chat_server.settle()

    expected = [(alice.user_id, 3), (bob.user_id, 2), (carol.user_id, 0)]
    for viewer in (alice, bob, carol):
        assert listed(await viewer.receipts(group_id)) == expected
    answer = await carol.request("GET", f"/api/v1/channels/{group_id}/receipts")
    assert answer == {
        "receipts": [{"user_id": user_id, "read_message_id": at} for user_id, at in expected]
    }


async def test_a_member_who_does_not_share_is_hidden_and_sees_only_their_own(
    chat_server: RunningServer,
) -> None:
    """A member who stops sharing is left out of the others' lists, and sees only their own
    entry; sharing again puts them back and shows them everyone's."""
    (alice, bob, carol), group_id = await group_of(chat_server, 3)
    await alice.send_message(group_id, "hello")
    await carol.mark_read(group_id, 1)
    await chat_server.settle()
    await stop_sharing(carol)

    assert listed(await alice.receipts(group_id)) == [(alice.user_id, 1), (bob.user_id, 0)]
    assert listed(await carol.receipts(group_id)) == [(carol.user_id, 1)]

    await carol.update_me(share_read_receipts=True)
    everyone = [(alice.user_id, 1), (bob.user_id, 0), (carol.user_id, 1)]
    assert listed(await carol.receipts(group_id)) == everyone
    assert listed(await bob.receipts(group_id)) == everyone


async def test_a_direct_channels_receipts_show_both_sides(chat_server: RunningServer) -> None:
    """In a direct channel each side sees both markers; a side that stops sharing sees only
    its own, and the other sees only theirs."""
    alice, bob = await chat_server.users(2)
    channel = await alice.open_direct(bob.user_id)
    await bob.send_message(channel.channel_id, "hi")
    await chat_server.settle()
    assert listed(await alice.receipts(channel.channel_id)) == [
        (alice.user_id, 0),
        (bob.user_id, 1),
    ]
    await stop_sharing(alice)
    assert listed(await alice.receipts(channel.channel_id)) == [(alice.user_id, 0)]
    assert listed(await bob.receipts(channel.channel_id)) == [(bob.user_id, 1)]


async def test_receipts_are_for_members_only(chat_server: RunningServer) -> None:
    """A user outside the channel gets 403 `not_member` (group or direct), revealing no one;
    a channel that does not exist is 404 `not_found`; an id that is no id is 404 too."""
    (alice, bob), group_id = await group_of(chat_server, 2)
    direct = await alice.open_direct(bob.user_id)
    stranger = await chat_server.user()
    for channel_id in (group_id, direct.channel_id):
        with pytest.raises(ChatApiError) as refused:
            await stranger.receipts(channel_id)
        assert (refused.value.status, refused.value.code) == (403, "not_member")
        assert str(alice.user_id) not in refused.value.message
    for path in ("/api/v1/channels/987654/receipts", "/api/v1/channels/zero/receipts"):
        with pytest.raises(ChatApiError) as missing:
            await alice.request("GET", path)
        assert (missing.value.status, missing.value.code) == (404, "not_found")


# -- PATCH /me {share_read_receipts} -------------------------------------------------------


async def test_patch_me_turns_sharing_off_and_on_and_only_me_shows_it(
    chat_server: RunningServer,
) -> None:
    """`/me` shows `share_read_receipts` (true for a new user); PATCH /me sets it and answers
    the new value, leaving the other fields, and an absent or null value leaves it. Nobody
    else's view of the user shows it: not user lookups, friend lists, signup or login."""
    alice = chat_server.client()
    signed_up = await alice.request(
        "POST", "/api/v1/auth/signup", {"username": "alice", "password": "password1"}
    )
    logged_in = await alice.request(
        "POST", "/api/v1/auth/login", {"username": "alice", "password": "password1"}
    )
    assert "share_read_receipts" not in signed_up["user"]
    assert "share_read_receipts" not in logged_in["user"]
    await alice.login("alice", "password1")
    me = await alice.request("GET", "/api/v1/me")
    assert me["user"]["share_read_receipts"] is True

    off = await alice.request("PATCH", "/api/v1/me", {"share_read_receipts": False})
    assert off["user"] == me["user"] | {"share_read_receipts": False}
    assert (await alice.request("GET", "/api/v1/me"))["user"]["share_read_receipts"] is False
    renamed = await alice.request("PATCH", "/api/v1/me", {"display_name": "Al"})
    assert renamed["user"]["share_read_receipts"] is False
    kept = await alice.request("PATCH", "/api/v1/me", {"share_read_receipts": None})
    assert kept["user"]["share_read_receipts"] is False

    bob = await chat_server.user("bob")
    await bob.request("POST", "/api/v1/friends", {"user_id": alice.user_id})
    await alice.request("POST", "/api/v1/friends", {"user_id": bob.user_id})
    seen_by_bob = [
        (await bob.request("GET", f"/api/v1/users/{alice.user_id}"))["user"],
        (await bob.request("GET", "/api/v1/users", params={"username": "alice"}))["users"][0],
        (await bob.request("GET", "/api/v1/friends"))["friends"][0]["user"],
    ]
    assert all("share_read_receipts" not in user for user in seen_by_bob)

    on = await alice.update_me(share_read_receipts=True)
    assert (on.share_read_receipts, on.display_name) == (True, "Al")
    assert (await alice.me()).share_read_receipts is True


@pytest.mark.parametrize("value", [0, 1, "false", "true", [], {}])
async def test_patch_me_refuses_a_share_setting_that_is_not_a_boolean(
    chat_server: RunningServer, value: object
) -> None:
    """`share_read_receipts` must be JSON true or false (or null): anything else is 400
    `bad_request` naming the field, and the setting stays as it was."""
    alice = await chat_server.user()
    with pytest.raises(ChatApiError) as refused:
        await alice.request("PATCH", "/api/v1/me", {"share_read_receipts": value})
    assert (refused.value.status, refused.value.code) == (400, "bad_request")
    assert "share_read_receipts" in refused.value.message
    assert (await alice.me()).share_read_receipts is True


# -- the receipt frame -----------------------------------------------------------------------


async def test_a_read_reaches_the_other_members_as_a_receipt_and_own_devices_as_read(
    chat_server: RunningServer,
) -> None:
    """Bob reads on one device (a `read` frame): every live connection of the other members
    gets `receipt {channel_id, user_id, message_id}`, bob's other device gets `read`, the
    reading connection nothing. A read over HTTP: bob's devices both get `read`, the others
    `receipt`. A read that moves nothing sends nothing."""
    (alice, bob, carol), group_id = await group_of(chat_server, 3)
    for number in range(4):
        await alice.send_message(group_id, f"m{number}")
    bob_laptop = await chat_server.device((await bob.me()).username)
    async with sockets(chat_server, alice, bob, carol, alice, bob_laptop) as live:
        alice_one, bob_phone, carol_one, alice_two, laptop = live
        await bob_phone.send({"type": "read", "channel_id": group_id, "message_id": 2})
        for socket in (alice_one, carol_one, alice_two):
            assert await socket.expect("receipt") == receipt(group_id, bob, 2)
        assert await laptop.expect("read") == {
            "type": "read", "channel_id": group_id, "message_id": 2,
        }  # fmt: skip
        assert await all_silent(chat_server, bob_phone, laptop)

        await bob.mark_read(group_id, 4)
        for socket in (alice_one, carol_one, alice_two):
            assert await socket.expect("receipt") == receipt(group_id, bob, 4)
        for socket in (bob_phone, laptop):
            assert (await socket.expect("read"))["message_id"] == 4

        await bob.mark_read(group_id, 3)
        assert await all_silent(chat_server, *live)


async def test_a_member_who_does_not_share_gets_no_receipts(chat_server: RunningServer) -> None:
    """Receipts are reciprocal: once carol stops sharing, bob's reads reach alice as receipts
    and carol not at all; when carol shares again, they reach her too."""
    (alice, bob, carol), group_id = await group_of(chat_server, 3)
    for number in range(3):
        await alice.send_message(group_id, f"m{number}")
    await stop_sharing(carol)
    async with sockets(chat_server, alice, carol) as (alice_live, carol_live):
        await bob.mark_read(group_id, 1)
        assert await alice_live.expect("receipt") == receipt(group_id, bob, 1)
        assert await all_silent(chat_server, carol_live, alice_live)

        await carol.update_me(share_read_receipts=True)
        await bob.mark_read(group_id, 3)
        for socket in (alice_live, carol_live):
            assert await socket.expect("receipt") == receipt(group_id, bob, 3)


async def test_a_reader_who_does_not_share_sends_no_receipt(chat_server: RunningServer) -> None:
    """A member who does not share still moves their marker, and their own other devices
    still get `read`, but no other member gets a receipt of it."""
    (alice, bob, carol), group_id = await group_of(chat_server, 3)
    await alice.send_message(group_id, "hello")
    await stop_sharing(bob)
    async with sockets(chat_server, alice, carol, bob) as (alice_live, carol_live, bob_live):
        await bob.mark_read(group_id, 1)
        assert await bob_live.expect("read") == {
            "type": "read", "channel_id": group_id, "message_id": 1,
        }  # fmt: skip
        assert await all_silent(chat_server, alice_live, carol_live, bob_live)
        assert listed(await alice.receipts(group_id)) == [(alice.user_id, 1), (carol.user_id, 0)]
        assert listed(await bob.receipts(group_id)) == [(bob.user_id, 1)]


async def test_the_realtime_client_yields_receipts_as_events_of_their_own(
    chat_server: RunningServer,
) -> None:
    """`RealtimeClient.events()` yields a `receipt` frame as a `ReceiptEvent`."""
    (alice, bob), group_id = await group_of(chat_server, 2)
    await alice.send_message(group_id, "hello")
    await chat_server.settle()
    async with RealtimeClient(alice.ws_url, alice.token or "") as live:
        async with asyncio.timeout(10):
            await live.wait_ready()
        await bob.mark_read(group_id, 1)
        event = await live.next_event(timeout=10)
    assert event == ReceiptEvent(channel_id=group_id, user_id=bob.user_id, message_id=1)
