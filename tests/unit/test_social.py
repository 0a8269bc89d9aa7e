"""Social on fakes: channels, who may change them, read markers and the membership cache."""

from __future__ import annotations

import pytest

from chatapp.errors import Forbidden, InvalidInput, NotFound
from chatapp.messaging import MessageAccepted
from chatapp.social import GROUP_LIMIT, ChannelChanged, ChannelStoreError, ReadMarkerMoved
from chatapp.testing.fakes import ModulesOnFakes, build_modules_on_fakes


async def with_users(count: int) -> tuple[ModulesOnFakes, list[int]]:
    """Modules and `count` users, made straight in the user store (no login needed here)."""
    modules = build_modules_on_fakes()
    ids = []
    for n in range(1, count + 1):
        user = await modules.users.create_user(
            username=f"user{n}", display_name=f"User {n}", password_hash="h", created_at=0
        )
        ids.append(user.user_id)
    return modules, ids


def changes(modules: ModulesOnFakes) -> list[tuple[int, str, tuple[int, ...]]]:
    return [(e.channel_id, e.event, e.user_ids) for e in modules.bus.of_type(ChannelChanged)]


async def test_a_pair_has_one_direct_channel_whoever_opens_it() -> None:
    """open_direct creates the channel once (True), then both sides get it back (False);
    only the creation is announced."""
    modules, (alice, bob) = await with_users(2)
    created, is_new = await modules.social.open_direct(alice, bob)
    again, again_new = await modules.social.open_direct(bob, alice)

    assert (is_new, again_new) == (True, False)
    assert again == created
    assert (created.kind, created.members, created.owner_id) == ("direct", (alice, bob), None)
    assert changes(modules) == [(created.channel_id, "added", (alice, bob))]


async def test_a_direct_channel_needs_an_existing_other_user() -> None:
    """open_direct with an unknown user is NotFound and creates nothing."""
    modules, (alice,) = await with_users(1)
    with pytest.raises(NotFound):
        await modules.social.open_direct(alice, 42)
    assert await modules.channels.memberships(alice) == []


async def test_a_group_holds_at_most_the_limit_of_members() -> None:
    """GROUP_LIMIT members (the owner included) is allowed; one more is group_full, at
    creation and when adding."""
    modules, users = await with_users(GROUP_LIMIT + 1)
    owner, *others = users
    with pytest.raises(InvalidInput) as too_many:
        await modules.social.create_group(owner, "big", others)
    full = await modules.social.create_group(owner, "big", others[:-1])
    with pytest.raises(InvalidInput) as no_room:
        await modules.social.add_member(owner, full.channel_id, others[-1])

    assert (too_many.value.code, no_room.value.code) == ("group_full", "group_full")
    assert len(full.members) == GROUP_LIMIT


async def test_group_names_are_checked_and_trimmed() -> None:
    """A blank name or one over 100 characters is invalid_name; spaces around are dropped."""
    modules, (alice,) = await with_users(1)
    for name in ("   ", "x" * 101):
        with pytest.raises(InvalidInput, match="name"):
            await modules.social.create_group(alice, name, [])
    assert (await modules.social.create_group(alice, "  tea  ", [])).name == "tea"


async def test_only_the_owner_renames_adds_and_removes_others() -> None:
    """A member who is not the owner gets forbidden; an outsider not_member; a direct
    channel cannot be changed at all."""
    modules, (owner, member, outsider) = await with_users(3)
    social = modules.social
    group = await social.create_group(owner, "g", [member])
    direct, _ = await social.open_direct(owner, member)
    attempts = [
        social.rename(member, group.channel_id, "mine"),
        social.add_member(member, group.channel_id, outsider),
        social.remove_member(member, group.channel_id, owner),
        social.rename(owner, direct.channel_id, "renamed"),
        social.remove_member(owner, direct.channel_id, member),
    ]
    for attempt in attempts:
        with pytest.raises(Forbidden) as refused:
            await attempt
        assert refused.value.code == "forbidden"
    with pytest.raises(Forbidden) as stranger:
        await social.rename(outsider, group.channel_id, "x")
    assert stranger.value.code == "not_member"

    renamed = await social.rename(owner, group.channel_id, "new name")
    added = await social.add_member(owner, group.channel_id, outsider)
    assert renamed.name == "new name"
    assert added.members == (owner, member, outsider)
    await social.remove_member(owner, group.channel_id, outsider)
    assert (await social.channel_for(owner, group.channel_id)).members == (owner, member)


async def test_changes_are_announced_to_the_right_people() -> None:
    """add tells the newcomer 'added' and the others 'updated'; remove tells the removed
    'removed' and those left 'updated'; rename tells every member 'updated'."""
    modules, (owner, member, newcomer) = await with_users(3)
    social = modules.social
    group = await social.create_group(owner, "g", [member])
    cid = group.channel_id
    await social.add_member(owner, cid, newcomer)
    await social.rename(owner, cid, "renamed")
    await social.remove_member(owner, cid, member)
    assert changes(modules) == [
        (cid, "added", (owner, member)),
        (cid, "added", (newcomer,)),
        (cid, "updated", (owner, member)),
        (cid, "updated", (owner, member, newcomer)),
        (cid, "removed", (member,)),
        (cid, "updated", (owner, newcomer)),
    ]


