"""Users, devices and push targets: one set of tests, run on SQLite and on PostgreSQL.

Passing on both engines is what shows the PostgreSQL stores keep the SQLite
stores' semantics; the races run on two nodes (on SQLite, one
server racing with itself).
"""

from __future__ import annotations

import asyncio

import pytest
from pydantic import JsonValue

from chatapp.accounts import UsernameTaken, UserStoreError
from chatapp.accounts.models import User
from chatapp.social import ChannelStoreError
from tests.integration.store_engines import Database, Node


async def make_user(node: Node, username: str, *, at: int = 1_000) -> User:
    return await node.users.create_user(
        username=username,
        display_name=username.title(),
        password_hash=f"hash-{username}",
        created_at=at,
    )


async def test_created_users_are_found_by_id_and_name(node: Node) -> None:
    """A new user gets an id, an empty about, and is found by id, by ids in order, and by name."""
    alice = await make_user(node, "alice")
    bob = await make_user(node, "bob", at=2_000)
    assert alice.user_id != bob.user_id
    assert alice.about == ""
    assert await node.users.get_user(alice.user_id) == alice
    assert await node.users.get_user(10**9) is None
    assert await node.users.existing_user_ids([alice.user_id, bob.user_id, 10**9]) == {
        alice.user_id,
        bob.user_id,
    }
    assert await node.users.existing_user_ids([]) == set()
    # Order as asked, duplicates and unknown ids left out.
    assert await node.users.get_users([bob.user_id, 10**9, alice.user_id, bob.user_id]) == [
        bob,
        alice,
    ]
    assert await node.users.get_users([]) == []
    credentials = await node.users.get_credentials("alice")
    assert credentials is not None
    assert (credentials.user, credentials.password_hash) == (alice, "hash-alice")
    assert await node.users.get_credentials("nobody") is None


async def test_a_taken_username_is_refused(node: Node) -> None:
    """A second user with the same name gets UsernameTaken, and the first is unchanged."""
    alice = await make_user(node, "alice")
    with pytest.raises(UsernameTaken):
        await make_user(node, "alice", at=5)
    assert await node.users.get_credentials("alice") is not None
    assert await node.users.get_user(alice.user_id) == alice


async def test_racing_creates_of_one_name_from_two_nodes_give_exactly_one_user(
    database: Database,
) -> None:
    """Twenty names, each created by two nodes at once: one User and one UsernameTaken each."""
    first, second = await database.racers()
    names = [f"racer{n}" for n in range(20)]
    outcomes = await asyncio.gather(
        *(make_user(node, name) for name in names for node in (first, second)),
        return_exceptions=True,
    )
    for name, pair in zip(names, zip(outcomes[::2], outcomes[1::2], strict=True), strict=True):
        users = [outcome for outcome in pair if isinstance(outcome, User)]
        taken = [outcome for outcome in pair if isinstance(outcome, UsernameTaken)]
        assert (len(users), len(taken)) == (1, 1), pair
        assert users[0].username == name
        assert await first.users.get_user(users[0].user_id) == users[0]


async def test_password_and_profile_changes(node: Node) -> None:
    """A new hash is stored; a profile update changes only the given fields; None for no user."""
    alice = await make_user(node, "alice")
    await node.users.set_password_hash(alice.user_id, "new-hash")
    credentials = await node.users.get_credentials("alice")
    assert credentials is not None
    assert credentials.password_hash == "new-hash"
    about = await node.users.update_profile(alice.user_id, display_name=None, about="hi ✓")
    assert about == alice.model_copy(update={"about": "hi ✓"})
    renamed = await node.users.update_profile(alice.user_id, display_name="Al", about=None)
    assert renamed == alice.model_copy(update={"about": "hi ✓", "display_name": "Al"})
    assert await node.users.get_user(alice.user_id) == renamed
    assert await node.users.update_profile(10**9, display_name="X", about=None) is None


async def test_read_receipts_are_shared_by_default_and_the_setting_changes_alone(
    database: Database,
) -> None:
    """A new user shares read receipts; `update_profile` turns it off and on again without
    touching the other fields, every read shows it (on another node too), and
    `receipt_sharers` answers the subset of the ids asked that share."""
    first, second = await database.racers()
    alice, bob = await make_user(first, "alice"), await make_user(first, "bob")
    assert (alice.share_read_receipts, bob.share_read_receipts) == (True, True)
    hidden = await first.users.update_profile(
        alice.user_id, display_name=None, about=None, share_read_receipts=False
    )
    assert hidden == alice.model_copy(update={"share_read_receipts": False})
    assert await second.users.get_user(alice.user_id) == hidden
    renamed = await first.users.update_profile(alice.user_id, display_name="Al", about=None)
    assert renamed == hidden.model_copy(update={"display_name": "Al"})
    ids = [alice.user_id, bob.user_id, 10**9]
    assert await second.users.receipt_sharers(ids) == {bob.user_id}
    assert await second.users.receipt_sharers([]) == set()
    await second.users.update_profile(
        alice.user_id, display_name=None, about=None, share_read_receipts=True
    )
    assert await first.users.receipt_sharers(ids) == {alice.user_id, bob.user_id}


