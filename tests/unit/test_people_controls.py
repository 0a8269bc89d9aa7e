"""Blocks, who may add whom, and notification levels, on fakes: what each refuses and tells."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import pytest

from chatapp.errors import BadRequest, Forbidden, NotFound
from chatapp.social import ChannelChanged, Consent, Friends, FriendshipChanged
from chatapp.social.block_cache import RememberedBlocks
from chatapp.testing.fakes import FakeBlockStore, ModulesOnFakes, build_modules_on_fakes


async def with_users(count: int) -> tuple[ModulesOnFakes, list[int]]:
    """Modules and `count` users, made straight in the user store."""
    modules = build_modules_on_fakes()
    ids = []
    for n in range(1, count + 1):
        user = await modules.users.create_user(
            username=f"user{n}", display_name=f"User {n}", password_hash="h", created_at=0
        )
        ids.append(user.user_id)
    return modules, ids


async def refused_code(call: Awaitable[Any]) -> str:
    with pytest.raises(Forbidden) as caught:
        await call
    return caught.value.code


async def test_a_block_ends_the_friendship_and_says_so_on_the_bus() -> None:
    """Blocking a friend removes the friendship (FriendshipChanged `removed`, so every node's
    cached friend lists drop it); blocking a stranger announces nothing."""
    modules, (alice, bob, carol) = await with_users(3)
    await modules.friends.request(alice, bob)
    await modules.friends.request(bob, alice)
    await modules.bus.deliver()
    assert await modules.friends.are_friends(alice, bob)
    since = len(modules.bus.published)
    await modules.blocks.block(alice, bob)
    await modules.blocks.block(alice, carol)
    removed = [e for e in modules.bus.published[since:] if isinstance(e, FriendshipChanged)]
    assert [(e.user_ids, e.status) for e in removed] == [((alice, bob), "removed")]
    await modules.bus.deliver()
    assert not await modules.friends.are_friends(alice, bob)
    assert await modules.blocks.blocked_by(alice) == [bob, carol]


async def test_blocking_needs_another_existing_user() -> None:
    """Oneself: BadRequest; an unknown user: NotFound; both for unblocking too."""
    modules, (alice,) = await with_users(1)
    for act in (modules.blocks.block, modules.blocks.unblock):
        with pytest.raises(BadRequest):
            await act(alice, alice)
        with pytest.raises(NotFound):
            await act(alice, 99)


async def test_a_friend_request_written_while_a_block_lands_is_taken_back() -> None:
    """A block written between a request's check and its write (another node's, say) is seen
    when the request looks again: the request is removed and refused."""
    modules, (alice, bob) = await with_users(2)
    blocks = modules.block_store

    class BlockMeanwhile(FakeBlockStore):
        checks = 0

        async def between(self, user_a: int, user_b: int) -> bool:
            self.checks += 1
            if self.checks == 2:
                await blocks.block(alice, bob, at=0)
            return await blocks.between(user_a, user_b)

    consent = Consent(BlockMeanwhile(), modules.friend_store, modules.accounts)
    friends = Friends(modules.friend_store, modules.accounts, modules.bus, modules.clock,
                      consent=consent)  # fmt: skip
    assert await refused_code(friends.request(bob, alice)) == "blocked"
    assert await modules.friend_store.get(alice, bob) is None


async def test_a_blocked_direct_channel_takes_nothing_new_from_either_side() -> None:
    """In a direct channel with a block either way, sending (and so editing, reacting,
    typing) is refused with `blocked` for both; in a group they share, nothing is refused."""
    modules, (alice, bob, carol) = await with_users(3)
    direct, _ = await modules.social.open_direct(alice, bob)
    group = await modules.social.create_group(carol, "g", [alice, bob])
    notes, _ = await modules.social.open_direct(alice, alice)
    await modules.blocks.block(alice, bob)
    for caller in (alice, bob):
        assert await refused_code(modules.social.require_sender(caller, direct.channel_id)) == (
            "blocked"
        )
        assert await modules.social.require_sender(caller, group.channel_id)
        assert await modules.social.require_member(caller, direct.channel_id)
    assert await modules.social.require_sender(alice, notes.channel_id) == {alice}
    await modules.blocks.unblock(alice, bob)
    assert await modules.social.require_sender(bob, direct.channel_id)


async def test_who_may_add_is_checked_whole_and_blocks_first() -> None:
    """A group naming anyone who blocks the creator is refused `blocked`, one naming a
    friends-only user who is not the creator's friend `forbidden`, and nothing is made; the
    same for adding. A friend may add a friends-only user."""
    modules, (alice, bob, carol, dave) = await with_users(4)
    await modules.blocks.block(carol, alice)
    await modules.users.update_profile(dave, display_name=None, about=None, group_adds="friends")
    social = modules.social
    assert await refused_code(social.create_group(alice, "g", [bob, carol, dave])) == "blocked"
    assert await refused_code(social.create_group(alice, "g", [bob, dave])) == "forbidden"
    assert await modules.channels.memberships(bob) == []
    group = await social.create_group(alice, "g", [bob])
    assert await refused_code(social.add_member(alice, group.channel_id, carol)) == "blocked"
    assert await refused_code(social.add_member(alice, group.channel_id, dave)) == "forbidden"
    await modules.friends.request(alice, dave)
    assert await refused_code(social.add_member(alice, group.channel_id, dave)) == "forbidden"
    await modules.friends.request(dave, alice)
    assert dave in (await social.add_member(alice, group.channel_id, dave)).members
    assert carol in (await social.create_group(carol, "own", [alice])).members


async def test_presence_of_a_channel_is_refused_to_whom_a_member_blocks() -> None:
    """The presence list is refused whole to a member some other member blocks; the blocker
    and everyone else get every member."""
    modules, (alice, bob, carol) = await with_users(3)
    group = await modules.social.create_group(carol, "g", [alice, bob])
    await modules.blocks.block(alice, bob)
    assert await refused_code(modules.social.presence_members(bob, group.channel_id)) == ("blocked")
    for viewer in (alice, carol):
        assert await modules.social.presence_members(viewer, group.channel_id) == (
            alice,
            bob,
            carol,
        )


async def test_a_level_is_the_members_own_and_told_to_their_devices_only() -> None:
    """Setting a level announces `updated` to the caller alone, and changes only the caller's
    view; the channel's levels name each member's own."""
    modules, (alice, bob) = await with_users(2)
    group = await modules.social.create_group(alice, "g", [bob])
    since = len(modules.bus.published)
    await modules.social.set_notification_level(bob, group.channel_id, "mentions")
    events = [e for e in modules.bus.published[since:] if isinstance(e, ChannelChanged)]
    assert [(e.channel_id, e.event, e.user_ids) for e in events] == [
        (group.channel_id, "updated", (bob,))
    ]
    assert (await modules.social.member_state(bob, group.channel_id)).notification_level == (
        "mentions"
    )
    assert (await modules.social.member_state(alice, group.channel_id)).notification_level == (
        "all"
    )
    levels = await modules.social.channel_levels(group.channel_id, [alice, bob])
    assert levels is not None
    assert (levels.kind, levels.levels) == ("group", {alice: "all", bob: "mentions"})
    with pytest.raises(Forbidden):
        await modules.social.set_notification_level(3, group.channel_id, "none")
    with pytest.raises(NotFound):
        await modules.social.set_notification_level(bob, 99, "none")


class CountingBlocks(FakeBlockStore):
    """Counts the `between` questions that reach the store; can hold one until released."""

    def __init__(self) -> None:
        super().__init__()
        self.asked = 0
        self.hold: asyncio.Event | None = None

    async def between(self, user_a: int, user_b: int) -> bool:
        self.asked += 1
        found = await super().between(user_a, user_b)
        if self.hold is not None:
            await self.hold.wait()
        return found


async def test_remembered_blocks_ask_the_store_once_per_pair_until_a_write() -> None:
    """A pair's answer is kept (either order of the pair); blocking or unblocking it forgets
    it, so the next answer is the store's, and other pairs stay kept."""
    store = CountingBlocks()
    blocks = RememberedBlocks(store)
    assert not await blocks.between(1, 2)
    assert not await blocks.between(2, 1)
    assert not await blocks.between(1, 3)
    assert store.asked == 2
    await blocks.block(2, 1, at=0)
    assert await blocks.between(1, 2)
    assert not await blocks.between(1, 3)
    await blocks.unblock(2, 1)
    assert not await blocks.between(2, 1)
    assert store.asked == 4


async def test_an_answer_read_while_a_block_is_written_is_not_kept() -> None:
    """A read that started before a block was written may have missed it: its answer is
    given but not kept, so the next question asks the store again and sees the block."""
    store = CountingBlocks()
    blocks = RememberedBlocks(store)
    release = store.hold = asyncio.Event()
    reading = asyncio.create_task(blocks.between(1, 2))
    await asyncio.sleep(0)  # the read has asked the store, and waits
    store.hold = None
    await blocks.block(1, 2, at=0)
    release.set()
    assert await reading is False
    assert await blocks.between(1, 2)
    assert store.asked == 2


async def test_remembered_blocks_keep_a_bounded_number_of_pairs() -> None:
    """Past `kept` pairs, the least recently asked is forgotten first."""
    store = CountingBlocks()
    blocks = RememberedBlocks(store, kept=2)
    for pair in ((1, 2), (1, 3), (1, 2), (1, 4)):
        await blocks.between(*pair)
    assert store.asked == 3
    await blocks.between(1, 2)
    assert store.asked == 3
    await blocks.between(1, 3)
    assert store.asked == 4
