"""Notification levels (protocol additions §5), through a real server and a real push receiver.

`PUT /channels/{id}/notifications`, the `notification_level` of every channel
object, and the pushes a local webhook receiver counts. The module runs on a
two-node cluster too (tests/e2e/conftest.py): clients and sockets are spread
over the nodes, and the collapse windows live in PostgreSQL there.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from chatapp.client import ChatClient
from chatapp.testing import PushReceiver, RawSocket, RunningServer
from tests.e2e.refusals import refused


@pytest.fixture
async def receiver() -> AsyncIterator[PushReceiver]:
    async with PushReceiver() as running:
        yield running


@pytest.fixture
def chat_server_settings(receiver: PushReceiver) -> dict[str, Any]:
    """Every message pushed at once (no collapsing) to the webhook receiver."""
    return {
        "push_providers": ["webhook"],
        "push_webhook_url": receiver.url("/hook"),
        "push_webhook_secret": "a webhook secret, long enough",
        "push_collapse_window_ms": 0,
        "push_retry_base_ms": 10,
        "push_retry_max_ms": 40,
    }


async def level_of(client: ChatClient, channel_id: int) -> str:
    """The level as `GET /channels/{id}` and `GET /channels` both show it (they must agree)."""
    one = await client.request("GET", f"/api/v1/channels/{channel_id}")
    listed = await client.request("GET", "/api/v1/channels")
    (in_list,) = [c for c in listed["channels"] if c["channel_id"] == channel_id]
    assert in_list["notification_level"] == one["channel"]["notification_level"]
    level: str = one["channel"]["notification_level"]
    return level


async def pushes(receiver: PushReceiver, expected: int) -> Counter[tuple[int, int]]:
    """`(user_id, message_id)` of the next `expected` notifications, once nothing more comes."""
    found: Counter[tuple[int, int]] = Counter()
    for _ in range(expected):
        note = json.loads((await receiver.next(timeout=10)).body)["notification"]
        found[note["user_id"], note["message_id"]] += 1
    assert await receiver.silent(0.5)
    return found


@asynccontextmanager
async def live(server: RunningServer, *clients: ChatClient) -> AsyncIterator[list[RawSocket]]:
    """A caught-up socket per client, spread over the server's nodes, opened once every earlier
    event was handled."""
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


async def test_every_channel_object_carries_the_callers_own_level(
    chat_server: RunningServer,
) -> None:
    """A new membership is at `all` in every channel object (the answers of the channel calls,
    GET /channels, GET /channels/{id}); PUT sets the caller's level (204), which only the
    caller's objects show, and any later channel answer keeps it."""
    alice, bob = await chat_server.users(2)
    created = await alice.request(
        "POST", "/api/v1/channels/group", {"name": "team", "member_ids": [bob.user_id]}
    )
    group_id = created["channel"]["channel_id"]
    opened = await alice.request("POST", "/api/v1/channels/direct", {"user_id": bob.user_id})
    assert created["channel"]["notification_level"] == "all"
    assert opened["channel"]["notification_level"] == "all"
    for client in (alice, bob):
        assert await level_of(client, group_id) == "all"

    answer = await bob.raw_request(
        "PUT",
        f"/api/v1/channels/{group_id}/notifications",
        data=json.dumps({"level": "mentions"}),
        headers={"Content-Type": "application/json"},
    )
    assert (answer.status, answer.text) == (204, "")
    assert await level_of(bob, group_id) == "mentions"
    assert await level_of(alice, group_id) == "all"
    await alice.set_notification_level(group_id, "none")
    assert await level_of(alice, group_id) == "none"
    assert await level_of(bob, group_id) == "mentions"
    renamed = await alice.request("PATCH", f"/api/v1/channels/{group_id}", {"name": "renamed"})
    assert renamed["channel"]["notification_level"] == "none"
    carol = await chat_server.user()
    added = await alice.request(
        "POST", f"/api/v1/channels/{group_id}/members", {"user_id": carol.user_id}
    )
    assert added["channel"]["notification_level"] == "none"
    assert await level_of(carol, group_id) == "all"
    await bob.set_notification_level(group_id, "all")
    assert await level_of(bob, group_id) == "all"


async def test_channel_frames_show_each_user_their_own_level(chat_server: RunningServer) -> None:
    """The caller's other devices get `channel {event: "updated"}` with the new level; the
    other members get no frame for it; later channel frames show each user their own level."""
    alice, bob = await chat_server.users(2)
    group = await alice.create_group("team", [bob.user_id])
    alice_phone = await chat_server.device((await alice.me()).username)
    async with live(chat_server, alice_phone, bob) as (phone, bob_socket):
        await alice.set_notification_level(group.channel_id, "mentions")
        frame = await phone.expect("channel")
        assert frame["event"] == "updated"
        assert frame["channel"]["channel_id"] == group.channel_id
        assert frame["channel"]["notification_level"] == "mentions"
        await chat_server.settle()
        assert await bob_socket.silent(0.3)
        await alice.rename_channel(group.channel_id, "renamed")
        mine, theirs = await phone.expect("channel"), await bob_socket.expect("channel")
        assert mine["channel"]["notification_level"] == "mentions"
        assert theirs["channel"]["notification_level"] == "all"