async def test_roles_are_member_by_default_set_alone_and_read_everywhere(
    database: Database,
) -> None:
    """A new user is a member unless created an admin; `set_role` changes only the role,
    answers the user as it now is (None for no user), and every read shows it, on another
    node too."""
    first, second = await database.racers()
    alice = await make_user(first, "alice")
    root = await first.users.create_user(
        username="root", display_name="Root", password_hash="h", created_at=1, role="admin"
    )
    assert (alice.role, root.role) == ("member", "admin")
    granted = await first.users.set_role(alice.user_id, "admin")
    assert granted == alice.model_copy(update={"role": "admin"})
    assert await second.users.get_user(alice.user_id) == granted
    assert await second.users.get_users([alice.user_id, root.user_id]) == [granted, root]
    credentials = await second.users.get_credentials("alice")
    assert credentials is not None
    assert credentials.user == granted
    assert await second.users.find_users("alice", limit=5) == [granted]
    assert await first.users.set_role(alice.user_id, "member") == alice
    assert await first.users.set_role(10**9, "admin") is None


async def test_search_by_prefix_puts_the_exact_name_first_then_byte_order(node: Node) -> None:
    """`_` matches only itself, the exact name comes first, the rest in byte order, up to limit."""
    for name in ("alx", "alice", "al_x", "al.b", "al", "bob", "xal"):
        await make_user(node, name)

    async def names(prefix: str, limit: int = 10) -> list[str]:
        return [user.username for user in await node.users.find_users(prefix, limit=limit)]

    assert await names("al") == ["al", "al.b", "al_x", "alice", "alx"]
    assert await names("al_") == ["al_x"]
    assert await names("al", limit=2) == ["al", "al.b"]
    assert await names("ali") == ["alice"]
    assert await names("%") == []


async def test_devices_are_found_by_token_listed_oldest_first_and_touched(node: Node) -> None:
    """A device is found by its token hash and listed with the user's others; touch records use."""
    alice = await make_user(node, "alice")
    phone = await node.users.create_device(
        user_id=alice.user_id, name="phone", token_hash="t1", created_at=10
    )
    laptop = await node.users.create_device(
        user_id=alice.user_id, name="laptop", token_hash="t2", created_at=20
    )
    assert (phone.user_id, phone.name, phone.created_at, phone.last_seen_at) == (
        alice.user_id,
        "phone",
        10,
        10,
    )
    assert await node.users.device_for_token("t2") == laptop
    assert await node.users.device_for_token("nope") is None
    assert await node.users.list_devices(alice.user_id) == [phone, laptop]
    await node.users.touch_device(phone.device_id, seen_at=99)
    assert await node.users.device_for_token("t1") == phone.model_copy(update={"last_seen_at": 99})


async def test_a_revoked_device_is_gone_and_revokes_once(node: Node) -> None:
    """Revoking answers True once; the device is then neither found by token nor listed."""
    alice, bob = await make_user(node, "alice"), await make_user(node, "bob")
    phone = await node.users.create_device(
        user_id=alice.user_id, name="phone", token_hash="t1", created_at=10
    )
    assert not await node.users.revoke_device(bob.user_id, phone.device_id, revoked_at=11)
    assert await node.users.revoke_device(alice.user_id, phone.device_id, revoked_at=12)
    assert not await node.users.revoke_device(alice.user_id, phone.device_id, revoked_at=13)
    assert await node.users.device_for_token("t1") is None
    assert await node.users.list_devices(alice.user_id) == []


async def test_a_duplicate_token_or_a_missing_user_fails_as_a_store_error(node: Node) -> None:
    """The token's uniqueness and the device's user are enforced: UserStoreError, nothing stored."""
    alice = await make_user(node, "alice")
    await node.users.create_device(user_id=alice.user_id, name="a", token_hash="t", created_at=1)
    with pytest.raises(UserStoreError):
        await node.users.create_device(
            user_id=alice.user_id, name="b", token_hash="t", created_at=2
        )
    with pytest.raises(UserStoreError):
        await node.users.create_device(user_id=10**9, name="c", token_hash="u", created_at=3)
    assert [device.name for device in await node.users.list_devices(alice.user_id)] == ["a"]


