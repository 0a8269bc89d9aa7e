"""Friends on fakes: requests, accepting by asking back, removal, and the cached friend lists."""

from __future__ import annotations

import pytest

from chatapp.errors import BadRequest, NotFound
from chatapp.social import ChannelStoreError, FriendshipChanged
from chatapp.testing.fakes import ModulesOnFakes, build_modules_on_fakes


async def three_users() -> tuple[ModulesOnFakes, int, int, int]:
    modules = build_modules_on_fakes()
    ids = []
    for name in ("alice", "bob", "carol"):
        user = await modules.users.create_user(
            username=name, display_name=name, password_hash="h", created_at=0
        )
        ids.append(user.user_id)
    alice, bob, carol = ids
    return modules, alice, bob, carol


def statuses(modules: ModulesOnFakes) -> list[tuple[tuple[int, int], str, int]]:
    return [(e.user_ids, e.status, e.requested_by) for e in modules.bus.of_type(FriendshipChanged)]


async def test_asking_back_accepts_and_each_change_is_announced_once() -> None:
    """A request is pending; asking again changes nothing; the other side asking accepts.
    FriendshipChanged is published for the two changes only."""
    modules, alice, bob, _ = await three_users()
    friends = modules.friends
    assert await friends.request(bob, alice) == "pending"
    assert await friends.request(bob, alice) == "pending"
    assert await friends.request(alice, bob) == "accepted"
    assert await friends.request(alice, bob) == "accepted"

    assert statuses(modules) == [((alice, bob), "pending", bob), ((alice, bob), "accepted", bob)]
    assert await friends.are_friends(alice, bob)
    assert await friends.are_friends(bob, alice)


async def test_pending_requests_are_not_friends_and_are_listed_by_direction() -> None:
    """requests_of gives (incoming, outgoing), oldest first; friends_of only accepted ones."""
    modules, alice, bob, carol = await three_users()
    friends = modules.friends
    await friends.request(bob, alice)
    modules.clock.advance(1)
    await friends.request(alice, carol)

    assert await friends.requests_of(alice) == ([bob], [carol])
    assert await friends.requests_of(carol) == ([alice], [])
    assert await friends.friends_of(alice) == frozenset()


async def test_nobody_befriends_themself_or_a_stranger_who_does_not_exist() -> None:
    """Yourself is bad_request; an unknown user is not_found; neither reaches the store."""
    modules, alice, _, _ = await three_users()
    with pytest.raises(BadRequest):
        await modules.friends.request(alice, alice)
    with pytest.raises(NotFound):
        await modules.friends.request(alice, 99)
    assert await modules.friend_store.of_user(alice) == []


async def test_removing_ends_a_friendship_or_a_request_and_refreshes_the_cache() -> None:
    """remove drops an accepted friendship (friends_of forgets it at once) or declines a
    request; removing what is not there is not_found."""
    modules, alice, bob, carol = await three_users()
    friends = modules.friends
    await friends.request(alice, bob)
    await friends.request(bob, alice)
    await friends.request(carol, alice)
    assert await friends.friends_of(alice) == frozenset({bob})

    await friends.remove(bob, alice)
    await friends.remove(alice, carol)

    assert await friends.friends_of(alice) == frozenset()
    assert await friends.friends_of(bob) == frozenset()
    assert await friends.requests_of(alice) == ([], [])
    assert statuses(modules)[-2:] == [
        ((alice, bob), "removed", bob),
        ((alice, carol), "removed", alice),
    ]
    with pytest.raises(NotFound):
        await friends.remove(alice, bob)


async def test_accepting_refreshes_both_cached_friend_lists() -> None:
    """friends_of read before the acceptance is not served stale afterwards, for either side."""
    modules, alice, bob, _ = await three_users()
    friends = modules.friends
    await friends.request(alice, bob)
    assert await friends.friends_of(alice) == frozenset()
    assert await friends.friends_of(bob) == frozenset()
    await friends.request(bob, alice)
    assert await friends.friends_of(alice) == frozenset({bob})
    assert await friends.friends_of(bob) == frozenset({alice})


async def test_a_friend_store_failure_changes_nothing_and_announces_nothing() -> None:
    """The store's error reaches the caller; no FriendshipChanged is published."""
    modules, alice, bob, _ = await three_users()
    modules.friend_store.fail_only = {"request"}
    modules.friend_store.fail_next = True
    with pytest.raises(ChannelStoreError):
        await modules.friends.request(alice, bob)
    assert statuses(modules) == []
    assert await modules.friends.request(alice, bob) == "pending"
