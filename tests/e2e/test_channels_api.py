"""Channels, history, HTTP sends, read markers and sync, through a real server over HTTP."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from chatapp.client import ChatApiError, ChatClient
from chatapp.testing import RunningServer, run_server
from tests.e2e.refusals import refused


async def direct(client: ChatClient, user_id: int) -> dict[str, Any]:
    answer = await client.request("POST", "/api/v1/channels/direct", {"user_id": user_id})
    channel: dict[str, Any] = answer["channel"]
    return channel


async def group(client: ChatClient, name: str, member_ids: list[int]) -> dict[str, Any]:
    answer = await client.request(
        "POST", "/api/v1/channels/group", {"name": name, "member_ids": member_ids}
    )
    channel: dict[str, Any] = answer["channel"]
    return channel


async def send(client: ChatClient, channel_id: int, text: str, cmid: str) -> dict[str, Any]:
    answer: dict[str, Any] = await client.request(
        "POST", f"/api/v1/channels/{channel_id}/messages", {"client_msg_id": cmid, "text": text}
    )
    return answer


async def test_direct_channel_is_created_once_whoever_asks(chat_server: RunningServer) -> None:
    """One direct channel per pair: 201 the first time, 200 after, the same id from both sides."""
    alice, bob = await chat_server.user(), await chat_server.user()
    answer = await alice.raw_request(
        "POST", "/api/v1/channels/direct", data=f'{{"user_id": {bob.user_id}}}'
    )
    assert answer.status == 201
    channel = answer.json()["channel"]
    assert channel["kind"] == "direct"
    assert channel["members"] == sorted([alice.user_id, bob.user_id])
    again = await bob.raw_request(
        "POST", "/api/v1/channels/direct", data=f'{{"user_id": {alice.user_id}}}'
    )
    assert again.status == 200
    assert again.json()["channel"]["channel_id"] == channel["channel_id"]


async def test_simultaneous_direct_requests_make_one_channel(chat_server: RunningServer) -> None:
    """Both users opening the chat at the same moment still get one channel."""
    alice, bob = await chat_server.user(), await chat_server.user()
    channels = await asyncio.gather(
        *[direct(alice, bob.user_id) for _ in range(5)],
        *[direct(bob, alice.user_id) for _ in range(5)],
    )
    assert len({channel["channel_id"] for channel in channels}) == 1


async def test_direct_with_unknown_user_is_not_found(chat_server: RunningServer) -> None:
    """Opening a direct channel with a user that does not exist is 404."""
    alice = await chat_server.user()
    assert await refused(direct(alice, 999_999)) == (404, "not_found")


async def test_group_creation_and_the_member_limit(chat_server: RunningServer) -> None:
    """The caller owns and belongs to a new group; 100 members fit, the 101st is group_full."""
    owner = await chat_server.user()
    others = [await chat_server.user() for _ in range(100)]
    ids = [user.user_id for user in others]
    assert await refused(group(owner, "too big", ids)) == (422, "group_full")
    channel = await group(owner, "  Team  ", ids[:99])
    assert (channel["name"], channel["owner_id"], channel["kind"]) == (
        "Team",
        owner.user_id,
        "group",
    )
    assert len(channel["members"]) == 100
    assert owner.user_id in channel["members"]
    path = f"/api/v1/channels/{channel['channel_id']}/members"
    assert await refused(owner.request("POST", path, {"user_id": ids[99]})) == (422, "group_full")


async def test_group_refuses_bad_names_and_unknown_members(chat_server: RunningServer) -> None:
    """A group needs a 1-100 character name and existing members."""
    owner = await chat_server.user()
    assert await refused(group(owner, " ", [])) == (422, "invalid_name")
    assert await refused(group(owner, "x" * 101, [])) == (422, "invalid_name")
    assert await refused(group(owner, "ok", [424242])) == (404, "not_found")
    for body in [{"name": "ok"}, {"name": "ok", "member_ids": "1"}, {"name": 5, "member_ids": []}]:
        assert await refused(owner.request("POST", "/api/v1/channels/group", body)) == (
            400,
            "bad_request",
        )


async def test_owner_renames_adds_and_removes(chat_server: RunningServer) -> None:
    """Only the owner renames, adds and removes others; adding a member twice changes nothing."""
    owner, member, newcomer = await chat_server.users(3)
    channel = await group(owner, "g", [member.user_id])
    base = f"/api/v1/channels/{channel['channel_id']}"
    renamed = await owner.request("PATCH", base, {"name": "renamed"})
    assert renamed["channel"]["name"] == "renamed"
    assert await refused(member.request("PATCH", base, {"name": "mine"})) == (403, "forbidden")
    assert await refused(
        member.request("POST", base + "/members", {"user_id": newcomer.user_id})
    ) == (
        403,
        "forbidden",
    )
    added = await owner.request("POST", base + "/members", {"user_id": newcomer.user_id})
    assert newcomer.user_id in added["channel"]["members"]
    again = await owner.request("POST", base + "/members", {"user_id": newcomer.user_id})
    assert again["channel"]["members"] == added["channel"]["members"]
    assert await refused(member.request("DELETE", f"{base}/members/{newcomer.user_id}")) == (
        403,
        "forbidden",
    )
    await owner.request("DELETE", f"{base}/members/{newcomer.user_id}")
    assert await refused(newcomer.request("GET", base)) == (403, "not_member")
    assert await refused(owner.request("DELETE", f"{base}/members/{newcomer.user_id}")) == (
        404,
        "not_found",
    )


async def test_member_leaves_and_owner_leaving_hands_over(chat_server: RunningServer) -> None:
    """A member removes itself; when the owner leaves, a remaining member becomes owner."""
    owner, first, second = await chat_server.users(3)
    channel = await group(owner, "g", [first.user_id, second.user_id])
    base = f"/api/v1/channels/{channel['channel_id']}"
    await second.request("DELETE", f"{base}/members/{second.user_id}")
    await owner.request("DELETE", f"{base}/members/{owner.user_id}")
    seen = (await first.request("GET", base))["channel"]
    assert seen["members"] == [first.user_id]
    assert seen["owner_id"] == first.user_id


async def test_direct_channels_cannot_be_changed(chat_server: RunningServer) -> None:
    """Nobody renames, joins or leaves a direct channel."""
    alice, bob, carol = await chat_server.users(3)
    channel = await direct(alice, bob.user_id)
    base = f"/api/v1/channels/{channel['channel_id']}"
    assert await refused(alice.request("PATCH", base, {"name": "x"})) == (403, "forbidden")
    assert await refused(alice.request("POST", base + "/members", {"user_id": carol.user_id})) == (
        403,
        "forbidden",
    )
    assert await refused(alice.request("DELETE", f"{base}/members/{alice.user_id}")) == (
        403,
        "forbidden",
    )


async def test_non_members_learn_nothing_and_cannot_post(chat_server: RunningServer) -> None:
    """A stranger gets 403 not_member reading, sending, marking read; unknown channels 404."""
    alice, bob, stranger = await chat_server.users(3)
    channel = await direct(alice, bob.user_id)
    base = f"/api/v1/channels/{channel['channel_id']}"
    await send(alice, channel["channel_id"], "private", "p1")
    for call in [
        stranger.request("GET", base),
        stranger.request("GET", base + "/messages"),
        send(stranger, channel["channel_id"], "intrusion", "x1"),
        stranger.request("POST", base + "/read", {"message_id": 1}),
    ]:
        assert await refused(call) == (403, "not_member")
    assert await refused(stranger.request("GET", "/api/v1/channels/987654")) == (404, "not_found")
    assert (await stranger.request("GET", "/api/v1/channels"))["channels"] == []
    assert (await stranger.request("GET", "/api/v1/sync"))["events"] == []


async def test_http_send_is_idempotent(chat_server: RunningServer) -> None:
    """POST messages answers 201 {message, seq}; the same client_msg_id again: 200, the original."""
    alice, bob = await chat_server.user(), await chat_server.user()
    channel_id = (await direct(alice, bob.user_id))["channel_id"]
    path = f"/api/v1/channels/{channel_id}/messages"
    first = await alice.raw_request("POST", path, data='{"client_msg_id": "a-1", "text": "hello"}')
    assert first.status == 201
    repeat = await alice.raw_request("POST", path, data='{"client_msg_id": "a-1", "text": "other"}')
    assert repeat.status == 200
    assert repeat.json() == first.json()
    history = await alice.request("GET", path)
    assert [m["text"] for m in history["messages"]] == ["hello"]


@pytest.mark.parametrize(
    ("text", "status", "code"),
    [
        ("", 422, "text_empty"),
        ("x" * 100_001, 422, "text_too_long"),
        ("\ud800", 400, "bad_request"),
    ],
)
async def test_text_limits(chat_server: RunningServer, text: str, status: int, code: str) -> None:
    """Empty, over-long and non-Unicode texts are refused; nothing is stored."""
    alice, bob = await chat_server.user(), await chat_server.user()
    channel_id = (await direct(alice, bob.user_id))["channel_id"]
    assert await refused(send(alice, channel_id, text, "t1")) == (status, code)
    history = await alice.request("GET", f"/api/v1/channels/{channel_id}/messages")
    assert history["messages"] == []


@pytest.mark.parametrize("cmid", ["", "x" * 65, "tab\there", "é"])
async def test_client_msg_id_limits(chat_server: RunningServer, cmid: str) -> None:
    """client_msg_id must be 1 to 64 printable ASCII characters: 400 otherwise."""
    alice, bob = await chat_server.user(), await chat_server.user()
    channel_id = (await direct(alice, bob.user_id))["channel_id"]
    assert await refused(send(alice, channel_id, "hi", cmid)) == (400, "bad_request")


async def test_longest_message_round_trips_exactly(chat_server: RunningServer) -> None:
    """100,000 characters of mixed scripts and emoji, whitespace kept, come back unchanged."""
    alice, bob = await chat_server.user(), await chat_server.user()
    channel_id = (await direct(alice, bob.user_id))["channel_id"]
    text = (" ü€中\n😀👩‍👩‍👧 " * 20_000)[:100_000]
    assert len(text) == 100_000
    stored = await send(alice, channel_id, text, "long")
    assert stored["message"]["text"] == text
    history = await bob.request("GET", f"/api/v1/channels/{channel_id}/messages")
    assert history["messages"][0]["text"] == text


async def test_history_pages_by_message_id(chat_server: RunningServer) -> None:
    """before/after/limit page history oldest first, with has_more in the paged direction."""
    alice, bob = await chat_server.user(), await chat_server.user()
    channel_id = (await direct(alice, bob.user_id))["channel_id"]
    for i in range(1, 8):
        await send(alice, channel_id, f"m{i}", f"c{i}")
    path = f"/api/v1/channels/{channel_id}/messages"

    async def page(**query: str) -> tuple[list[int], bool]:
        answer = await bob.request("GET", path, params=query)
        return [m["message_id"] for m in answer["messages"]], answer["has_more"]

    assert await page(limit="3") == ([5, 6, 7], True)
    assert await page(before="5", limit="3") == ([2, 3, 4], True)
    assert await page(before="2", limit="3") == ([1], False)
    assert await page(after="4", limit="2") == ([5, 6], True)
    assert await page(after="6") == ([7], False)
    assert await page(after="2", before="5") == ([3, 4], False)
    for bad in [{"limit": "0"}, {"limit": "201"}, {"before": "x"}, {"after": "-1"}]:
        with pytest.raises(ChatApiError) as caught:
            await page(**bad)
        assert caught.value.code == "bad_request"


async def test_channel_list_orders_by_activity_and_counts_unread(
    chat_server: RunningServer,
) -> None:
    """GET /channels: most recent activity first, with last_message_id and unread_count."""
    me, bob, carol = await chat_server.users(3)
    with_bob = (await direct(me, bob.user_id))["channel_id"]
    with_carol = (await direct(me, carol.user_id))["channel_id"]
    await send(bob, with_bob, "one", "b1")
    await send(bob, with_bob, "two", "b2")
    listed = (await me.request("GET", "/api/v1/channels"))["channels"]
    assert [c["channel_id"] for c in listed] == [with_bob, with_carol]
    assert (listed[0]["last_message_id"], listed[0]["unread_count"]) == (2, 2)
    await asyncio.sleep(0.002)  # created_at has millisecond resolution
    await send(carol, with_carol, "hey", "c1")
    listed = (await me.request("GET", "/api/v1/channels"))["channels"]
    assert [c["channel_id"] for c in listed] == [with_carol, with_bob]
    assert [c["last_message"]["text"] for c in listed] == ["hey", "two"]
    await asyncio.sleep(0.002)
    newest = await group(me, "newest", [bob.user_id])
    listed = (await me.request("GET", "/api/v1/channels"))["channels"]
    assert [c["channel_id"] for c in listed] == [newest["channel_id"], with_carol, with_bob]


async def test_channel_objects_carry_a_preview_of_the_last_message(
    chat_server: RunningServer,
) -> None:
    """last_message: null without messages; a short text whole (truncated false); a long one
    cut to 200 characters (truncated true), counted in code points so an emoji is one and is
    never split; the same object in GET /channels, GET /channels/{id} and the client's model."""
    me, bob = await chat_server.users(2)
    quiet = await group(me, "quiet", [bob.user_id])
    assert quiet["last_message"] is None
    short = (await direct(me, bob.user_id))["channel_id"]
    long = (await group(me, "long", [bob.user_id]))["channel_id"]
    emoji = (await group(me, "emoji", [bob.user_id]))["channel_id"]
    await send(bob, short, "hi 👋 there", "s1")
    await send(me, long, "x" * 200 + "y" * 99_800, "l1")
    sent = await send(bob, emoji, "a" * 199 + "😀" * 50_000, "e1")

    listed = {c["channel_id"]: c for c in (await me.request("GET", "/api/v1/channels"))["channels"]}

    assert listed[quiet["channel_id"]]["last_message"] is None
    assert listed[short]["last_message"] == {
        "message_id": 1,
        "sender_id": bob.user_id,
        "created_at": listed[short]["last_message"]["created_at"],
        "text": "hi 👋 there",
        "truncated": False,
        "edited": False,
        "deleted": False,
    }
    assert (listed[long]["last_message"]["text"], listed[long]["last_message"]["truncated"]) == (
        "x" * 200,
        True,
    )
    cut = listed[emoji]["last_message"]
    assert (cut["text"], cut["truncated"]) == ("a" * 199 + "😀", True)
    assert (cut["message_id"], cut["created_at"]) == (1, sent["message"]["created_at"])
    one = (await me.request("GET", f"/api/v1/channels/{emoji}"))["channel"]
    assert one == listed[emoji]
    model = {c.channel_id: c for c in await me.channels()}
    preview = model[emoji].last_message
    assert preview is not None
    assert preview.text == "a" * 199 + "😀"
    assert model[quiet["channel_id"]].last_message is None


