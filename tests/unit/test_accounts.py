"""Accounts on fakes: sign-up, login and its limits, tokens, password resets, roles, push
targets."""

from __future__ import annotations

import pytest

from chatapp.accounts import Caller, DeviceRevoked
from chatapp.config import Settings
from chatapp.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    RateLimited,
    Unauthorized,
)
from chatapp.testing.fakes import FAKE_PASSWORD, build_modules_on_fakes


async def test_signup_lowercases_the_name_and_shows_it_by_default() -> None:
    """'Alice' is stored as 'alice', displayed as 'alice' unless a display name is given."""
    modules = build_modules_on_fakes()
    alice = await modules.accounts.signup("Alice", FAKE_PASSWORD)
    bob = await modules.accounts.signup("BOB", FAKE_PASSWORD, "  Bob B.  ")
    assert (alice.username, alice.display_name) == ("alice", "alice")
    assert (bob.username, bob.display_name) == ("bob", "Bob B.")
    assert alice.created_at == modules.clock.now_ms()


@pytest.mark.parametrize(
    ("username", "password", "code"),
    [
        ("al", FAKE_PASSWORD, "invalid_username"),
        ("alice smith", FAKE_PASSWORD, "invalid_username"),
        ("alice", "short", "weak_password"),
    ],
)
async def test_signup_refuses_bad_names_and_weak_passwords(
    username: str, password: str, code: str
) -> None:
    """Names outside [a-z0-9_.-]{3,32} and passwords under 8 characters are refused."""
    modules = build_modules_on_fakes()
    with pytest.raises(InvalidInput) as refused:
        await modules.accounts.signup(username, password)
    assert refused.value.code == code
    assert modules.hasher.hashed == 0


async def test_a_name_taken_in_any_case_is_a_conflict() -> None:
    """Signing up 'ALICE' after 'alice' is Conflict(username_taken)."""
    modules = build_modules_on_fakes()
    await modules.accounts.signup("alice", FAKE_PASSWORD)
    with pytest.raises(Conflict) as taken:
        await modules.accounts.signup("ALICE", FAKE_PASSWORD)
    assert taken.value.code == "username_taken"


async def test_login_gives_a_token_that_authenticates_its_device() -> None:
    """login (any case of the name) creates a device; its token authenticates as it."""
    modules = build_modules_on_fakes()
    await modules.accounts.signup("alice", FAKE_PASSWORD)
    result = await modules.accounts.login("Alice", FAKE_PASSWORD, "  laptop ")
    caller = await modules.accounts.authenticate(result.token)
    assert caller == Caller(user_id=result.user.user_id, device_id=result.device.device_id)
    assert result.device.name == "laptop"


async def test_a_wrong_password_or_unknown_name_is_unauthorized_alike() -> None:
    """Both answer Unauthorized(invalid_credentials), with the same message."""
    modules = build_modules_on_fakes()
    await modules.accounts.signup("alice", FAKE_PASSWORD)
    with pytest.raises(Unauthorized) as wrong:
        await modules.accounts.login("alice", "not the password")
    with pytest.raises(Unauthorized) as unknown:
        await modules.accounts.login("nobody", FAKE_PASSWORD)
    assert (wrong.value.code, unknown.value.code) == ("invalid_credentials", "invalid_credentials")
    assert wrong.value.message == unknown.value.message


async def test_an_unknown_name_costs_a_password_check_like_a_wrong_password() -> None:
    """login verifies a password (against no hash) for an unknown name too, so that both
    refusals take the same time, as PasswordHashing.verify(None, ...) is there for."""
    modules = build_modules_on_fakes()
    await modules.accounts.signup("alice", FAKE_PASSWORD)
    with pytest.raises(Unauthorized):
        await modules.accounts.login("alice", "not the password")
    with pytest.raises(Unauthorized):
        await modules.accounts.login("nobody", FAKE_PASSWORD)
    assert modules.hasher.verified == 2


