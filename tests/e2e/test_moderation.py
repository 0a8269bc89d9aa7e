"""Moderation: deactivating and reactivating accounts, the admin's user list, the audit log.

Runs on the embedded server and on two cluster nodes (`ALSO_ON_CLUSTER`): a
user's sockets are opened on every node, so a deactivation must close them
wherever they are; the CLI reaches the embedded server through its control
socket and the cluster through its Redis bus.
"""

from __future__ import annotations

import time
from typing import Any

from chatapp.client import ChatClient
from chatapp.protocol.admin import AuditEventOut
from chatapp.testing import RunningServer
from tests.e2e.account_sockets import (
    all_closed_with_4401_within_a_second,
    sockets_on_every_node,
    still_open,
)
from tests.e2e.operator_cli import cli_ok, run_cli
from tests.e2e.refusals import refusal

PASSWORD = "correct horse battery"
ADMIN_USER_FIELDS = {
    "user_id", "username", "display_name", "about", "created_at", "role",
    "deactivated", "deactivated_at", "deactivation_reason", "deleted", "deleted_at",
    "last_seen_at",
}  # fmt: skip


async def last_event_id(admin: ChatClient) -> int:
    """The newest audit event's id (0 for none): tests look at what comes after it."""
    after, answer = 0, await admin.audit(limit=200)
    while answer.events:
        after = answer.events[-1].event_id
        answer = await admin.audit(after=after, limit=200)
    return after


def described(events: list[AuditEventOut]) -> list[tuple[Any, ...]]:
    return [(e.action, e.actor_id, e.target.kind, e.target.id, e.reason) for e in events]


async def test_deactivation_closes_every_socket_and_refuses_logins(
    chat_server: RunningServer,
) -> None:
    """An admin's deactivation answers 204 and closes every socket of the user with 4401 within
    a second, on every node; the old tokens are 401; a login with the right password is 403
    `deactivated` (a wrong one still 401 `invalid_credentials`); the admin list shows it; another
    user's socket stays open; the audit log has it with the reason."""
    admin = await chat_server.admin("root")
    after = await last_event_id(admin)
    alice = await chat_server.user("alice")
    laptop = await chat_server.device("alice")
    bob = await chat_server.user("bob")
    async with sockets_on_every_node(chat_server, [alice, laptop, bob]) as sockets:
        await admin.deactivate(alice.user_id, reason="spam")
        await all_closed_with_4401_within_a_second(sockets[:2])
        await bob.me()
        await still_open(sockets[2])
    for token_holder in (alice, laptop):
        error = await refusal(token_holder.me())
        assert (error.status, error.code) == (401, "unauthorized")
    again = chat_server.client()
    error = await refusal(again.login("alice", PASSWORD))
    assert (error.status, error.code) == (403, "deactivated")
    error = await refusal(again.login("alice", "a wrong password"))
    assert (error.status, error.code) == (401, "invalid_credentials")
    [shown] = (await admin.admin_users("alice")).users
    assert (shown.deactivated, shown.deactivation_reason) == (True, "spam")
    assert shown.deactivated_at is not None
    assert described((await admin.audit(after=after)).events) == [
        ("deactivate", admin.user_id, "user", alice.user_id, "spam"),
    ]


async def test_reactivation_lets_the_user_log_in_anew_and_old_tokens_stay_revoked(
    chat_server: RunningServer,
) -> None:
    """Reactivation answers 204: the user logs in again, but the tokens revoked by the
    deactivation stay revoked; doing either twice answers 204 and records nothing more."""
    admin = await chat_server.admin("root")
    after = await last_event_id(admin)
    alice = await chat_server.user("alice")
    await admin.deactivate(alice.user_id)
    await admin.deactivate(alice.user_id, reason="a second reason is not kept")
    await admin.reactivate(alice.user_id)
    await admin.reactivate(alice.user_id)
    error = await refusal(alice.me())
    assert (error.status, error.code) == (401, "unauthorized")
    back = await chat_server.device("alice")
    assert (await back.me()).username == "alice"
    [shown] = (await admin.admin_users("alice")).users
    assert (shown.deactivated, shown.deactivated_at, shown.deactivation_reason) == (
        False, None, None,
    )  # fmt: skip
    assert described((await admin.audit(after=after)).events) == [
        ("deactivate", admin.user_id, "user", alice.user_id, None),
        ("reactivate", admin.user_id, "user", alice.user_id, None),
    ]


