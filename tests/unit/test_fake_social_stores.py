"""FakeChannelStore and FakeFriendStore behave as the SQLite stores do."""

from __future__ import annotations

import pytest

from chatapp.social import ChannelStoreError
from chatapp.testing.fakes import FakeChannelStore, FakeFriendStore


async def test_a_direct_key_names_one_channel_only() -> None:
    """A second create with the same direct_key returns None; direct_channel finds the first."""
    store = FakeChannelStore()
    first = await store.create_channel(
        kind="direct", name="", owner_id=None, member_ids=[2, 1], created_at=5, direct_key="1:2"
    )
    again = await store.create_channel(
        kind="direct", name="", owner_id=None, member_ids=[1, 2], created_at=6, direct_key="1:2"
    )
    assert first is not None
    assert first.members == (1, 2)
    assert again is None
    assert await store.direct_channel("1:2") == first
    assert await store.direct_channel("1:3") is None


async def test_members_and_read_markers() -> None:
    """Members are sorted; markers start at 0, move forward only, and exist only for members."""
    store = FakeChannelStore()
    group = await store.create_channel(
        kind="group", name="g", owner_id=3, member_ids=[3, 1, 3], created_at=1
    )
    assert group is not None
    cid = group.channel_id
    assert await store.add_member(cid, 2, joined_at=2)
    assert not await store.add_member(cid, 2, joined_at=3)
    channel = await store.get_channel(cid)
    assert channel is not None
    assert channel.members == (1, 2, 3)

    assert await store.read_marker(cid, 1) == 0
    assert await store.advance_read_marker(cid, 1, 5) == 5
    assert await store.advance_read_marker(cid, 1, 3) == 5
    assert await store.advance_read_marker(cid, 9, 3) is None
    await store.advance_read_markers([(cid, 1, 4), (cid, 2, 7), (cid, 9, 1)])
    assert [await store.read_marker(cid, u) for u in (1, 2, 3, 9)] == [5, 7, 0, None]
    assert [m.read_message_id for m in await store.memberships(2)] == [7]
    assert await store.read_markers(cid) == {1: 5, 2: 7, 3: 0}
    assert await store.read_markers(99) == {}

    assert await store.remove_member(cid, 2)
    assert not await store.remove_member(cid, 2)
    assert await store.memberships(2) == []


async def test_adding_to_a_missing_channel_fails_like_a_foreign_key() -> None:
    """add_member on an unknown channel raises ChannelStoreError."""
    with pytest.raises(ChannelStoreError):
        await FakeChannelStore().add_member(1, 1, joined_at=1)


async def test_a_failed_batch_of_markers_moves_none() -> None:
    """advance_read_markers told to fail raises and leaves every marker where it was."""
    store = FakeChannelStore()
    await store.create_channel(kind="group", name="g", owner_id=1, member_ids=[1], created_at=1)
    store.fail_next = True
    with pytest.raises(ChannelStoreError):
        await store.advance_read_markers([(1, 1, 4)])
    assert await store.read_marker(1, 1) == 0


async def test_a_request_from_the_other_side_accepts() -> None:
    """The first request is pending; a repeat changes nothing; the other side's accepts."""
    store = FakeFriendStore()
    asked = await store.request(5, 2, at=1)
    assert (asked.user_low, asked.user_high, asked.requested_by, asked.status) == (
        2,
        5,
        5,
        "pending",
    )
    assert await store.request(5, 2, at=2) == asked
    accepted = await store.request(2, 5, at=3)
    assert (accepted.requested_by, accepted.status) == (5, "accepted")
    assert await store.get(2, 5) == accepted
    assert await store.request(5, 2, at=4) == accepted


async def test_friendships_are_listed_oldest_first_and_removed_once() -> None:
    """of_user lists every pair of the user by request time; remove is True once."""
    store = FakeFriendStore()
    await store.request(1, 3, at=20)
    await store.request(2, 1, at=10)
    await store.request(4, 5, at=5)
    assert [f.other(1) for f in await store.of_user(1)] == [2, 3]
    assert await store.remove(3, 1)
    assert not await store.remove(1, 3)
    assert [f.other(1) for f in await store.of_user(1)] == [2]


async def test_nobody_befriends_themself_in_the_store() -> None:
    """A pair of one user breaks the table's CHECK: ChannelStoreError."""
    with pytest.raises(ChannelStoreError):
        await FakeFriendStore().request(1, 1, at=1)