async def test_a_preview_of_exactly_200_characters_is_whole(chat_server: RunningServer) -> None:
    """200 characters are not cut (truncated false); 201 are, to the first 200."""
    me, bob = await chat_server.users(2)
    channel_id = (await direct(me, bob.user_id))["channel_id"]
    await send(me, channel_id, "é" * 200, "c1")
    first = (await me.request("GET", f"/api/v1/channels/{channel_id}"))["channel"]
    assert (first["last_message"]["text"], first["last_message"]["truncated"]) == ("é" * 200, False)
    await send(me, channel_id, "é" * 201, "c2")
    second = (await me.request("GET", f"/api/v1/channels/{channel_id}"))["channel"]
    assert (second["last_message"]["message_id"], second["last_message"]["truncated"]) == (2, True)
    assert second["last_message"]["text"] == "é" * 200


async def test_read_marker_only_moves_forward(chat_server: RunningServer) -> None:
    """POST read moves the marker forward, never back, never past the last message."""
    me, bob = await chat_server.user(), await chat_server.user()
    channel_id = (await direct(me, bob.user_id))["channel_id"]
    for i in range(3):
        await send(bob, channel_id, f"m{i}", f"b{i}")
    base = f"/api/v1/channels/{channel_id}"

    async def marker() -> tuple[int, int]:
        channel = (await me.request("GET", base))["channel"]
        return channel["read_message_id"], channel["unread_count"]

    await me.request("POST", base + "/read", {"message_id": 2})
    assert await marker() == (2, 1)
    await me.request("POST", base + "/read", {"message_id": 1})
    assert await marker() == (2, 1)
    await me.request("POST", base + "/read", {"message_id": 99})
    assert await marker() == (3, 0)