async def test_deactivation_refusals(chat_server: RunningServer) -> None:
    """An unknown user is 404; an admin deactivating themself is 403 `forbidden` (someone must
    be left to undo it); a reason over 500 characters or not a string is 400; a member is 403
    whatever the target; no body at all is a deactivation without a reason."""
    admin = await chat_server.admin("root")
    alice = await chat_server.user("alice")
    for user_id in (987_654, 0):
        error = await refusal(admin.deactivate(user_id))
        assert (error.status, error.code) == (404, "not_found")
        error = await refusal(admin.reactivate(user_id))
        assert (error.status, error.code) == (404, "not_found")
    error = await refusal(admin.deactivate(admin.user_id))
    assert (error.status, error.code) == (403, "forbidden")
    path = f"/api/v1/admin/users/{alice.user_id}/deactivate"
    for body in ({"reason": "x" * 501}, {"reason": 5}):
        error = await refusal(admin.request("POST", path, body))
        assert (error.status, error.code) == (400, "bad_request")
    error = await refusal(alice.deactivate(admin.user_id))
    assert (error.status, error.code) == (403, "forbidden")
    assert (await admin.me()).username == "root"
    assert (await admin.raw_request("POST", path)).status == 204
    [shown] = (await admin.admin_users("alice")).users
    assert (shown.deactivated, shown.deactivation_reason) == (True, None)


async def test_others_see_a_deactivated_user_as_before(chat_server: RunningServer) -> None:
    """Other users see nothing new: the profile answers as before (no `deactivated` in it),
    the direct channel and its history stay, and messages to it are still accepted (they wait
    in the user's inbox for a reactivation)."""
    admin = await chat_server.admin("root")
    alice, bob = await chat_server.user("alice"), await chat_server.user("bob")
    direct = await bob.open_direct(alice.user_id)
    await alice.send_message(direct.channel_id, "before")
    profile = await bob.request("GET", f"/api/v1/users/{alice.user_id}")
    await admin.deactivate(alice.user_id)
    assert await bob.request("GET", f"/api/v1/users/{alice.user_id}") == profile
    assert "deactivated" not in profile["user"]
    sent = await bob.send_message(direct.channel_id, "are you there?")
    assert sent.message.message_id == 2
    history = await bob.messages(direct.channel_id)
    assert [m.text for m in history.messages] == ["before", "are you there?"]
    await admin.reactivate(alice.user_id)
    back = await chat_server.device("alice")
    assert [e.message.text for e in (await back.sync()).events if e.message] == [
        "before", "are you there?",
    ]  # fmt: skip


async def test_the_admin_user_list_pages_by_user_id_and_filters_by_prefix(
    chat_server: RunningServer,
) -> None:
    """GET /admin/users: users whose name starts with `query` (any case), by user id above
    `after`, `limit` at a time with `has_more`; each is the user object with `deactivated`,
    `created_at` and `last_seen_at` (null for a user who never logged in); a limit outside 1
    to 200 is 400."""
    admin = await chat_server.admin("root")
    made = [await chat_server.user(f"mod_{n}") for n in range(3)]
    await chat_server.client().signup("mod_never", PASSWORD)
    await chat_server.user("other")
    first = await admin.admin_users("MOD_", limit=2)
    assert [u.username for u in first.users] == ["mod_0", "mod_1"]
    assert first.has_more
    rest = await admin.admin_users("mod_", after=first.users[-1].user_id, limit=2)
    assert [u.username for u in rest.users] == ["mod_2", "mod_never"]
    assert not rest.has_more
    raw = await admin.request("GET", "/api/v1/admin/users", params={"query": "mod_"})
    assert all(set(user) == ADMIN_USER_FIELDS for user in raw["users"])
    by_name = {u.username: u for u in [*first.users, *rest.users]}
    assert by_name["mod_never"].last_seen_at is None
    assert by_name["mod_0"].last_seen_at is not None
    assert by_name["mod_0"].user_id == made[0].user_id
    assert by_name["mod_0"].role == "member"
    assert not by_name["mod_0"].deactivated
    everyone = await admin.admin_users(limit=200)
    ids = [user.user_id for user in everyone.users]
    assert ids == sorted(ids)
    assert {"root", "other", "mod_never"} <= {user.username for user in everyone.users}
    for limit in ("0", "201", "x"):
        error = await refusal(admin.request("GET", "/api/v1/admin/users", params={"limit": limit}))
        assert (error.status, error.code) == (400, "bad_request")


async def test_deleting_someone_elses_message_is_on_the_record(chat_server: RunningServer) -> None:
    """A group owner's and an admin's deletion of another member's message are audited
    (`delete_message`, the message and its channel as target, the deleter as actor); a
    sender deleting their own message, and deleting what is deleted, are not."""
    admin = await chat_server.admin("root")
    owner, member = await chat_server.user("owner"), await chat_server.user("member")
    group = await owner.create_group("team", [member.user_id])
    channel = group.channel_id
    for text in ("one", "two", "three", "four"):
        await member.send_message(channel, text)
    await owner.send_message(channel, "five")
    after = await last_event_id(admin)
    await owner.delete_message(channel, 1)
    await owner.delete_message(channel, 1)
    await member.delete_message(channel, 2)
    await admin.delete_message(channel, 3)
    await admin.delete_message(channel, 5)
    await owner.delete_message(channel, 5)
    events = (await admin.audit(after=after)).events
    assert [(e.action, e.actor_id, e.target.model_dump()) for e in events] == [
        ("delete_message", owner.user_id, {"kind": "message", "id": 1, "channel_id": channel}),
        ("delete_message", admin.user_id, {"kind": "message", "id": 3, "channel_id": channel}),
        ("delete_message", admin.user_id, {"kind": "message", "id": 5, "channel_id": channel}),
    ]
    assert all(events[0].at <= e.at <= int(time.time() * 1000) for e in events)


