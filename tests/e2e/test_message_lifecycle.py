"""Edits, deletions, reactions, replies and mentions, through a real server and real sockets."""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from chatapp.client import (
    Backoff,
    ChatClient,
    MessageEvent,
    RealtimeClient,
    RealtimeError,
    UpdateEvent,
)
from chatapp.protocol.http import MessageOut
from chatapp.testing import RunningServer
from tests.e2e.refusals import refused

FAST = Backoff(initial=0.01, maximum=0.05, multiplier=2.0, jitter=0.2)
WAIT = 10.0


@asynccontextmanager
async def live(
    server: RunningServer, client: ChatClient, *, last_seq: int | None = 0
) -> AsyncIterator[RealtimeClient]:
    assert client.token is not None
    async with RealtimeClient(
        client.ws_url, client.token, last_seq=last_seq, backoff=FAST
    ) as realtime:
        async with asyncio.timeout(WAIT):
            await realtime.wait_ready()
        yield realtime


async def inbox_events(realtime: RealtimeClient, count: int) -> list[MessageEvent | UpdateEvent]:
    """The next `count` message and update events, other events skipped."""
    found: list[MessageEvent | UpdateEvent] = []
    async with asyncio.timeout(WAIT):
        while len(found) < count:
            event = await realtime.next_event()
            if isinstance(event, MessageEvent | UpdateEvent):
                found.append(event)
    return found


def converge(events: list[MessageEvent | UpdateEvent]) -> dict[int, dict[str, Any]]:
    """A device's view of a channel, built from its inbox alone, as a client would."""
    messages: dict[int, dict[str, Any]] = {}
    for event in events:
        if isinstance(event, MessageEvent):
            messages[event.message.message_id] = event.message.model_dump()
            continue
        update = event.update.model_dump(exclude_none=True)
        message = messages[update.pop("message_id")]
        kind = update.pop("kind")
        update.pop("channel_id")
        if kind == "deleted":
            update.pop("deleted_by")
            update = {"deleted": True, "text": "", "mentions": [], "reactions": []}
        message.update(update)
    return messages


async def history_view(client: ChatClient, channel_id: int) -> dict[int, dict[str, Any]]:
    page = await client.messages(channel_id, limit=200)
    return {message.message_id: message.model_dump() for message in page.messages}


async def test_every_device_converges_on_the_same_state_live_and_after_catching_up(
    chat_server: RunningServer,
) -> None:
    """Two users, two devices each: edits, deletions, reactions and replies reach every live
    device in one order; an offline device catches up by hello and by GET /sync to the same."""
    alice = await chat_server.user("alice")
    bob = await chat_server.user("bob")
    alice_phone = await chat_server.device("alice")
    bob_laptop = await chat_server.device("bob")
    channel = await alice.open_direct(bob.user_id)
    channel_id = channel.channel_id
    async with (
        live(chat_server, alice) as alice_live,
        live(chat_server, alice_phone) as phone_live,
        live(chat_server, bob) as bob_live,
    ):
        first = (await alice.send_message(channel_id, "hello @bob")).message
        second = (await bob.send_message(channel_id, "hi!", reply_to=first.message_id)).message
        edited = await alice.edit_message(channel_id, first.message_id, "hello @Bob, again")
        await bob.react(channel_id, first.message_id, "👍")
        await alice.react(channel_id, first.message_id, "👍")
        await alice.react(channel_id, first.message_id, "🎉")
        await bob.unreact(channel_id, first.message_id, "👍")
        await bob.delete_message(channel_id, second.message_id)
        steps = 8
        seen = [await inbox_events(device, steps) for device in (alice_live, phone_live, bob_live)]

    assert first.mentions == [bob.user_id]
    assert second.reply_to == first.message_id
    assert (edited.text, edited.mentions) == ("hello @Bob, again", [bob.user_id])
    assert edited.edited_at is not None
    kinds = [e.update.kind if isinstance(e, UpdateEvent) else "message" for e in seen[0]]
    assert kinds == [
        "message",
        "message",
        "edited",
        "reactions",
        "reactions",
        "reactions",
        "reactions",
        "deleted",
    ]
    deleted = seen[0][-1]
    assert isinstance(deleted, UpdateEvent)
    assert deleted.update.deleted_by == bob.user_id
    # Each device's own seqs run 1..8 in order; the same entries in the same order everywhere.
    for events in seen:
        assert [event.seq for event in events] == list(range(1, steps + 1))
        assert [_identity(e) for e in events] == [_identity(e) for e in seen[0]]
    present = await history_view(alice, channel_id)
    assert present[first.message_id]["reactions"] == [
        {"emoji": "👍", "user_ids": [alice.user_id]},
        {"emoji": "🎉", "user_ids": [alice.user_id]},
    ]
    assert present[second.message_id]["deleted"] is True
    assert present[second.message_id]["text"] == ""
    for events in seen:
        assert converge(events) == present

    # Bob's laptop was offline throughout: hello with last_seq 0 replays the present and
    # every update after it, and GET /sync says the same.
    async with live(chat_server, bob_laptop, last_seq=0) as laptop_live:
        replayed = await inbox_events(laptop_live, steps)
    assert converge(replayed) == present
    assert [_identity(e) for e in replayed] == [_identity(e) for e in seen[2]]
    sync = await bob_laptop.sync(0)
    assert [event.seq for event in sync.events] == list(range(1, steps + 1))
    assert [("update" if event.update else "message") for event in sync.events] == [
        "message" if kind == "message" else "update" for kind in kinds
    ]
    raw = await bob_laptop.request("GET", "/api/v1/sync", params={"since": "2"})
    assert set(raw["events"][0]) == {"seq", "update"}
    assert raw["events"][0]["update"]["kind"] == "edited"
    assert set(raw["events"][-1]["update"]) == {"kind", "channel_id", "message_id", "deleted_by"}


