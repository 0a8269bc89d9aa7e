"""Channels, read markers and friendships: one set of tests, run on SQLite and on PostgreSQL.

Passing on both engines is what shows the PostgreSQL stores keep the SQLite
stores' semantics; the races run on two nodes (on SQLite, one
server racing with itself).
"""

from __future__ import annotations

import asyncio
import random

import pytest

from chatapp.social import ChannelStoreError
from chatapp.social.models import Channel
from tests.integration.store_engines import Database, Node


async def group(node: Node, members: list[int], *, owner: int | None = 1) -> Channel:
    created = await node.channels.create_channel(
        kind="group", name="team", owner_id=owner, member_ids=members, created_at=100
    )
    assert created is not None
    return created


async def test_a_group_is_stored_with_its_members_in_order(node: Node) -> None:
    """A new channel keeps its kind, name, owner and members (unique, ascending)."""
    created = await group(node, [3, 1, 2, 3])
    assert created.members == (1, 2, 3)
    assert (created.kind, created.name, created.owner_id, created.created_at) == (
        "group",
        "team",
        1,
        100,
    )
    assert await node.channels.get_channel(created.channel_id) == created
    assert await node.channels.get_channel(10**9) is None
    # Groups have no direct key: any number of them.
    assert (await group(node, [1, 2])).channel_id != created.channel_id


async def test_a_direct_channel_is_created_once_per_pair(node: Node) -> None:
    """A second create with the same direct key answers None; the key finds the first channel."""
    first = await node.channels.create_channel(
        kind="direct", name="", owner_id=None, member_ids=[2, 1], created_at=5, direct_key="1:2"
    )
    assert first is not None
    assert first.members == (1, 2)
    again = await node.channels.create_channel(
        kind="direct", name="", owner_id=None, member_ids=[1, 2], created_at=6, direct_key="1:2"
    )
    assert again is None
    assert await node.channels.direct_channel("1:2") == first
    assert await node.channels.direct_channel("1:3") is None


async def test_racing_direct_creates_from_two_nodes_make_one_channel_per_pair(
    database: Database,
) -> None:
    """Twenty pairs, each created by two nodes at once: one channel and one None per pair."""
    first, second = await database.racers()
    keys = [f"{n}:{n + 100}" for n in range(20)]
    outcomes = await asyncio.gather(
        *(
            node.channels.create_channel(
                kind="direct",
                name="",
                owner_id=None,
                member_ids=[int(part) for part in key.split(":")],
                created_at=1,
                direct_key=key,
            )
            for key in keys
            for node in (first, second)
        )
    )
    for key, pair in zip(keys, zip(outcomes[::2], outcomes[1::2], strict=True), strict=True):
        created = [channel for channel in pair if channel is not None]
        assert len(created) == 1, pair
        assert await second.channels.direct_channel(key) == created[0]


async def test_members_are_added_and_removed_once(node: Node) -> None:
    """Adding answers False for a member, removing False for a non-member; the list follows."""
    channel = await group(node, [1, 2])
    assert await node.channels.add_member(channel.channel_id, 3, joined_at=200)
    assert not await node.channels.add_member(channel.channel_id, 3, joined_at=201)
    assert await node.channels.remove_member(channel.channel_id, 1)
    assert not await node.channels.remove_member(channel.channel_id, 1)
    found = await node.channels.get_channel(channel.channel_id)
    assert found is not None
    assert found.members == (2, 3)
    with pytest.raises(ChannelStoreError):
        await node.channels.add_member(10**9, 3, joined_at=202)


async def test_rename_and_the_owner_leaving(node: Node) -> None:
    """A rename is stored; the owner leaving passes the group to the lowest member id in the
    same write, another member leaving changes no owner, and the last one leaves it to
    nobody."""
    channel = await group(node, [1, 3, 2])
    await node.channels.rename(channel.channel_id, "renamed ✓")
    assert channel.owner_id == 1
    assert await node.channels.remove_member(channel.channel_id, 1)
    assert await node.channels.get_channel(channel.channel_id) == channel.model_copy(
        update={"name": "renamed ✓", "owner_id": 2, "members": (2, 3)}
    )
    for user_id, owner in ((3, 2), (2, None)):
        assert await node.channels.remove_member(channel.channel_id, user_id)
        found = await node.channels.get_channel(channel.channel_id)
        assert found is not None
        assert found.owner_id == owner


async def test_memberships_list_each_channel_with_the_users_marker(node: Node) -> None:
    """A user's memberships name every channel they are in, its members, and their own marker."""
    first = await group(node, [1, 2])
    second = await group(node, [1, 3])
    await group(node, [2, 3])
    await node.channels.advance_read_marker(second.channel_id, 1, 42)
    await node.channels.advance_read_marker(second.channel_id, 3, 50)
    found = sorted(
        await node.channels.memberships(1), key=lambda membership: membership.channel.channel_id
    )
    assert [(m.channel, m.read_message_id) for m in found] == [(first, 0), (second, 42)]
    assert await node.channels.memberships(99) == []


async def test_a_read_marker_only_moves_forward(node: Node) -> None:
    """Advancing answers the marker after the call; a lower mark leaves it; non-members get None."""
    channel = await group(node, [1, 2])
    assert await node.channels.read_marker(channel.channel_id, 1) == 0
    assert await node.channels.advance_read_marker(channel.channel_id, 1, 10) == 10
    assert await node.channels.advance_read_marker(channel.channel_id, 1, 7) == 10
    assert await node.channels.advance_read_marker(channel.channel_id, 1, 10) == 10
    assert await node.channels.read_marker(channel.channel_id, 1) == 10
    assert await node.channels.advance_read_marker(channel.channel_id, 9, 10) is None
    assert await node.channels.read_marker(channel.channel_id, 9) is None


