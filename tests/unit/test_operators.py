"""Operators on fakes: registration policies, invites, deactivation, roles and the audit log."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest
from structlog.testing import capture_logs

from chatapp.accounts import Device, DeviceRevoked
from chatapp.bootstrap.modules import build_accounts, build_operators
from chatapp.config import Settings
from chatapp.errors import BadRequest, Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from chatapp.operators import Operators, RegistrationPolicy
from chatapp.operators.invites import new_code
from chatapp.testing.fakes import (
    FAKE_PASSWORD,
    FakeAuditLog,
    FakeInviteStore,
    FakePasswordHasher,
    FakePushTargetStore,
    FakeUserStore,
    ManualClock,
    ModulesOnFakes,
    RecordingBus,
    build_modules_on_fakes,
)


@dataclass(frozen=True)
class Scene:
    modules: ModulesOnFakes
    invites: FakeInviteStore
    audit_log: FakeAuditLog
    operators: Operators

    def actions(self) -> list[tuple[object, ...]]:
        """What the audit log holds: (action, actor, target kind, target id, reason)."""
        return [
            (e.action, e.actor_id, e.target.kind, e.target.id, e.reason)
            for e in self.audit_log.recorded
        ]


def scene(policy: RegistrationPolicy = "open") -> Scene:
    modules = build_modules_on_fakes(Settings(registration=policy))
    invites, audit_log = FakeInviteStore(), FakeAuditLog()
    operators = build_operators(
        modules.settings, invites, audit_log, accounts=modules.accounts, clock=modules.clock
    )
    return Scene(modules, invites, audit_log, operators)


async def test_open_registration_takes_anyone_and_spends_no_code() -> None:
    """`open`: a signup needs no code, and a code it carries is not spent."""
    s = scene("open")
    invite = await s.operators.invites.create(actor_id=None)
    await s.operators.registration.signup("alice", FAKE_PASSWORD)
    await s.operators.registration.signup("bob", FAKE_PASSWORD, invite_code=invite.code)
    assert [i.uses_left for i in await s.operators.invites.list_invites()] == [1]


async def test_closed_registration_refuses_every_signup() -> None:
    """`closed`: 403 `registration_closed` with or without a code; accounts.signup (the CLI's
    way) still creates users."""
    s = scene("closed")
    invite = await s.operators.invites.create(actor_id=None)
    for code in (None, invite.code):
        with pytest.raises(Forbidden) as refused:
            await s.operators.registration.signup("alice", FAKE_PASSWORD, invite_code=code)
        assert refused.value.code == "registration_closed"
    assert (await s.modules.accounts.signup("alice", FAKE_PASSWORD)).username == "alice"


@pytest.mark.parametrize("code", [None, "", "unknown"])
async def test_invite_registration_refuses_a_missing_or_unknown_code(code: str | None) -> None:
    """`invite`: no code or an unknown one is 403 `invite_required`, and no user is made."""
    s = scene("invite")
    with pytest.raises(Forbidden) as refused:
        await s.operators.registration.signup("alice", FAKE_PASSWORD, invite_code=code)
    assert refused.value.code == "invite_required"
    assert await s.modules.users.get_credentials("alice") is None


async def test_an_invite_lets_in_as_many_as_its_uses_until_it_expires() -> None:
    """A code for two uses lets two in, then is used up; another expires at `expires_at`
    (the clock's), uses left or not."""
    s = scene("invite")
    pair = await s.operators.invites.create(actor_id=7, uses=2)
    for name in ("alice", "bob"):
        await s.operators.registration.signup(name, FAKE_PASSWORD, invite_code=pair.code)
    with pytest.raises(Forbidden, match="invite code"):
        await s.operators.registration.signup("carol", FAKE_PASSWORD, invite_code=pair.code)
    timed = await s.operators.invites.create(actor_id=7, uses=5, expires_in_s=60)
    assert timed.expires_at == s.modules.clock.now_ms() + 60_000
    s.modules.clock.advance(59.999)
    await s.operators.registration.signup("dave", FAKE_PASSWORD, invite_code=timed.code)
    s.modules.clock.advance(0.001)
    with pytest.raises(Forbidden):
        await s.operators.registration.signup("erin", FAKE_PASSWORD, invite_code=timed.code)
    listed = await s.operators.invites.list_invites()
    assert [(i.uses_left, i.created_by) for i in listed] == [(0, 7), (4, 7)]


async def test_a_failed_signup_gives_the_use_back() -> None:
    """A taken name or a weak password after the code was taken: the use is given back."""
    s = scene("invite")
    invite = await s.operators.invites.create(actor_id=None)
    await s.modules.accounts.signup("alice", FAKE_PASSWORD)
    with pytest.raises(Conflict):
        await s.operators.registration.signup("alice", FAKE_PASSWORD, invite_code=invite.code)
    with pytest.raises(InvalidInput):
        await s.operators.registration.signup("bob", "short", invite_code=invite.code)
    assert [i.uses_left for i in await s.operators.invites.list_invites()] == [1]


async def test_racing_signups_spend_a_single_use_once() -> None:
    """Five signups with one single-use code at once: one account, four `invite_required`."""
    s = scene("invite")
    invite = await s.operators.invites.create(actor_id=None)
    results = await asyncio.gather(
        *(
            s.operators.registration.signup(f"racer{n}", FAKE_PASSWORD, invite_code=invite.code)
            for n in range(5)
        ),
        return_exceptions=True,
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert {r.code for r in results if isinstance(r, Forbidden)} == {"invite_required"}


def test_no_invite_code_begins_with_a_dash() -> None:
    """One code in 64 would, and the command line would take it for an option."""
    assert not any(new_code().startswith("-") for _ in range(5_000))


async def test_invite_limits_and_revocation() -> None:
    """`uses` outside 1 to 10,000 and a non-positive expiry are refused; a revoked code is gone
    (and revoking it again is 404); making and revoking are audited."""
    s = scene("invite")
    for uses, expires in ((0, None), (10_001, None), (1, 0)):
        with pytest.raises(BadRequest):
            await s.operators.invites.create(actor_id=1, uses=uses, expires_in_s=expires)
    invite = await s.operators.invites.create(actor_id=1)
    await s.operators.invites.revoke(invite.code, actor_id=1)
    with pytest.raises(NotFound):
        await s.operators.invites.revoke(invite.code, actor_id=1)
    assert await s.operators.invites.list_invites() == []
    assert s.actions() == [
        ("invite_create", 1, "invite", invite.code, None),
        ("invite_revoke", 1, "invite", invite.code, None),
    ]


async def test_deactivation_revokes_every_device_and_refuses_the_right_password() -> None:
    """Every live device is revoked (a DeviceRevoked each, so sockets close); the right
    password is then 403 `deactivated`, a wrong one still 401; it is audited with its reason,
    once however often it is asked."""
    s = scene()
    alice = await s.modules.sign_up("alice")
    laptop = await s.modules.accounts.login("alice", FAKE_PASSWORD)
    user_id = alice.user.user_id
    await s.operators.moderation.deactivate(user_id, actor_id=99, reason="spam")
    await s.operators.moderation.deactivate(user_id, actor_id=99, reason="again")
    revoked = [e for e in s.modules.bus.published if isinstance(e, DeviceRevoked)]
    assert {e.device_id for e in revoked} == {alice.device.device_id, laptop.device.device_id}
    assert await s.modules.users.list_devices(user_id) == []
    with pytest.raises(Forbidden) as refused:
        await s.modules.accounts.login("alice", FAKE_PASSWORD)
    assert refused.value.code == "deactivated"
    with pytest.raises(Unauthorized):
        await s.modules.accounts.login("alice", "not the password")
    [account] = (await s.operators.moderation.accounts_page(query="", after=0, limit=10)).accounts
    assert (account.deactivated, account.deactivation_reason) == (True, "spam")
    assert s.actions() == [("deactivate", 99, "user", user_id, "spam")]


async def test_reactivation_allows_logins_and_leaves_old_tokens_revoked() -> None:
    """After reactivation the user logs in anew; the token from before stays revoked."""
    s = scene()
    alice = await s.modules.sign_up("alice")
    await s.operators.moderation.deactivate(alice.user.user_id, actor_id=None)
    await s.operators.moderation.reactivate(alice.user.user_id, actor_id=None)
    await s.operators.moderation.reactivate(alice.user.user_id, actor_id=None)
    with pytest.raises(Unauthorized):
        await s.modules.accounts.authenticate(alice.token)
    again = await s.modules.accounts.login("alice", FAKE_PASSWORD)
    assert (await s.modules.accounts.authenticate(again.token)).user_id == alice.user.user_id
    assert [a[0] for a in s.actions()] == ["deactivate", "reactivate"]


async def test_an_admin_cannot_deactivate_themself_and_unknown_users_are_404() -> None:
    """Deactivating oneself is 403 (someone must be left to undo it); an unknown id is 404
    for both directions; neither is recorded."""
    s = scene()
    root = await s.modules.sign_up("root")
    with pytest.raises(Forbidden):
        await s.operators.moderation.deactivate(root.user.user_id, actor_id=root.user.user_id)
    for act in (s.operators.moderation.deactivate, s.operators.moderation.reactivate):
        with pytest.raises(NotFound):
            await act(12345, actor_id=root.user.user_id)
    assert s.actions() == []


class DeactivatedWhileLoggingIn(FakeUserStore):
    """A store where an operator's deactivation lands between a login's password check and
    its new device: the deactivation's pass over the devices found none to revoke."""

    async def create_device(
        self, *, user_id: int, name: str, token_hash: str, created_at: int
    ) -> Device:
        await self.deactivate_user(user_id, at=created_at, reason=None)
        return await super().create_device(
            user_id=user_id, name=name, token_hash=token_hash, created_at=created_at
        )


async def test_a_login_racing_with_a_deactivation_leaves_no_live_device() -> None:
    """The login looks again after making its device, takes it back, and is refused."""
    users = DeactivatedWhileLoggingIn()
    accounts = build_accounts(
        Settings(),
        users,
        FakePushTargetStore(users),
        hasher=FakePasswordHasher(),
        clock=ManualClock(),
        bus=RecordingBus(),
    )
    await accounts.signup("alice", FAKE_PASSWORD)
    with pytest.raises(Forbidden) as refused:
        await accounts.login("alice", FAKE_PASSWORD)
    assert refused.value.code == "deactivated"
    credentials = await users.get_credentials("alice")
    assert credentials is not None
    assert await users.list_devices(credentials.user.user_id) == []


async def test_role_changes_and_deletions_are_audited_only_when_they_change_something() -> None:
    """grant/revoke record a change of role only; `create_user` of an admin is a grant; a
    deletion of one's own message is not recorded, of someone else's it is."""
    s = scene()
    bob = await s.modules.sign_up("bob")
    await s.operators.moderation.set_role("BOB", "admin")
    await s.operators.moderation.set_role("bob", "admin")
    await s.operators.moderation.set_role("bob", "member")
    root = await s.operators.moderation.create_user("root", FAKE_PASSWORD, "admin")
    await s.operators.moderation.create_user("carol", FAKE_PASSWORD, "member")

    @dataclass
    class Deleted:
        channel_id: int
        message_id: int
        sender_id: int

    await s.operators.moderation.message_deleted(root.user_id, Deleted(3, 9, root.user_id))
    await s.operators.moderation.message_deleted(root.user_id, Deleted(3, 10, bob.user.user_id))
    assert s.actions() == [
        ("grant_admin", None, "user", bob.user.user_id, None),
        ("revoke_admin", None, "user", bob.user.user_id, None),
        ("grant_admin", None, "user", root.user_id, None),
        ("delete_message", root.user_id, "message", 10, None),
    ]
    assert s.audit_log.recorded[-1].target.channel_id == 3


async def test_an_audit_line_that_cannot_be_written_is_logged_and_the_action_stands() -> None:
    """With the audit store failing, a deactivation still takes effect; the line goes to the
    log as `audit_not_recorded` with its fields."""
    s = scene()
    alice = await s.modules.sign_up("alice")
    s.audit_log.failing = True
    with capture_logs() as logs:
        await s.operators.moderation.deactivate(alice.user.user_id, actor_id=5, reason="r")
    [line] = [line for line in logs if line["event"] == "audit_not_recorded"]
    assert (line["action"], line["actor_id"], line["reason"]) == ("deactivate", 5, "r")
    assert line["target"] == {"kind": "user", "id": alice.user.user_id, "channel_id": None}
    with pytest.raises(Forbidden):
        await s.modules.accounts.login("alice", FAKE_PASSWORD)


async def test_the_audit_log_pages_oldest_first() -> None:
    """Pages of `limit` events after an event id, oldest first, `has_more` on all but the last."""
    s = scene()
    codes = [(await s.operators.invites.create(actor_id=1)).code for _ in range(3)]
    first = await s.operators.audit.page(after=0, limit=2)
    assert [e.target.id for e in first.events] == codes[:2]
    assert first.has_more
    rest = await s.operators.audit.page(after=first.events[-1].event_id, limit=2)
    assert ([e.target.id for e in rest.events], rest.has_more) == (codes[2:], False)


async def test_the_account_list_filters_by_prefix_and_pages_by_user_id() -> None:
    """Accounts whose name starts with the query (any case), by user id above `after`; one
    who never logged in has no `last_seen_at`."""
    s = scene()
    for name in ("mod_a", "other", "mod_b"):
        await s.modules.sign_up(name)
    await s.modules.accounts.signup("mod_c", FAKE_PASSWORD)
    first = await s.operators.moderation.accounts_page(query="MOD_", after=0, limit=2)
    assert [a.user.username for a in first.accounts] == ["mod_a", "mod_b"]
    assert first.has_more
    rest = await s.operators.moderation.accounts_page(
        query="mod_", after=first.accounts[-1].user.user_id, limit=2
    )
    assert [(a.user.username, a.last_seen_at) for a in rest.accounts] == [("mod_c", None)]
    assert not rest.has_more
    assert first.accounts[0].last_seen_at == s.modules.clock.now_ms()
