"""Read receipts on fakes: who sees whose marker, and who is told when one moves."""

from __future__ import annotations

import pytest

from chatapp.errors import Forbidden, NotFound
from chatapp.social import Receipt, ReceiptShared
from chatapp.testing.fakes import ModulesOnFakes, build_modules_on_fakes


async def group_of(count: int) -> tuple[ModulesOnFakes, list[int], int]:
    """Modules, `count` users made straight in the user store, and a group of them all
    (owned by the first)."""
    modules = build_modules_on_fakes()
    ids = []
    for n in range(1, count + 1):
        user = await modules.users.create_user(
            username=f"user{n}", display_name=f"User {n}", password_hash="h", created_at=0
        )
        ids.append(user.user_id)
    group = await modules.social.create_group(ids[0], "g", ids[1:])
    return modules, ids, group.channel_id


async def stop_sharing(modules: ModulesOnFakes, user_id: int) -> None:
    await modules.users.update_profile(
        user_id, display_name=None, about=None, share_read_receipts=False
    )


def shared(modules: ModulesOnFakes) -> list[ReceiptShared]:
    return modules.bus.of_type(ReceiptShared)


async def test_every_sharing_member_is_listed_with_zero_for_nothing_read() -> None:
    """Everyone shares by default: the list has every member by user id, the caller
    included, with the marker as stored, 0 for a member who has read nothing."""
    modules, (alice, bob, carol), cid = await group_of(3)
    await modules.social.mark_read(bob, cid, 4)

    assert await modules.social.receipts(alice, cid) == [
        Receipt(user_id=alice, read_message_id=0),
        Receipt(user_id=bob, read_message_id=4),
        Receipt(user_id=carol, read_message_id=0),
    ]


async def test_a_member_who_does_not_share_is_left_out_and_sees_only_themself() -> None:
    """A non-sharer is missing from the others' lists, and their own list is only their entry."""
    modules, (alice, bob, carol), cid = await group_of(3)
    await modules.social.mark_read(carol, cid, 2)
    await stop_sharing(modules, carol)

    assert [r.user_id for r in await modules.social.receipts(alice, cid)] == [alice, bob]
    assert await modules.social.receipts(carol, cid) == [Receipt(user_id=carol, read_message_id=2)]


async def test_a_senders_own_messages_count_as_read_in_the_list() -> None:
    """The sender's marker follows what they sent before it is written: the list shows it."""
    modules, (alice, bob), cid = await group_of(2)
    await modules.messaging.accept(alice, cid, "m1", "one")
    await modules.bus.deliver()

    receipts = await modules.social.receipts(bob, cid)
    assert receipts == [
        Receipt(user_id=alice, read_message_id=1),
        Receipt(user_id=bob, read_message_id=0),
    ]


async def test_the_list_is_for_members_only() -> None:
    """An outsider gets not_member; a channel that does not exist is not found."""
    modules, (alice, _bob), cid = await group_of(2)
    outsider = await modules.users.create_user(
        username="outsider", display_name="O", password_hash="h", created_at=0
    )
    with pytest.raises(Forbidden):
        await modules.social.receipts(outsider.user_id, cid)
    with pytest.raises(NotFound):
        await modules.social.receipts(alice, 999)


async def test_a_moved_marker_is_shared_with_the_other_sharing_members() -> None:
    """A sharer's move names the other members who share as viewers (not the reader, not a
    non-sharer); a move that is no move shares nothing."""
    modules, (alice, bob, carol), cid = await group_of(3)
    await stop_sharing(modules, carol)

    await modules.social.mark_read(bob, cid, 3)
    await modules.social.mark_read(bob, cid, 2)

    assert shared(modules) == [
        ReceiptShared(channel_id=cid, user_id=bob, message_id=3, viewer_ids=(alice,))
    ]


async def test_a_reader_who_does_not_share_shares_nothing() -> None:
    """A non-sharer's marker still moves (and is announced to their own devices) but no
    receipt is shared; nor is one when no other member shares."""
    modules, (alice, bob), cid = await group_of(2)
    await stop_sharing(modules, bob)

    assert await modules.social.mark_read(bob, cid, 3) == 3
    assert await modules.social.mark_read(alice, cid, 3) == 3
    assert shared(modules) == []


async def test_a_user_store_that_fails_costs_the_receipt_not_the_read() -> None:
    """When the sharing setting cannot be read, the marker moves and nothing is shared."""
    modules, (_alice, bob), cid = await group_of(2)
    modules.users.fail_only = {"receipt_sharers"}
    modules.users.fail_next = True

    assert await modules.social.mark_read(bob, cid, 3) == 3
    assert await modules.social.read_marker(bob, cid) == 3
    assert shared(modules) == []
