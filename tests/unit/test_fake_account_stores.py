"""FakeUserStore, FakePushTargetStore and FakePasswordHasher behave as the real engines do."""

from __future__ import annotations

import pytest

from chatapp.accounts import UsernameTaken, UserStoreError
from chatapp.testing.fakes import FakePasswordHasher, FakePushTargetStore, FakeUserStore


async def user_with_device(store: FakeUserStore, name: str, token_hash: str) -> tuple[int, int]:
    user = await store.create_user(
        username=name, display_name=name.title(), password_hash="h", created_at=1
    )
    device = await store.create_device(
        user_id=user.user_id, name="phone", token_hash=token_hash, created_at=2
    )
    return user.user_id, device.device_id


async def test_usernames_are_unique_and_ids_count_from_one() -> None:
    """A second user with a taken name raises UsernameTaken; ids are 1, 2, …"""
    store = FakeUserStore()
    alice = await store.create_user(
        username="alice", display_name="Alice", password_hash="h", created_at=1
    )
    with pytest.raises(UsernameTaken):
        await store.create_user(username="alice", display_name="A", password_hash="h", created_at=1)
    bob = await store.create_user(
        username="bob", display_name="Bob", password_hash="h", created_at=1
    )

    assert (alice.user_id, bob.user_id) == (1, 2)
    assert await store.existing_user_ids([2, 3, 1]) == {1, 2}
    assert [u.username for u in await store.get_users([2, 9, 1, 2])] == ["bob", "alice"]
    credentials = await store.get_credentials("alice")
    assert credentials is not None
    assert credentials.password_hash == "h"


async def test_roles_default_to_member_and_change_only_the_role() -> None:
    """A user is created a member unless told otherwise; `set_role` changes the role alone
    and answers the user as it now is, None for an unknown id."""
    store = FakeUserStore()
    alice = await store.create_user(
        username="alice", display_name="Alice", password_hash="h", created_at=1
    )
    root = await store.create_user(
        username="root", display_name="Root", password_hash="h", created_at=1, role="admin"
    )
    assert (alice.role, root.role) == ("member", "admin")
    granted = await store.set_role(alice.user_id, "admin")
    assert granted == alice.model_copy(update={"role": "admin"})
    assert await store.get_user(alice.user_id) == granted
    assert await store.set_role(99, "admin") is None


async def test_find_users_puts_the_exact_name_first_then_by_name() -> None:
    """find_users matches a prefix, the exact match first, and stops at the limit."""
    store = FakeUserStore()
    for name in ("anna", "ann", "annabel", "bob"):
        await store.create_user(username=name, display_name=name, password_hash="h", created_at=1)
    assert [u.username for u in await store.find_users("ann", limit=10)] == [
        "ann",
        "anna",
        "annabel",
    ]
    assert [u.username for u in await store.find_users("anna", limit=1)] == ["anna"]


async def test_update_profile_changes_only_the_fields_given() -> None:
    """None leaves a field as it is; an unknown user gives None."""
    store = FakeUserStore()
    await store.create_user(username="alice", display_name="Alice", password_hash="h", created_at=1)
    updated = await store.update_profile(1, display_name=None, about="hello")
    assert updated is not None
    assert (updated.display_name, updated.about) == ("Alice", "hello")
    assert await store.update_profile(9, display_name="x", about=None) is None


async def test_receipt_sharing_is_on_by_default_and_changes_alone() -> None:
    """A new user shares; turning it off changes nothing else and leaves them out of
    `receipt_sharers`, which ignores unknown ids."""
    store = FakeUserStore()
    alice = await store.create_user(
        username="alice", display_name="Alice", password_hash="h", created_at=1
    )
    bob = await store.create_user(
        username="bob", display_name="Bob", password_hash="h", created_at=1
    )
    assert await store.receipt_sharers([alice.user_id, bob.user_id, 9]) == {
        alice.user_id,
        bob.user_id,
    }
    hidden = await store.update_profile(
        alice.user_id, display_name=None, about=None, share_read_receipts=False
    )
    assert hidden == alice.model_copy(update={"share_read_receipts": False})
    assert await store.receipt_sharers([alice.user_id, bob.user_id]) == {bob.user_id}


async def test_a_revoked_device_is_never_found_or_listed_again() -> None:
    """revoke_device is True once, for the owner only; its token stops working."""
    store = FakeUserStore()
    user_id, device_id = await user_with_device(store, "alice", "t1")
    other_id, _ = await user_with_device(store, "bob", "t2")

    assert not await store.revoke_device(other_id, device_id, revoked_at=3)
    assert await store.device_for_token("t1") is not None
    assert await store.revoke_device(user_id, device_id, revoked_at=3)
    assert not await store.revoke_device(user_id, device_id, revoked_at=4)
    assert await store.device_for_token("t1") is None
    assert await store.list_devices(user_id) == []
    assert not store.is_live_device(user_id, device_id)


async def test_a_device_needs_a_user_and_a_unique_token_hash() -> None:
    """As SQLite's constraints: no device for an unknown user, no reused token hash."""
    store = FakeUserStore()
    await user_with_device(store, "alice", "t1")
    with pytest.raises(UserStoreError):
        await store.create_device(user_id=9, name="x", token_hash="t9", created_at=1)
    with pytest.raises(UserStoreError):
        await store.create_device(user_id=1, name="x", token_hash="t1", created_at=1)


async def test_failing_user_store_raises_its_store_error() -> None:
    """fail_next raises UserStoreError once, and the store works again afterwards."""
    store = FakeUserStore()
    store.fail_next = True
    with pytest.raises(UserStoreError):
        await store.get_user(1)
    assert await store.get_user(1) is None


async def test_push_targets_only_for_live_devices_of_their_user() -> None:
    """set_target refuses another user's or a revoked device; targets_of skips revoked ones."""
    users = FakeUserStore()
    targets = FakePushTargetStore(users)
    alice, phone = await user_with_device(users, "alice", "t1")
    bob, laptop = await user_with_device(users, "bob", "t2")

    assert not await targets.set_target(
        user_id=bob, device_id=phone, provider="log", target={}, updated_at=1
    )
    assert await targets.set_target(
        user_id=alice, device_id=phone, provider="log", target={"a": 1}, updated_at=1
    )
    assert await targets.set_target(
        user_id=bob, device_id=laptop, provider="ntfy", target="topic", updated_at=1
    )
    assert [t.device_id for t in await targets.targets_of([alice, bob])] == [phone, laptop]

    # Revoked without removing the target: the SQLite store's join still hides it.
    await users.revoke_device(alice, phone, revoked_at=2)
    assert [t.device_id for t in await targets.targets_of([alice, bob])] == [laptop]
    assert not await targets.set_target(
        user_id=alice, device_id=phone, provider="log", target={}, updated_at=3
    )


async def test_fake_hasher_verifies_only_the_right_password_and_flags_old_versions() -> None:
    """verify is True for the password hashed, False otherwise or with no hash;
    raising `version` makes older hashes need a rehash."""
    hasher = FakePasswordHasher()
    stored = await hasher.hash("correct horse")

    assert stored == await hasher.hash("correct horse")
    assert await hasher.verify(stored, "correct horse")
    assert not await hasher.verify(stored, "wrong horse")
    assert not await hasher.verify(None, "correct horse")
    assert not await hasher.verify("$argon2id$something", "correct horse")
    assert not hasher.needs_rehash(stored)
    hasher.version = 2
    assert hasher.needs_rehash(stored)
    assert await hasher.verify(stored, "correct horse")