async def test_failed_logins_are_limited_per_username_and_address() -> None:
    """After the limit of failures for one name from one address even the right password
    waits there; the owner at another address and other names do not, and the window
    refills the bucket (tests/unit/test_login_limits.py has the whole scheme)."""
    modules = build_modules_on_fakes(
        Settings(login_attempts_per_username=3, rate_limit_window_seconds=60)
    )
    accounts = modules.accounts
    await accounts.signup("alice", FAKE_PASSWORD)
    await accounts.signup("bob", FAKE_PASSWORD, address="elsewhere")
    for _ in range(3):
        with pytest.raises(Unauthorized):
            await accounts.login("alice", "wrong password", address="10.0.0.1")
    with pytest.raises(RateLimited) as limited:
        await accounts.login("alice", FAKE_PASSWORD, address="10.0.0.1")

    assert limited.value.retry_after == pytest.approx(20)
    await accounts.login("alice", FAKE_PASSWORD, address="10.0.0.9")
    await accounts.login("bob", FAKE_PASSWORD, address="10.0.0.1")
    modules.clock.advance(20)
    await accounts.login("alice", FAKE_PASSWORD, address="10.0.0.1")


async def test_login_attempts_and_signups_are_limited_per_address() -> None:
    """One address gets its limit of logins (any names) and of sign-ups; another is free."""
    modules = build_modules_on_fakes(Settings(login_attempts_per_address=2, signups_per_address=2))
    accounts = modules.accounts
    await accounts.signup("alice", FAKE_PASSWORD, address="a")
    await accounts.signup("bob", FAKE_PASSWORD, address="a")
    with pytest.raises(RateLimited):
        await accounts.signup("carol", FAKE_PASSWORD, address="a")
    await accounts.signup("carol", FAKE_PASSWORD, address="b")

    await accounts.login("alice", FAKE_PASSWORD, address="a")
    with pytest.raises(Unauthorized):
        await accounts.login("nobody", FAKE_PASSWORD, address="a")
    with pytest.raises(RateLimited):
        await accounts.login("bob", FAKE_PASSWORD, address="a")
    await accounts.login("bob", FAKE_PASSWORD, address="b")


@pytest.mark.parametrize("token", [None, "", "not-a-token"])
async def test_a_missing_or_unknown_token_is_unauthorized(token: str | None) -> None:
    """authenticate refuses no token, an empty one and one nobody was given."""
    modules = build_modules_on_fakes()
    with pytest.raises(Unauthorized) as refused:
        await modules.accounts.authenticate(token)
    assert refused.value.code == "unauthorized"


async def test_a_logged_out_token_stops_working_and_the_device_is_announced() -> None:
    """logout revokes the device: its token is refused, DeviceRevoked is published once,
    and revoking it again is NotFound."""
    modules = build_modules_on_fakes()
    login = await modules.sign_up("alice")
    caller = await modules.accounts.authenticate(login.token)
    await modules.accounts.logout(caller)

    with pytest.raises(Unauthorized):
        await modules.accounts.authenticate(login.token)
    assert modules.bus.of_type(DeviceRevoked) == [
        DeviceRevoked(user_id=caller.user_id, device_id=caller.device_id)
    ]
    with pytest.raises(NotFound):
        await modules.accounts.revoke_device(caller, caller.device_id)


async def test_authenticate_touches_the_device_at_most_once_a_minute() -> None:
    """last_seen_at moves when a minute has passed since, not on every request."""
    modules = build_modules_on_fakes()
    login = await modules.sign_up("alice")
    created = login.device.last_seen_at
    modules.clock.advance(30)
    await modules.accounts.authenticate(login.token)
    (device,) = await modules.users.list_devices(login.user.user_id)
    assert device.last_seen_at == created
    modules.clock.advance(30)
    await modules.accounts.authenticate(login.token)
    (device,) = await modules.users.list_devices(login.user.user_id)
    assert device.last_seen_at == created + 60_000


async def test_set_password_revokes_every_device_and_announces_each() -> None:
    """An operator's reset: every token stops working, DeviceRevoked for each device, the
    push targets are gone, and only the new password logs in."""
    modules = build_modules_on_fakes()
    accounts = modules.accounts
    first = await modules.sign_up("alice")
    second = await accounts.login("alice", FAKE_PASSWORD)
    user_id = first.user.user_id
    caller = Caller(user_id=user_id, device_id=first.device.device_id)
    await accounts.set_push_target(caller, first.device.device_id, "log", {"to": "me"})

    await accounts.set_password("ALICE", "a brand new password")

    for login in (first, second):
        with pytest.raises(Unauthorized):
            await accounts.authenticate(login.token)
    assert modules.bus.of_type(DeviceRevoked) == [
        DeviceRevoked(user_id=user_id, device_id=first.device.device_id),
        DeviceRevoked(user_id=user_id, device_id=second.device.device_id),
    ]
    assert await accounts.push_targets_of([user_id]) == []
    with pytest.raises(Unauthorized):
        await accounts.login("alice", FAKE_PASSWORD)
    await accounts.login("alice", "a brand new password")