def _identity(event: MessageEvent | UpdateEvent) -> tuple[str, int]:
    if isinstance(event, MessageEvent):
        return "message", event.message.message_id
    return event.update.kind, event.update.message_id


async def test_a_change_that_changes_nothing_appends_nothing(chat_server: RunningServer) -> None:
    alice, bob = await chat_server.user(), await chat_server.user()
    channel_id = (await alice.open_direct(bob.user_id)).channel_id
    message = (await alice.send_message(channel_id, "same")).message
    before = (await bob.sync(0)).next_since
    await alice.edit_message(channel_id, message.message_id, "same")
    await bob.react(channel_id, message.message_id, "👍")
    await bob.react(channel_id, message.message_id, "👍")
    await bob.unreact(channel_id, message.message_id, "🎉")
    await alice.delete_message(channel_id, message.message_id)
    await alice.delete_message(channel_id, message.message_id)
    assert (await bob.sync(0)).next_since == before + 2  # the reaction and the deletion


async def test_who_may_edit_and_delete(chat_server: RunningServer) -> None:
    """The sender edits; the sender, the group's owner or a server admin deletes."""
    owner, member, other = await chat_server.users(3)
    outsider = await chat_server.user()
    admin = await chat_server.admin()
    group = await owner.create_group("team", [member.user_id, other.user_id])
    gid = group.channel_id
    by_member = (await member.send_message(gid, "mine")).message.message_id
    by_other = (await other.send_message(gid, "theirs")).message.message_id
    by_owner = (await owner.send_message(gid, "the owner's")).message.message_id

    assert await refused(owner.edit_message(gid, by_member, "x")) == (403, "forbidden")
    assert await refused(outsider.edit_message(gid, by_member, "x")) == (403, "not_member")
    assert await refused(member.delete_message(gid, by_other)) == (403, "forbidden")
    assert await refused(member.delete_message(gid, by_owner)) == (403, "forbidden")
    assert await refused(outsider.delete_message(gid, by_member)) == (403, "not_member")
    assert await refused(outsider.react(gid, by_member, "👍")) == (403, "not_member")
    await owner.delete_message(gid, by_other)
    await member.delete_message(gid, by_member)
    await admin.delete_message(gid, by_owner)  # not a member, but an admin
    page = await owner.messages(gid)
    assert [message.deleted for message in page.messages] == [True, True, True]
    assert await refused(member.edit_message(gid, by_member, "back")) == (409, "message_deleted")
    assert await refused(other.react(gid, by_member, "👍")) == (409, "message_deleted")
    # Replying to a deleted message is allowed.
    reply = await other.send_message(gid, "re", reply_to=by_member)
    assert reply.message.reply_to == by_member
    # In a direct chat nobody owns the channel: only the sender deletes.
    direct = await member.open_direct(other.user_id)
    said = (await member.send_message(direct.channel_id, "hi")).message.message_id
    assert await refused(other.delete_message(direct.channel_id, said)) == (403, "forbidden")


