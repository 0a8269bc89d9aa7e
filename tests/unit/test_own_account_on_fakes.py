"""A new password and an account's deletion, on fakes: what is revoked, announced and kept."""

from __future__ import annotations

import pytest

from chatapp.accounts import Caller, DeviceRevoked
from chatapp.errors import Conflict, InvalidInput, Unauthorized
from chatapp.messaging import MessageUpdated
from chatapp.own_account import AccountDeletion
from chatapp.social import FriendshipChanged
from chatapp.testing.fakes import FAKE_PASSWORD, build_modules_on_fakes


async def test_a_new_password_revokes_every_other_device_and_announces_each() -> None:
    """change_password hashes the new password, revokes the other two devices (one
    DeviceRevoked each) and not the caller's; a wrong current password or a weak new one
    changes nothing and hashes nothing new."""
    modules = build_modules_on_fakes()
    first = await modules.sign_up("alice")
    others = [await modules.accounts.login("alice", FAKE_PASSWORD) for _ in range(2)]
    caller = Caller(user_id=first.user.user_id, device_id=first.device.device_id)
    hashed = modules.hasher.hashed
    with pytest.raises(Unauthorized):
        await modules.accounts.change_password(caller, "wrong", "a new password")
    with pytest.raises(InvalidInput):
        await modules.accounts.change_password(caller, FAKE_PASSWORD, "short")
    assert modules.hasher.hashed == hashed
    assert modules.bus.of_type(DeviceRevoked) == []

    await modules.accounts.change_password(caller, FAKE_PASSWORD, "a new password")
    assert modules.bus.of_type(DeviceRevoked) == [
        DeviceRevoked(user_id=caller.user_id, device_id=o.device.device_id) for o in others
    ]
    assert await modules.accounts.authenticate(first.token) == caller
    with pytest.raises(Unauthorized):
        await modules.accounts.login("alice", FAKE_PASSWORD)
    await modules.accounts.login("alice", "a new password")


async def test_a_deleted_account_logs_in_as_an_unknown_name_and_stays_deleted() -> None:
    """After mark_deleted, the right password is Unauthorized(invalid_credentials) after
    the same password check as an unknown name; reactivation, a reset and a role change are
    Conflict(account_deleted)."""
    modules = build_modules_on_fakes()
    alice = await modules.sign_up("alice")
    assert await modules.accounts.mark_deleted(alice.user.user_id)
    assert not await modules.accounts.mark_deleted(alice.user.user_id)
    verified = modules.hasher.verified
    with pytest.raises(Unauthorized) as refused:
        await modules.accounts.login("alice", FAKE_PASSWORD)
    assert refused.value.code == "invalid_credentials"
    assert modules.hasher.verified == verified + 1
    for attempt in (
        modules.accounts.reactivate(alice.user.user_id),
        modules.accounts.set_password("alice", "another password"),
        modules.accounts.set_role("alice", "admin"),
    ):
        with pytest.raises(Conflict) as conflict:
            await attempt
        assert conflict.value.code == "account_deleted"
    shown = await modules.accounts.get_user(alice.user.user_id)
    assert (shown.display_name, shown.about, shown.username) == ("Deleted user", "", "alice")


async def test_deletion_erases_only_the_users_own_messages_and_ends_every_tie() -> None:
    """AccountDeletion with erase_messages deletes each of the user's messages once (one
    MessageUpdated each, deleted by the user), leaves the others' alone, leaves the group,
    ends the friendship and the pending request, and revokes every device, the caller's
    last."""
    modules = build_modules_on_fakes()
    alice, bob, carol = [await modules.sign_up(name) for name in ("alice", "bob", "carol")]
    a, b, c = alice.user.user_id, bob.user.user_id, carol.user.user_id
    laptop = await modules.accounts.login("alice", FAKE_PASSWORD)
    await modules.friends.request(a, b)
    await modules.friends.request(b, a)
    await modules.friends.request(c, a)
    group = await modules.social.create_group(b, "group", [a, c])
    mine = [await modules.messaging.accept(a, group.channel_id, f"m{n}", "hi") for n in range(3)]
    theirs = await modules.messaging.accept(b, group.channel_id, "b1", "hello")
    deletion = AccountDeletion(modules.accounts, modules.social, modules.friends, modules.messaging)
    caller = Caller(user_id=a, device_id=alice.device.device_id)
    with pytest.raises(Unauthorized):
        await deletion.delete(caller, "wrong", erase_messages=True)
    friendship_events = len(modules.bus.of_type(FriendshipChanged))
    await deletion.delete(caller, FAKE_PASSWORD, erase_messages=True)

    updates = modules.bus.of_type(MessageUpdated)
    assert sorted(u.message.message_id for u in updates) == [m.message.message_id for m in mine]
    assert all(u.deleted_by == a and u.update == "deleted" for u in updates)
    kept = await modules.messaging.message(group.channel_id, theirs.message.message_id)
    assert kept is not None
    assert not kept.deleted
    assert a not in (await modules.social.members(group.channel_id) or ())
    assert await modules.friends.friends_of(a) == frozenset()
    assert await modules.friends.requests_of(c) == ([], [])
    # The friendship with bob and carol's request: each ended once.
    assert len(modules.bus.of_type(FriendshipChanged)) - friendship_events == 2
    revoked = [event.device_id for event in modules.bus.of_type(DeviceRevoked)]
    assert sorted(revoked) == sorted([laptop.device.device_id, alice.device.device_id])


async def test_unfinished_deletions_are_finished_and_one_failing_keeps_no_other_back() -> None:
    """Two deletions left at their mark: the first fails on its way (its devices could not
    be listed) and stays unfinished, the second is finished; the next look finishes the
    first. A finished one is not done again."""
    modules = build_modules_on_fakes()
    alice, bob, carol = [await modules.sign_up(name) for name in ("alice", "bob", "carol")]
    a, b, c = alice.user.user_id, bob.user.user_id, carol.user.user_id
    group = await modules.social.create_group(c, "group", [a, b])
    deletion = AccountDeletion(modules.accounts, modules.social, modules.friends, modules.messaging)
    for user_id in (a, b):
        assert await modules.accounts.mark_deleted(user_id)
    modules.users.fail_only = {"list_devices"}
    modules.users.fail_next = True
    assert await deletion.finish_unfinished() == 1
    assert await modules.accounts.unfinished_deletions() == [(a, False)]
    assert await modules.social.members(group.channel_id) == frozenset({a, c})
    assert await deletion.finish_unfinished() == 1
    assert await modules.accounts.unfinished_deletions() == []
    assert await modules.social.members(group.channel_id) == frozenset({c})
    assert await deletion.finish_unfinished() == 0


async def test_a_second_deletion_asking_to_erase_makes_the_first_erase_too() -> None:
    """Two deletion requests at once, the first keeping the messages and the second erasing
    them: the mark says erase, and the first run's end does not clear it, so a stop before
    the second finishes leaves the erase to the next start."""
    modules = build_modules_on_fakes()
    alice = await modules.sign_up("alice")
    a = alice.user.user_id
    assert await modules.accounts.mark_deleted(a)
    assert not await modules.accounts.mark_deleted(a, erase_messages=True)
    await modules.accounts.deletion_finished(a, erase_messages=False)
    assert await modules.accounts.unfinished_deletions() == [(a, True)]
    await modules.accounts.deletion_finished(a, erase_messages=True)
    assert await modules.accounts.unfinished_deletions() == []