async def test_sync_pages_through_the_inbox(chat_server: RunningServer) -> None:
    """GET /sync returns inbox entries after `since` in seq order, paged with has_more."""
    me, bob, carol = await chat_server.users(3)
    c1 = (await direct(me, bob.user_id))["channel_id"]
    c2 = (await direct(me, carol.user_id))["channel_id"]
    await send(bob, c1, "a", "1")
    await send(me, c2, "b", "2")
    await send(carol, c2, "c", "3")
    page = await me.request("GET", "/api/v1/sync", params={"since": "0", "limit": "2"})
    assert [(e["seq"], e["message"]["text"]) for e in page["events"]] == [(1, "a"), (2, "b")]
    assert (page["next_since"], page["has_more"]) == (2, True)
    page = await me.request("GET", "/api/v1/sync", params={"since": "2"})
    assert [(e["seq"], e["message"]["text"]) for e in page["events"]] == [(3, "c")]
    assert (page["next_since"], page["has_more"]) == (3, False)
    empty = await me.request("GET", "/api/v1/sync", params={"since": "3"})
    assert (empty["events"], empty["next_since"], empty["has_more"]) == ([], 3, False)
    with pytest.raises(ChatApiError, match="bad_request"):
        await me.request("GET", "/api/v1/sync", params={"limit": "1001"})