async def test_limits_and_bad_input_are_refused_with_their_codes(
    chat_server: RunningServer,
) -> None:
    alice, bob = await chat_server.user(), await chat_server.user()
    channel_id = (await alice.open_direct(bob.user_id)).channel_id
    other_channel = (await alice.open_direct((await chat_server.user()).user_id)).channel_id
    message_id = (await alice.send_message(channel_id, "hi")).message.message_id
    elsewhere = (await alice.send_message(other_channel, "hi")).message.message_id + 5

    assert await refused(alice.edit_message(channel_id, message_id, "")) == (422, "text_empty")
    too_long = "x" * 100_001
    assert await refused(alice.edit_message(channel_id, message_id, too_long)) == (
        422,
        "text_too_long",
    )
    assert await refused(alice.edit_message(channel_id, 999, "x")) == (404, "not_found")
    assert await refused(alice.delete_message(channel_id, 999)) == (404, "not_found")
    assert await refused(alice.react(channel_id, 999, "👍")) == (404, "not_found")
    assert await refused(alice.send_message(channel_id, "re", reply_to=elsewhere)) == (
        422,
        "bad_reply",
    )
    assert await refused(alice.react(channel_id, message_id, "a b")) == (422, "bad_emoji")
    assert await refused(alice.react(channel_id, message_id, "x" * 17)) == (422, "bad_emoji")
    await alice.react(channel_id, message_id, "🏳️‍🌈")  # one emoji of several code points
    await alice.react(channel_id, message_id, "a/b?c")  # escaped in the path, kept whole
    for number in range(18):
        await bob.react(channel_id, message_id, f"e{number}")
    assert await refused(bob.react(channel_id, message_id, "one-more")) == (
        422,
        "too_many_reactions",
    )
    page = await alice.messages(channel_id)
    emoji = [reaction.emoji for reaction in page.messages[0].reactions]
    assert emoji[:2] == ["🏳️‍🌈", "a/b?c"]
    assert len(emoji) == 20
    bad = await alice.raw_request(
        "PATCH", f"/api/v1/channels/{channel_id}/messages/{message_id}", data='{"text": 5}'
    )
    assert (bad.status, bad.json()["error"]["code"]) == (400, "bad_request")
    empty = await alice.raw_request(
        "PUT", f"/api/v1/channels/{channel_id}/messages/{message_id}/reactions/%20"
    )
    assert empty.status == 422
    assert empty.json()["error"]["code"] == "bad_emoji"


async def test_mentions_name_members_only_each_once_in_order(chat_server: RunningServer) -> None:
    alice = await chat_server.user("alice")
    bob = await chat_server.user("bob.b")
    carol = await chat_server.user("carol")
    stranger = await chat_server.user("dave")
    group = await alice.create_group("g", [bob.user_id, carol.user_id])
    text = "@carol, @BOB.B. and @bob.b again; @dave is not here, me@carol neither, @alice is me"
    message = (await alice.send_message(group.channel_id, text)).message
    assert message.mentions == [carol.user_id, bob.user_id]
    assert stranger.user_id not in message.mentions
    edited = await alice.edit_message(group.channel_id, message.message_id, "only @carol-")
    assert edited.mentions == [carol.user_id]


async def test_a_send_frame_carries_reply_to(chat_server: RunningServer) -> None:
    alice, bob = await chat_server.user(), await chat_server.user()
    channel_id = (await alice.open_direct(bob.user_id)).channel_id
    first = (await bob.send_message(channel_id, "question")).message.message_id
    async with live(chat_server, alice) as realtime:
        ack = await realtime.send(channel_id, "answer", reply_to=first)
        assert ack.message.reply_to == first
        with pytest.raises(RealtimeError) as refused:
            await realtime.send(channel_id, "answer", reply_to=first + 10)
        assert refused.value.code == "bad_reply"


