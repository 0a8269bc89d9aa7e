"""Notification levels, blocks and who may add whom, stored: one set of tests on SQLite and on
PostgreSQL (as `test_social_stores`), so both engines keep the same semantics."""

from __future__ import annotations

import asyncio

import pytest

from chatapp.social import ChannelStoreError
from chatapp.social.models import Channel, ChannelLevels, MemberState
from tests.integration.store_engines import Database, Node


async def group(node: Node, members: list[int]) -> Channel:
    created = await node.channels.create_channel(
        kind="group", name="team", owner_id=members[0], member_ids=members, created_at=100
    )
    assert created is not None
    return created


async def test_a_level_starts_at_all_and_belongs_to_one_membership(node: Node) -> None:
    """A new member is at `all`; setting one member's level changes nobody else's, in no other
    channel; `member_state` answers it with the read marker; non-members get None or False."""
    first, second = await group(node, [1, 2]), await group(node, [1, 3])
    assert await node.channels.member_state(first.channel_id, 1) == MemberState(
        read_message_id=0, notification_level="all"
    )
    assert await node.channels.set_notification_level(first.channel_id, 1, "mentions")
    assert await node.channels.set_notification_level(first.channel_id, 1, "mentions")
    await node.channels.advance_read_marker(first.channel_id, 1, 4)
    assert await node.channels.member_state(first.channel_id, 1) == MemberState(
        read_message_id=4, notification_level="mentions"
    )
    assert (await node.channels.member_state(first.channel_id, 2)) == MemberState(
        read_message_id=0, notification_level="all"
    )
    levels = {
        m.channel.channel_id: m.notification_level for m in await node.channels.memberships(1)
    }
    assert levels == {first.channel_id: "mentions", second.channel_id: "all"}
    assert not await node.channels.set_notification_level(first.channel_id, 3, "none")
    assert not await node.channels.set_notification_level(10**9, 1, "none")
    assert await node.channels.member_state(first.channel_id, 3) is None


async def test_channel_levels_answer_the_members_asked_for_and_the_kind(node: Node) -> None:
    """`channel_levels` names the channel's kind and the level of each member asked for; a
    non-member asked for is left out, and an unknown channel is None."""
    channel = await group(node, [1, 2, 3])
    direct = await node.channels.create_channel(
        kind="direct", name="", owner_id=None, member_ids=[1, 2], created_at=1, direct_key="1:2"
    )
    assert direct is not None
    await node.channels.set_notification_level(channel.channel_id, 2, "none")
    assert await node.channels.channel_levels(channel.channel_id, [2, 3, 9]) == ChannelLevels(
        kind="group", levels={2: "none", 3: "all"}
    )
    assert await node.channels.channel_levels(channel.channel_id, []) == ChannelLevels(
        kind="group", levels={}
    )
    assert await node.channels.channel_levels(direct.channel_id, [1]) == ChannelLevels(
        kind="direct", levels={1: "all"}
    )
    assert await node.channels.channel_levels(10**9, [1]) is None


async def test_a_level_leaves_with_the_member(node: Node) -> None:
    """A member who leaves and comes back starts at `all` again."""
    channel = await group(node, [1, 2])
    await node.channels.set_notification_level(channel.channel_id, 2, "none")
    assert await node.channels.remove_member(channel.channel_id, 2)
    assert await node.channels.add_member(channel.channel_id, 2, joined_at=5)
    state = await node.channels.member_state(channel.channel_id, 2)
    assert state is not None
    assert state.notification_level == "all"


async def test_blocks_are_one_way_and_stored_once(node: Node) -> None:
    """Blocking answers True once; `between` sees a block either way; `blockers_among` names
    who blocks a user; `blocked_by` lists whom a user blocks by id; unblocking answers True
    once; nobody blocks themself."""
    assert await node.blocks.block(1, 3, at=10)
    assert not await node.blocks.block(1, 3, at=11)
    assert await node.blocks.block(1, 2, at=12)
    assert await node.blocks.block(4, 2, at=13)
    assert await node.blocks.blocked_by(1) == [2, 3]
    assert await node.blocks.blocked_by(2) == []
    assert await node.blocks.blockers_among(2, [1, 3, 4, 5]) == {1, 4}
    assert await node.blocks.blockers_among(2, []) == set()
    assert await node.blocks.between(3, 1)
    assert await node.blocks.between(1, 3)
    assert not await node.blocks.between(3, 4)
    assert await node.blocks.unblock(1, 3)
    assert not await node.blocks.unblock(1, 3)
    assert not await node.blocks.between(1, 3)
    with pytest.raises(ChannelStoreError):
        await node.blocks.block(5, 5, at=14)


async def test_many_pairs_asked_at_once_each_get_their_answer(node: Node) -> None:
    """Asked together (one query on PostgreSQL, as a cluster node asks), either direction of
    a block counts, and a pair with none is answered False."""
    await node.blocks.block(1, 2, at=1)
    await node.blocks.block(4, 3, at=2)
    pairs = [(1, 2), (2, 1), (3, 4), (4, 3), (1, 3), (5, 6), (1, 2)]
    answers = await asyncio.gather(*(node.blocks.between(a, b) for a, b in pairs))
    assert answers == [True, True, True, True, False, False, True]


async def test_racing_blocks_from_two_nodes_store_each_pair_once(database: Database) -> None:
    """The same twenty blocks from two nodes at once: each is answered True exactly once."""
    first, second = await database.racers()
    answers = await asyncio.gather(
        *(node.blocks.block(1, n, at=1) for n in range(2, 22) for node in (first, second))
    )
    assert sum(answers) == 20
    assert await second.blocks.blocked_by(1) == list(range(2, 22))


async def test_who_may_add_a_user_is_stored_with_the_profile(node: Node) -> None:
    """`group_adds` is `everyone` for a new user; `update_profile` sets it (None leaves it);
    `only_friends_add` names the users at `friends`."""
    alice = await node.users.create_user(
        username="alice", display_name="Alice", password_hash="h", created_at=1
    )
    bob = await node.users.create_user(
        username="bob", display_name="Bob", password_hash="h", created_at=1
    )
    assert alice.group_adds == "everyone"
    changed = await node.users.update_profile(
        alice.user_id, display_name=None, about=None, group_adds="friends"
    )
    assert changed is not None
    assert changed.group_adds == "friends"
    kept = await node.users.update_profile(alice.user_id, display_name="A", about=None)
    assert kept is not None
    assert (kept.display_name, kept.group_adds) == ("A", "friends")
    assert await node.users.only_friends_add([alice.user_id, bob.user_id, 99]) == {alice.user_id}
    assert await node.users.only_friends_add([]) == set()
