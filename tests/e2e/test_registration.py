"""Registration: the `registration` setting, invite codes and their admin API and CLI.

Runs on the embedded server and on two cluster nodes (`ALSO_ON_CLUSTER`): on a
cluster each new client talks to the next node, so racing signups come from
different nodes.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from chatapp.client import ChatApiError, ChatClient
from chatapp.testing import RunningServer
from tests.e2e.operator_cli import cli_ok, run_cli
from tests.e2e.refusals import refusal

PASSWORD = "correct horse battery"


def registration(mode: str) -> pytest.MarkDecorator:
    """Run the test on a server whose `registration` setting is `mode`."""
    return pytest.mark.parametrize("chat_server_settings", [{"registration": mode}], ids=[mode])


async def signup(server: RunningServer, username: str, code: str | None = None) -> Any:
    return await server.client().signup(username, PASSWORD, invite_code=code)


async def operator(server: RunningServer, username: str = "root") -> ChatClient:
    """An admin made at the command line (signups may be closed), logged in."""
    await cli_ok(server, "create-user", username, "--admin", "--password-stdin",
                 stdin=f"{PASSWORD}\n")  # fmt: skip
    return await server.device(username)


async def test_open_registration_takes_anyone_and_ignores_invite_codes(
    chat_server: RunningServer,
) -> None:
    """By default anyone signs up; an invite code, known or not, is ignored and not spent."""
    admin = await operator(chat_server)
    invite = await admin.create_invite()
    assert (await signup(chat_server, "anyone")).username == "anyone"
    assert (await signup(chat_server, "bogus", "no-such-code")).username == "bogus"
    assert (await signup(chat_server, "holder", invite.code)).username == "holder"
    [listed] = await admin.invites()
    assert listed.uses_left == 1


@registration("closed")
async def test_closed_registration_refuses_every_signup_but_the_cli_creates_users(
    chat_server: RunningServer,
) -> None:
    """With `closed`, every signup is 403 `registration_closed`, even with a valid invite
    code; `chatapp create-user` still makes an account, which logs in."""
    admin = await operator(chat_server)
    invite = await admin.create_invite()
    for code in (None, invite.code):
        error = await refusal(signup(chat_server, "visitor", code))
        assert (error.status, error.code) == (403, "registration_closed")
    created = await cli_ok(
        chat_server, "create-user", "carol", "--password-stdin", stdin=f"{PASSWORD}\n"
    )
    assert "created user carol" in created
    carol = await chat_server.device("carol")
    assert (await carol.me()).username == "carol"
    assert (await admin.invites())[0].uses_left == 1


@registration("invite")
async def test_invite_registration_needs_a_usable_code(chat_server: RunningServer) -> None:
    """With `invite`: no code, an unknown one, a used-up one and a revoked one are each 403
    `invite_required`; a code for two uses lets exactly two people in, and the list shows
    what is left."""
    admin = await operator(chat_server)
    for code in (None, "", "no-such-code"):
        error = await refusal(signup(chat_server, "visitor", code))
        assert (error.status, error.code) == (403, "invite_required"), code
    invite = await admin.create_invite(uses=2)
    assert invite.uses_left == 2
    await signup(chat_server, "first", invite.code)
    [listed] = await admin.invites()
    assert (listed.code, listed.uses_left) == (invite.code, 1)
    second = chat_server.client()
    await second.signup("second", PASSWORD, invite_code=invite.code)
    await second.login("second", PASSWORD)
    error = await refusal(signup(chat_server, "third", invite.code))
    assert (error.status, error.code) == (403, "invite_required")
    [used_up] = await admin.invites()
    assert used_up.uses_left == 0

    other = await admin.create_invite()
    await admin.revoke_invite(other.code)
    error = await refusal(signup(chat_server, "late", other.code))
    assert (error.status, error.code) == (403, "invite_required")
    assert [i.code for i in await admin.invites()] == [invite.code]
    missing = await refusal(admin.revoke_invite(other.code))
    assert (missing.status, missing.code) == (404, "not_found")


@registration("invite")
async def test_an_expired_invite_is_refused(chat_server: RunningServer) -> None:
    """An invite made with `expires_in_s` works until `expires_at`, then is 403
    `invite_required` with uses left."""
    admin = await operator(chat_server)
    before = int(time.time() * 1000)
    invite = await admin.create_invite(uses=5, expires_in_s=1)
    assert invite.expires_at is not None
    assert before + 1000 <= invite.expires_at <= int(time.time() * 1000) + 1000
    await signup(chat_server, "quick", invite.code)
    await asyncio.sleep(max(0.0, invite.expires_at / 1000 - time.time()) + 0.1)
    error = await refusal(signup(chat_server, "slow", invite.code))
    assert (error.status, error.code) == (403, "invite_required")
    [listed] = await admin.invites()
    assert (listed.uses_left, listed.expires_at) == (4, invite.expires_at)


@registration("invite")
async def test_a_failed_signup_gives_its_use_back(chat_server: RunningServer) -> None:
    """A signup that fails after its code was checked (a taken name, a weak password) does
    not spend the code's use: the next signup with it succeeds."""
    admin = await operator(chat_server)
    invite = await admin.create_invite()
    taken = await refusal(signup(chat_server, "root", invite.code))
    assert (taken.status, taken.code) == (409, "username_taken")
    weak = await refusal(chat_server.client().signup("weak", "short", invite_code=invite.code))
    assert (weak.status, weak.code) == (422, "weak_password")
    assert (await admin.invites())[0].uses_left == 1
    await signup(chat_server, "newcomer", invite.code)
    assert (await admin.invites())[0].uses_left == 0