async def test_a_channels_read_markers_are_read_together(node: Node) -> None:
    """`read_markers` answers every member's marker (0 for nothing read) and no one else's;
    nothing for a channel that does not exist."""
    channel = await group(node, [1, 2, 3])
    await group(node, [1, 4])
    await node.channels.advance_read_marker(channel.channel_id, 2, 8)
    assert await node.channels.read_markers(channel.channel_id) == {1: 0, 2: 8, 3: 0}
    assert await node.channels.remove_member(channel.channel_id, 3)
    assert await node.channels.read_markers(channel.channel_id) == {1: 0, 2: 8}
    assert await node.channels.read_markers(10**9) == {}


async def test_batched_markers_move_forward_only_and_skip_non_members(node: Node) -> None:
    """A batch moves each marker to its furthest mark, never back, and ignores non-members."""
    first = await group(node, [1, 2])
    second = await group(node, [1])
    await node.channels.advance_read_marker(first.channel_id, 2, 30)
    await node.channels.advance_read_markers(
        [
            (first.channel_id, 1, 5),
            (first.channel_id, 1, 9),
            (first.channel_id, 1, 7),
            (first.channel_id, 2, 20),
            (second.channel_id, 1, 3),
            (second.channel_id, 9, 3),
        ]
    )
    await node.channels.advance_read_markers([])
    assert await node.channels.read_marker(first.channel_id, 1) == 9
    assert await node.channels.read_marker(first.channel_id, 2) == 30
    assert await node.channels.read_marker(second.channel_id, 1) == 3
    assert await node.channels.read_marker(second.channel_id, 9) is None


async def test_racing_markers_from_two_nodes_end_at_the_furthest(database: Database) -> None:
    """Marks 1..60 sent in random order from two nodes at once: each answer is at least its own
    mark, and the marker ends at 60."""
    first, second = await database.racers()
    channel = await group(first, [1, 2])
    marks = list(range(1, 61))
    random.Random(7).shuffle(marks)
    answers = await asyncio.gather(
        *(
            (first, second)[n % 2].channels.advance_read_marker(channel.channel_id, 1, mark)
            for n, mark in enumerate(marks)
        )
    )
    assert all(
        answer is not None and answer >= mark for answer, mark in zip(answers, marks, strict=True)
    )
    assert await second.channels.read_marker(channel.channel_id, 1) == 60


async def test_racing_batches_over_the_same_members_all_apply(database: Database) -> None:
    """Two nodes batch marks for the same members in opposite orders, ten times at once:
    no batch fails (no deadlock), and every marker ends at its furthest mark."""
    first, second = await database.racers()
    channels = [await group(first, [1, 2, 3]) for _ in range(4)]
    members = [(channel.channel_id, user) for channel in channels for user in (1, 2, 3)]

    def batch(round_: int, reverse: bool) -> list[tuple[int, int, int]]:
        ordered = reversed(members) if reverse else members
        return [(c, u, round_ * 10 + u + (5 if reverse else 0)) for c, u in ordered]

    await asyncio.gather(
        *(
            node.channels.advance_read_markers(batch(round_, reverse))
            for round_ in range(10)
            for node, reverse in ((first, False), (second, True))
        )
    )
    for channel_id, user in members:
        assert await first.channels.read_marker(channel_id, user) == 95 + user


async def test_a_friend_request_is_pending_until_the_other_side_asks(node: Node) -> None:
    """A request is pending; repeating it changes nothing; the other side's request accepts it."""
    asked = await node.friends.request(5, 2, at=10)
    assert (asked.user_low, asked.user_high, asked.requested_by, asked.status) == (
        2,
        5,
        5,
        "pending",
    )
    assert await node.friends.request(5, 2, at=11) == asked
    assert await node.friends.get(2, 5) == asked
    accepted = await node.friends.request(2, 5, at=12)
    assert accepted == asked.model_copy(update={"status": "accepted"})
    assert await node.friends.request(2, 5, at=13) == accepted
    assert await node.friends.request(5, 2, at=14) == accepted
    assert await node.friends.get(5, 2) == accepted
    assert await node.friends.get(5, 3) is None


async def test_friendships_are_listed_oldest_first_and_removed_once(node: Node) -> None:
    """A user's friendships and requests come oldest first; removing answers True once."""
    await node.friends.request(1, 3, at=20)
    await node.friends.request(2, 1, at=10)
    await node.friends.request(4, 5, at=5)
    await node.friends.request(3, 1, at=30)
    listed = await node.friends.of_user(1)
    assert [(f.other(1), f.status) for f in listed] == [(2, "pending"), (3, "accepted")]
    assert await node.friends.remove(3, 1)
    assert not await node.friends.remove(1, 3)
    assert [f.other(1) for f in await node.friends.of_user(1)] == [2]
    with pytest.raises(ChannelStoreError):
        await node.friends.request(7, 7, at=40)


async def test_requests_from_both_sides_at_once_end_accepted(database: Database) -> None:
    """Twenty pairs, each asking each other at once from two nodes: every pair ends accepted."""
    first, second = await database.racers()
    pairs = [(n, n + 100) for n in range(1, 21)]
    await asyncio.gather(
        *(first.friends.request(a, b, at=1) for a, b in pairs),
        *(second.friends.request(b, a, at=1) for a, b in pairs),
    )
    for a, b in pairs:
        friendship = await first.friends.get(a, b)
        assert friendship is not None
        assert friendship.status == "accepted"