async def test_an_owner_who_leaves_hands_the_group_to_the_lowest_remaining_id() -> None:
    """The owner leaving makes the lowest remaining member id the owner; the last member
    leaving leaves the group without an owner. Removing a non-member is not_found."""
    modules, (first, second, third) = await with_users(3)
    social = modules.social
    group = await social.create_group(second, "g", [third, first])
    cid = group.channel_id

    await social.remove_member(second, cid, second)
    after_owner_left = await modules.social.get_channel(cid)
    await social.remove_member(first, cid, first)
    await social.remove_member(third, cid, third)
    empty = await modules.social.get_channel(cid)

    assert after_owner_left is not None
    assert (after_owner_left.owner_id, after_owner_left.members) == (first, (first, third))
    assert empty is not None
    assert (empty.owner_id, empty.members) == (None, ())
    with pytest.raises(Forbidden):
        await social.remove_member(first, cid, first)


async def test_removing_someone_who_is_not_a_member_is_not_found() -> None:
    """The owner removing a user outside the group gets NotFound."""
    modules, (owner, outsider) = await with_users(2)
    group = await modules.social.create_group(owner, "g", [])
    with pytest.raises(NotFound):
        await modules.social.remove_member(owner, group.channel_id, outsider)


async def test_read_markers_only_move_forward_and_only_moves_are_announced() -> None:
    """mark_read to a higher id moves the marker and publishes ReadMarkerMoved; a lower or
    equal id leaves it and publishes nothing."""
    modules, (alice, bob) = await with_users(2)
    channel, _ = await modules.social.open_direct(alice, bob)
    cid = channel.channel_id
    social = modules.social

    assert await social.mark_read(bob, cid, 5, origin_connection="c1") == 5
    assert await social.mark_read(bob, cid, 3) == 5
    assert await social.mark_read(bob, cid, 5) == 5
    assert await social.mark_read(bob, cid, 7) == 7

    assert modules.bus.of_type(ReadMarkerMoved) == [
        ReadMarkerMoved(user_id=bob, channel_id=cid, message_id=5, origin_connection="c1"),
        ReadMarkerMoved(user_id=bob, channel_id=cid, message_id=7),
    ]
    assert await social.read_marker(bob, cid) == 7
    assert await social.read_marker(alice, cid) == 0


async def test_a_sender_has_read_what_they_sent() -> None:
    """Once MessageAccepted reaches sender_reads, the sender's marker includes the message
    without a store write, and a later mark_read below it is no move."""
    modules, (alice, bob) = await with_users(2)
    channel, _ = await modules.social.open_direct(alice, bob)
    cid = channel.channel_id
    await modules.messaging.accept(alice, cid, "m1", "one")
    await modules.messaging.accept(alice, cid, "m2", "two")
    await modules.bus.deliver()

    assert await modules.social.read_marker(alice, cid) == 2
    assert await modules.channels.read_marker(cid, alice) == 0
    assert await modules.social.mark_read(alice, cid, 1) == 2
    assert modules.bus.of_type(ReadMarkerMoved) == []
    await modules.sender_reads.flush()
    assert await modules.channels.read_marker(cid, alice) == 2
    assert modules.bus.of_type(MessageAccepted)[0].message.sender_id == alice


async def test_mark_read_is_for_members_only() -> None:
    """A user outside the channel gets not_member and no marker."""
    modules, (alice, bob, carol) = await with_users(3)
    channel, _ = await modules.social.open_direct(alice, bob)
    with pytest.raises(Forbidden):
        await modules.social.mark_read(carol, channel.channel_id, 1)


async def test_another_processs_change_is_seen_after_channel_changed() -> None:
    """The membership cache keeps serving what it read until a ChannelChanged for the
    channel arrives, however the change was made (here: straight into the store)."""
    modules, (owner, newcomer) = await with_users(2)
    social = modules.social
    group = await social.create_group(owner, "g", [])
    cid = group.channel_id
    assert await social.require_member(owner, cid) == frozenset({owner})

    await modules.channels.add_member(cid, newcomer, joined_at=0)
    with pytest.raises(Forbidden):
        await social.require_member(newcomer, cid)

    await social.channel_changed(
        ChannelChanged(channel_id=cid, event="added", user_ids=(newcomer,))
    )
    assert await social.require_member(newcomer, cid) == frozenset({owner, newcomer})

    await modules.channels.remove_member(cid, newcomer)
    modules.bus.publish(ChannelChanged(channel_id=cid, event="removed", user_ids=(newcomer,)))
    assert await social.members(cid) == frozenset({owner, newcomer})
    await modules.bus.deliver()  # social.membership is subscribed as the server wires it
    assert await social.members(cid) == frozenset({owner})


async def test_a_channel_store_failure_reaches_the_caller_as_store_failed() -> None:
    """Social passes its store's error on (the edges turn it into store_unavailable)."""
    modules, (alice, bob) = await with_users(2)
    modules.channels.fail_next = True
    with pytest.raises(ChannelStoreError):
        await modules.social.open_direct(alice, bob)
    assert (await modules.social.open_direct(alice, bob))[1]