@registration("invite")
async def test_signups_racing_for_a_codes_last_use_have_one_winner(
    chat_server: RunningServer,
) -> None:
    """Ten signups with different names send one single-use code at the same moment (on a
    cluster, through both nodes): exactly one account is made, the nine others are 403
    `invite_required`; then two signups race for a two-use code's last use, and one wins."""
    admin = await operator(chat_server)
    invite = await admin.create_invite()
    clients = [chat_server.client() for _ in range(10)]
    results = await asyncio.gather(
        *(client.signup(f"racer{n}", PASSWORD, invite_code=invite.code)
          for n, client in enumerate(clients)),
        return_exceptions=True,
    )  # fmt: skip
    winners = [r for r in results if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, ChatApiError)]
    assert len(winners) == 1
    assert {(e.status, e.code) for e in losers} == {(403, "invite_required")}
    assert len(losers) == 9
    listed = await admin.admin_users("racer")
    assert [user.username for user in listed.users] == [winners[0].username]

    pair = await admin.create_invite(uses=2)
    await signup(chat_server, "early", pair.code)
    results = await asyncio.gather(
        signup(chat_server, "late1", pair.code),
        signup(chat_server, "late2", pair.code),
        return_exceptions=True,
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert [i.uses_left for i in await admin.invites() if i.code == pair.code] == [0]


async def test_invite_answers_and_their_limits(chat_server: RunningServer) -> None:
    """POST /admin/invites answers 201 `{code, uses_left, expires_at}` (uses 1 and never
    expiring by default); `uses` of 1 to 10,000 and `expires_in_s` from 1 are taken, other
    values and types are 400 `bad_request`; no body at all is the defaults."""
    admin = await operator(chat_server)
    answer = await admin.raw_request(
        "POST", "/api/v1/admin/invites", data="{}", headers={"Content-Type": "application/json"}
    )
    assert answer.status == 201
    made = answer.json()
    assert {"code", "uses_left", "expires_at"} <= set(made)
    assert (made["uses_left"], made["expires_at"]) == (1, None)
    assert len(made["code"]) >= 22
    bare = await admin.raw_request("POST", "/api/v1/admin/invites")
    assert (bare.status, bare.json()["uses_left"]) == (201, 1)
    assert (await admin.create_invite(uses=10_000)).uses_left == 10_000
    for body in ({"uses": 0}, {"uses": 10_001}, {"uses": "2"}, {"uses": 1.5},
                 {"expires_in_s": 0}, {"expires_in_s": "60"}):  # fmt: skip
        error = await refusal(admin.request("POST", "/api/v1/admin/invites", body))
        assert (error.status, error.code) == (400, "bad_request"), body
    listed = await admin.invites()
    assert len(listed) == 3
    assert len({invite.code for invite in listed}) == 3
    assert all(invite.created_by == admin.user_id for invite in listed)


@registration("invite")
async def test_invite_commands_work_while_the_server_runs(chat_server: RunningServer) -> None:
    """`chatapp invite create --uses 2 --expires-in 3600` makes a code the running server
    takes at once; `invite list` shows what is left; `invite revoke` stops it at once; the
    admin API lists the CLI's invites, and the audit log has both with no actor."""
    admin = await operator(chat_server)
    before = (await admin.audit()).events
    after = before[-1].event_id if before else 0
    made = await cli_ok(chat_server, "invite", "create", "--uses", "2", "--expires-in", "3600")
    code = made.split()[0]
    assert "2 uses left" in made
    await signup(chat_server, "via_cli", code)
    listed = await cli_ok(chat_server, "invite", "list")
    assert [line.split()[0] for line in listed.splitlines()] == [code]
    assert "1 use left" in listed
    assert "made" in listed
    [shown] = await admin.invites()
    assert (shown.code, shown.uses_left, shown.created_by) == (code, 1, None)
    assert shown.expires_at is not None

    revoked = await cli_ok(chat_server, "invite", "revoke", code)
    assert code in revoked
    error = await refusal(signup(chat_server, "too_late", code))
    assert (error.status, error.code) == (403, "invite_required")
    assert (await cli_ok(chat_server, "invite", "list")).strip() == "no invites"
    unknown = await run_cli(chat_server, "invite", "revoke", code)
    assert unknown.returncode == 1
    assert "not_found" in unknown.stderr
    bad = await run_cli(chat_server, "invite", "create", "--uses", "0")
    assert bad.returncode == 1
    assert "bad_request" in bad.stderr

    events = (await admin.audit(after=after)).events
    assert [(e.action, e.actor_id, e.target.kind, e.target.id) for e in events] == [
        ("invite_create", None, "invite", code),
        ("invite_revoke", None, "invite", code),
    ]


async def test_login_and_signup_document_their_new_refusals(chat_server: RunningServer) -> None:
    """The OpenAPI document lists 403 for signup (registration) and login (deactivated), and
    signup's body has `invite_code`."""
    document = await chat_server.client().request("GET", "/api/v1/openapi.json")
    paths = document["paths"]
    assert "403" in paths["/api/v1/auth/signup"]["post"]["responses"]
    assert "403" in paths["/api/v1/auth/login"]["post"]["responses"]
    body = document["components"]["schemas"]["SignupRequest"]["properties"]
    assert "invite_code" in body