async def test_a_repeated_send_is_answered_after_leaving(chat_server: RunningServer) -> None:
    """A retry of a stored send gets the original even after the sender left the group."""
    owner, alice = await chat_server.users(2)
    channel_id = (await group(owner, "g", [alice.user_id]))["channel_id"]
    first = await send(alice, channel_id, "hi", "x1")
    await alice.request("DELETE", f"/api/v1/channels/{channel_id}/members/{alice.user_id}")
    assert await send(alice, channel_id, "hi", "x1") == first
    assert await refused(send(alice, channel_id, "new", "x2")) == (403, "not_member")


async def test_own_messages_are_not_unread_even_after_restart(tmp_path: Path) -> None:
    """The sender's read marker follows their own sends, and is kept across a restart."""
    async with run_server(tmp_path / "d") as server:
        alice, bob = await server.users(2)
        channel_id = (await direct(alice, bob.user_id))["channel_id"]
        for i in range(3):
            await send(alice, channel_id, f"m{i}", f"a{i}")
        await server.settle()
        assert (await alice.channel(channel_id)).unread_count == 0
        assert (await bob.channel(channel_id)).unread_count == 3
        tokens = alice.token, bob.token
    async with run_server(tmp_path / "d") as server:
        alice, bob = server.client(tokens[0]), server.client(tokens[1])
        assert (await alice.channel(channel_id)).read_message_id == 3
        assert (await bob.channel(channel_id)).unread_count == 3