async def test_push_targets_exist_only_for_live_devices(node: Node) -> None:
    """A target is set (or replaced) only for a live device of its user; a revoked one is silent."""
    alice, bob = await make_user(node, "alice"), await make_user(node, "bob")
    phone = await node.users.create_device(
        user_id=alice.user_id, name="phone", token_hash="t1", created_at=1
    )
    laptop = await node.users.create_device(
        user_id=alice.user_id, name="laptop", token_hash="t2", created_at=2
    )
    subscription: JsonValue = {
        "endpoint": "https://push.example/ü",
        "keys": {"p256dh": "k", "n": [1, 2.5]},
    }
    assert await node.push_targets.set_target(
        user_id=alice.user_id,
        device_id=phone.device_id,
        provider="webpush",
        target=subscription,
        updated_at=3,
    )
    assert not await node.push_targets.set_target(
        user_id=bob.user_id,
        device_id=laptop.device_id,
        provider="log",
        target=None,
        updated_at=3,
    )
    assert await node.push_targets.set_target(
        user_id=alice.user_id,
        device_id=laptop.device_id,
        provider="ntfy",
        target="https://ntfy.example/a",
        updated_at=4,
    )
    assert await node.push_targets.set_target(
        user_id=alice.user_id,
        device_id=laptop.device_id,
        provider="log",
        target=None,
        updated_at=5,
    )
    served = await node.push_targets.targets_of([alice.user_id, bob.user_id])
    assert [(t.device_id, t.provider, t.target) for t in served] == [
        (phone.device_id, "webpush", subscription),
        (laptop.device_id, "log", None),
    ]
    # Revoked with its target left behind: never served, and never set again.
    await node.users.revoke_device(alice.user_id, phone.device_id, revoked_at=6)
    assert [t.device_id for t in await node.push_targets.targets_of([alice.user_id])] == [
        laptop.device_id
    ]
    assert not await node.push_targets.set_target(
        user_id=alice.user_id, device_id=phone.device_id, provider="log", target=1, updated_at=7
    )
    await node.push_targets.remove_target(laptop.device_id)
    await node.push_targets.remove_target(laptop.device_id)
    assert await node.push_targets.targets_of([alice.user_id]) == []
    assert await node.push_targets.targets_of([]) == []


async def test_a_closed_node_fails_with_each_modules_store_error(database: Database) -> None:
    """Once its connections are closed, every store raises its module's StoreFailed subclass."""
    node = await database.node()
    await node.close()
    with pytest.raises(UserStoreError):
        await node.users.get_user(1)
    with pytest.raises(UserStoreError):
        await node.users.create_user(
            username="alice", display_name="A", password_hash="h", created_at=1
        )
    with pytest.raises(UserStoreError):
        await node.push_targets.targets_of([1])
    with pytest.raises(ChannelStoreError):
        await node.channels.get_channel(1)
    with pytest.raises(ChannelStoreError):
        await node.friends.request(1, 2, at=1)


async def test_a_write_amid_other_calls_reads_and_the_other_modules_commits_succeeds(
    node: Node,
) -> None:
    """Logins, device lists and read markers at once, as under a login storm: every call
    succeeds. On SQLite a read left open across an await once made the write after it fail
    at once with "database is locked", when social's connection had committed meanwhile."""
    alice = await make_user(node, "alice")
    channel = await node.channels.create_channel(
        kind="group",
        name="team",
        owner_id=alice.user_id,
        member_ids=[alice.user_id],
        created_at=100,
    )
    assert channel is not None
    for index in range(100):  # more devices than one fetch of a cursor brings
        await node.users.create_device(
            user_id=alice.user_id, name=f"d{index}", token_hash=f"t{index}", created_at=1
        )

    async def list_devices() -> None:
        for _ in range(20):
            assert len(await node.users.list_devices(alice.user_id)) >= 100

    async def log_in() -> None:
        for index in range(20):
            await node.users.create_device(
                user_id=alice.user_id, name="new", token_hash=f"n{index}", created_at=2
            )

    async def read_along() -> None:
        for message_id in range(1, 21):
            await node.channels.advance_read_marker(channel.channel_id, alice.user_id, message_id)

    await asyncio.gather(list_devices(), list_devices(), log_in(), read_along())
    assert len(await node.users.list_devices(alice.user_id)) == 120