async def test_the_audit_log_pages_oldest_first(chat_server: RunningServer) -> None:
    """GET /admin/audit: `{events: [{event_id, at, actor_id, action, target: {kind, id}}],
    has_more}`, event ids ascending, `after` an event id and `limit` 1 to 200 (else 400)."""
    admin = await chat_server.admin("root")
    after = await last_event_id(admin)
    codes = [(await admin.create_invite()).code for _ in range(5)]
    first = await admin.audit(after=after, limit=3)
    assert [e.target.id for e in first.events] == codes[:3]
    assert first.has_more
    rest = await admin.audit(after=first.events[-1].event_id, limit=3)
    assert [e.target.id for e in rest.events] == codes[3:]
    assert not rest.has_more
    ids = [e.event_id for e in [*first.events, *rest.events]]
    assert ids == sorted(set(ids))
    raw = await admin.request("GET", "/api/v1/admin/audit", params={"after": str(after)})
    event = raw["events"][0]
    assert {"event_id", "at", "actor_id", "action", "target"} <= set(event)
    assert event["target"]["kind"] == "invite"
    assert event["action"] == "invite_create"
    for limit in ("0", "201"):
        error = await refusal(admin.request("GET", "/api/v1/admin/audit", params={"limit": limit}))
        assert (error.status, error.code) == (400, "bad_request")


async def test_cli_deactivation_reaches_the_running_server_at_once(
    chat_server: RunningServer,
) -> None:
    """`chatapp deactivate NAME --reason R`, run while the server (or cluster) runs, closes the
    user's sockets on every node with 4401 within a second of its end and refuses the login;
    `chatapp reactivate NAME` lets the user log in again. Both are audited with no actor; an
    unknown name exits 1 with `not_found`."""
    admin = await chat_server.admin("root")
    after = await last_event_id(admin)
    alice = await chat_server.user("alice")
    laptop = await chat_server.device("alice")
    async with sockets_on_every_node(chat_server, [alice, laptop]) as sockets:
        said = await cli_ok(chat_server, "deactivate", "alice", "--reason", "abuse")
        await all_closed_with_4401_within_a_second(sockets)
    assert "alice" in said
    assert "deactivated" in said
    assert "the running server closed their connections" in said
    error = await refusal(chat_server.client().login("alice", PASSWORD))
    assert (error.status, error.code) == (403, "deactivated")
    [shown] = (await admin.admin_users("alice")).users
    assert (shown.deactivated, shown.deactivation_reason) == (True, "abuse")

    said = await cli_ok(chat_server, "reactivate", "ALICE")
    assert "alice" in said
    back = await chat_server.device("alice")
    assert (await back.me()).username == "alice"
    unknown = await run_cli(chat_server, "deactivate", "nobody")
    assert (unknown.returncode, unknown.stdout) == (1, "")
    assert "not_found" in unknown.stderr
    assert described((await admin.audit(after=after)).events) == [
        ("deactivate", None, "user", alice.user_id, "abuse"),
        ("reactivate", None, "user", alice.user_id, None),
    ]


async def test_role_commands_are_on_the_record(chat_server: RunningServer) -> None:
    """`grant-admin`, `revoke-admin` and `create-user --admin` are audited as `grant_admin` /
    `revoke_admin` with no actor; a command that changes no role records nothing."""
    admin = await chat_server.admin("root")
    after = await last_event_id(admin)
    carol = await chat_server.user("carol")
    await cli_ok(chat_server, "grant-admin", "carol")
    await cli_ok(chat_server, "grant-admin", "carol")
    await cli_ok(chat_server, "revoke-admin", "carol")
    await cli_ok(chat_server, "revoke-admin", "carol")
    await cli_ok(chat_server, "create-user", "dave", "--admin", "--password-stdin",
                 stdin=f"{PASSWORD}\n")  # fmt: skip
    await cli_ok(chat_server, "create-user", "erin", "--password-stdin", stdin=f"{PASSWORD}\n")
    dave = (await admin.admin_users("dave")).users[0]
    assert described((await admin.audit(after=after)).events) == [
        ("grant_admin", None, "user", carol.user_id, None),
        ("revoke_admin", None, "user", carol.user_id, None),
        ("grant_admin", None, "user", dave.user_id, None),
    ]