async def test_set_password_checks_the_password_and_the_user() -> None:
    """A weak new password is refused before anything changes; an unknown name is NotFound."""
    modules = build_modules_on_fakes()
    login = await modules.sign_up("alice")
    with pytest.raises(InvalidInput):
        await modules.accounts.set_password("alice", "short")
    with pytest.raises(NotFound):
        await modules.accounts.set_password("nobody", "long enough password")
    await modules.accounts.authenticate(login.token)


async def test_users_are_members_unless_made_admins() -> None:
    """A signup is a member; `role="admin"` (the CLI's `create-user --admin`) makes an admin,
    shown on the user wherever it is read."""
    modules = build_modules_on_fakes()
    member = await modules.accounts.signup("alice", FAKE_PASSWORD)
    admin = await modules.accounts.signup("root", FAKE_PASSWORD, role="admin")
    assert (member.role, admin.role) == ("member", "admin")
    assert (await modules.accounts.get_user(admin.user_id)).role == "admin"
    assert [user.role for user in await modules.accounts.find_users("root")] == ["admin"]


async def test_set_role_grants_and_revokes_admin_and_the_guard_follows_at_once() -> None:
    """`set_role` by username (any case) changes the role; `require_admin` reads it on every
    call, so a grant and a revoke count from the next call on, for the same token."""
    modules = build_modules_on_fakes()
    login = await modules.sign_up("alice")
    caller = await modules.accounts.authenticate(login.token)
    with pytest.raises(Forbidden) as refused:
        await modules.accounts.require_admin(caller)
    assert refused.value.code == "forbidden"

    granted = await modules.accounts.set_role("ALICE", "admin")
    assert (granted.username, granted.role) == ("alice", "admin")
    assert (await modules.accounts.require_admin(caller)).user_id == login.user.user_id

    revoked = await modules.accounts.set_role("alice", "member")
    assert revoked.role == "member"
    with pytest.raises(Forbidden):
        await modules.accounts.require_admin(caller)
    with pytest.raises(NotFound):
        await modules.accounts.set_role("nobody", "admin")


async def test_login_rehashes_a_password_stored_with_weaker_parameters() -> None:
    """When the hasher says a hash is outdated, a successful login stores a new one."""
    modules = build_modules_on_fakes()
    await modules.accounts.signup("alice", FAKE_PASSWORD)
    modules.hasher.version = 2
    await modules.accounts.login("alice", FAKE_PASSWORD)
    credentials = await modules.users.get_credentials("alice")
    assert credentials is not None
    assert not modules.hasher.needs_rehash(credentials.password_hash)


async def test_push_targets_belong_to_the_callers_live_devices() -> None:
    """A target for another user's device is NotFound; revoking a device drops its target."""
    modules = build_modules_on_fakes()
    accounts = modules.accounts
    alice = await modules.sign_up("alice")
    bob = await modules.sign_up("bob")
    as_alice = Caller(user_id=alice.user.user_id, device_id=alice.device.device_id)
    with pytest.raises(NotFound):
        await accounts.set_push_target(as_alice, bob.device.device_id, "log", {})
    with pytest.raises(NotFound):
        await accounts.remove_push_target(as_alice, bob.device.device_id)

    await accounts.set_push_target(as_alice, alice.device.device_id, "ntfy", "https://x/t")
    (target,) = await accounts.push_targets_of([alice.user.user_id, bob.user.user_id])
    assert (target.device_id, target.provider, target.target) == (
        alice.device.device_id,
        "ntfy",
        "https://x/t",
    )
    await accounts.logout(as_alice)
    assert await accounts.push_targets_of([alice.user.user_id]) == []


async def test_find_users_needs_a_prefix_and_ignores_its_case() -> None:
    """An empty prefix finds nobody; 'AL' finds alice and albert, the exact name first."""
    modules = build_modules_on_fakes()
    for name in ("albert", "al_x", "bob"):
        await modules.accounts.signup(name, FAKE_PASSWORD, address=name)
    assert await modules.accounts.find_users("") == []
    assert [u.username for u in await modules.accounts.find_users("AL")] == ["al_x", "albert"]