async def test_levels_are_checked_like_the_other_channel_calls(chat_server: RunningServer) -> None:
    """An unknown level, a missing or mistyped one: 400 `bad_request`; a non-member: 403
    `not_member`; no such channel: 404; none of it changes the level."""
    alice, bob, mallory = await chat_server.users(3)
    group = await alice.create_group("team", [bob.user_id])
    path = f"/api/v1/channels/{group.channel_id}/notifications"
    for body in ({"level": "loud"}, {"level": "ALL"}, {}, {"level": 1}, {"level": None}):
        assert await refused(bob.request("PUT", path, body)) == (400, "bad_request"), body
    assert await refused(mallory.set_notification_level(group.channel_id, "none")) == (
        403,
        "not_member",
    )
    assert await refused(mallory.set_notification_level(987_654, "none")) == (404, "not_found")
    assert await level_of(bob, group.channel_id) == "all"
    await alice.remove_member(group.channel_id, bob.user_id)
    assert await refused(bob.set_notification_level(group.channel_id, "none")) == (
        403,
        "not_member",
    )


async def test_pushes_obey_each_members_level(
    chat_server: RunningServer, receiver: PushReceiver
) -> None:
    """In a group, `all` is pushed every message, `mentions` only those naming the member,
    `none` nothing; in a direct channel `mentions` is pushed every message and `none` nothing.
    Unread counts are the same whatever the level."""
    alice, bob = await chat_server.user("alice"), await chat_server.user("bob")
    carol, dave = await chat_server.user("carol"), await chat_server.user("dave")
    group = await alice.create_group("team", [bob.user_id, carol.user_id, dave.user_id])
    to_carol = await alice.open_direct(carol.user_id)
    to_dave = await alice.open_direct(dave.user_id)
    for client in (bob, carol, dave):
        await client.set_push_target(client.device_id, "webhook", f"device-{client.device_id}")
    await carol.set_notification_level(group.channel_id, "mentions")
    await carol.set_notification_level(to_carol.channel_id, "mentions")
    await dave.set_notification_level(group.channel_id, "none")
    await dave.set_notification_level(to_dave.channel_id, "none")
    await chat_server.settle()

    plain = await alice.send_message(group.channel_id, "hello all")
    assert await pushes(receiver, 1) == {(bob.user_id, plain.message.message_id): 1}
    naming = await alice.send_message(group.channel_id, "@carol and @dave, look")
    assert naming.message.mentions == [carol.user_id, dave.user_id]
    assert await pushes(receiver, 2) == {
        (bob.user_id, naming.message.message_id): 1,
        (carol.user_id, naming.message.message_id): 1,
    }
    direct = await alice.send_message(to_carol.channel_id, "no mention, but direct")
    assert await pushes(receiver, 1) == {(carol.user_id, direct.message.message_id): 1}
    await alice.send_message(to_dave.channel_id, "dave hears nothing")
    assert await pushes(receiver, 0) == {}

    unread = {c.channel_id: c.unread_count for c in await dave.channels()}
    assert unread == {group.channel_id: 2, to_dave.channel_id: 1}
    unread = {c.channel_id: c.unread_count for c in await carol.channels()}
    assert unread == {group.channel_id: 2, to_carol.channel_id: 1}


async def test_a_changed_level_counts_from_the_next_message(
    chat_server: RunningServer, receiver: PushReceiver
) -> None:
    """Turning notifications off stops the pushes at once, on whichever node the messages are
    sent; turning them back on brings them back."""
    alice, bob = await chat_server.users(2)
    group = await alice.create_group("team", [bob.user_id])
    await bob.set_push_target(bob.device_id, "webhook", "bob")
    await alice.send_message(group.channel_id, "one")
    assert sum((await pushes(receiver, 1)).values()) == 1
    await bob.set_notification_level(group.channel_id, "none")
    senders = [alice, chat_server.client(alice.token)]
    for number, sender in enumerate(senders):
        await sender.send_message(group.channel_id, f"quiet {number}")
    assert await pushes(receiver, 0) == {}
    await bob.set_notification_level(group.channel_id, "all")
    await asyncio.gather(*(s.send_message(group.channel_id, "loud") for s in senders))
    assert sum((await pushes(receiver, 2)).values()) == 2