async def test_the_message_object_always_carries_the_new_fields(chat_server: RunningServer) -> None:
    alice, bob = await chat_server.user(), await chat_server.user()
    channel_id = (await alice.open_direct(bob.user_id)).channel_id
    sent = await alice.request(
        "POST", f"/api/v1/channels/{channel_id}/messages", {"client_msg_id": "c1", "text": "hi"}
    )
    assert {"edited_at", "deleted", "reply_to", "mentions", "reactions"} <= set(sent["message"])
    assert sent["message"]["edited_at"] is None
    assert sent["message"]["reply_to"] is None
    emoji = urllib.parse.quote("👍", safe="")
    path = f"/api/v1/channels/{channel_id}/messages/{sent['message']['message_id']}"
    assert (await bob.raw_request("PUT", f"{path}/reactions/{emoji}")).status == 204
    assert (await bob.raw_request("DELETE", f"{path}/reactions/{emoji}")).status == 204
    assert (await alice.raw_request("DELETE", path)).status == 204
    gone = MessageOut.model_validate(
        (await alice.request("GET", path.rsplit("/", 1)[0]))["messages"][0]
    )
    assert (gone.deleted, gone.text, gone.reactions, gone.mentions) == (True, "", [], [])


async def test_the_channel_list_preview_follows_edits_and_deletions(
    chat_server: RunningServer,
) -> None:
    alice, bob = await chat_server.user(), await chat_server.user()
    channel_id = (await alice.open_direct(bob.user_id)).channel_id
    last = (await alice.send_message(channel_id, "first words")).message.message_id

    async def preview() -> dict[str, Any]:
        channels = await bob.request("GET", "/api/v1/channels")
        found: dict[str, Any] = channels["channels"][0]["last_message"]
        return found

    assert (await preview())["text"] == "first words"  # read once, and kept
    await alice.edit_message(channel_id, last, "better words")
    await chat_server.settle()
    edited = await preview()
    assert (edited["text"], edited["edited"], edited["deleted"]) == ("better words", True, False)
    await alice.react(channel_id, last, "👍")
    await alice.delete_message(channel_id, last)
    await chat_server.settle()
    gone = await preview()
    assert (gone["text"], gone["deleted"], gone["message_id"]) == ("", True, last)


async def test_concurrent_changes_from_several_devices_converge(
    chat_server: RunningServer,
) -> None:
    """Reactions and edits from four devices at once on one message: every inbox is
    contiguous, and what each device builds from it equals history."""
    alice = await chat_server.user("alice")
    bob = await chat_server.user("bob")
    devices = [alice, await chat_server.device("alice"), bob, await chat_server.device("bob")]
    channel_id = (await alice.open_direct(bob.user_id)).channel_id
    message_id = (await alice.send_message(channel_id, "v0")).message.message_id

    async def churn(index: int, client: ChatClient) -> None:
        for step in range(12):
            emoji = f"e{(index + step) % 5}"
            if step % 3 == 2:
                await client.unreact(channel_id, message_id, emoji)
            else:
                await client.react(channel_id, message_id, emoji)
            if client.user_id == alice.user_id and step % 4 == 0:
                await client.edit_message(channel_id, message_id, f"v{index}.{step}")

    await asyncio.gather(*(churn(index, client) for index, client in enumerate(devices)))
    await chat_server.settle()
    present = await history_view(alice, channel_id)
    for client in (alice, bob):
        events: list[MessageEvent | UpdateEvent] = []
        sync = await client.sync(0, limit=1000)
        assert [event.seq for event in sync.events] == list(range(1, len(sync.events) + 1))
        for event in sync.events:
            if event.message is not None:
                events.append(MessageEvent(seq=event.seq, message=event.message))
            else:
                assert event.update is not None
                events.append(UpdateEvent(seq=event.seq, update=event.update))
        assert converge(events) == present
