"""The admin API's additions for the admin page: roles over HTTP and the server's state.

Runs on the embedded server and on two cluster nodes (`ALSO_ON_CLUSTER`): a
role granted through one node counts on the other at once, and the server's
state adds up every live node.
"""

from __future__ import annotations

from typing import Any

import pytest

from chatapp.client import ChatApiError, ChatClient
from chatapp.testing import RawSocket, RunningServer
from chatapp.version import VERSION
from tests.e2e.refusals import refusal
from tests.e2e.test_moderation import described, last_event_id


async def test_an_admin_grants_and_revokes_the_admin_role_on_the_record(
    chat_server: RunningServer,
) -> None:
    """PUT /admin/users/{id}/role: 204; the user may use the admin API at once (through any
    node), and is refused again after the revocation; the audit log has grant_admin and
    revoke_admin by the acting admin; setting the role a user already has is recorded once."""
    admin = await chat_server.admin("root")
    after = await last_event_id(admin)
    alice = await chat_server.user("alice")
    other_node = chat_server.client(alice.token)

    await admin.set_role(alice.user_id, "admin")
    assert (await other_node.me()).role == "admin"
    assert (await other_node.admin_users("alice")).users[0].role == "admin"
    await admin.set_role(alice.user_id, "admin")

    await admin.set_role(alice.user_id, "member")
    forbidden = await refusal(other_node.admin_users())
    assert (forbidden.status, forbidden.code) == (403, "forbidden")

    events = (await admin.audit(after=after)).events
    assert described(events) == [
        ("grant_admin", admin.user_id, "user", alice.user_id, None),
        ("revoke_admin", admin.user_id, "user", alice.user_id, None),
    ]


async def test_an_admin_cannot_revoke_their_own_role(chat_server: RunningServer) -> None:
    """An admin's revocation of their own role is 403 `forbidden` and changes nothing, so the
    server always keeps an admin; another admin may revoke them; granting oneself the role
    one has is a harmless 204."""
    root = await chat_server.admin("root")
    second = await chat_server.admin("second")
    after = await last_event_id(root)

    refused = await refusal(root.set_role(root.user_id, "member"))
    assert (refused.status, refused.code) == (403, "forbidden")
    assert (await root.me()).role == "admin"
    await root.set_role(root.user_id, "admin")
    assert (await root.audit(after=after)).events == []

    await second.set_role(root.user_id, "member")
    assert (await root.me()).role == "member"


@pytest.mark.parametrize(
    ("path_id", "body", "status", "code"),
    [
        (999_999, {"role": "admin"}, 404, "not_found"),
        (None, {"role": "owner"}, 400, "bad_request"),
        (None, {}, 400, "bad_request"),
        ("abc", {"role": "admin"}, 404, None),
    ],
    ids=["no-such-user", "unknown-role", "no-role", "id-not-a-number"],
)
async def test_bad_role_requests_get_a_clear_error(
    chat_server: RunningServer, path_id: Any, body: Any, status: int, code: str | None
) -> None:
    """An unknown user is 404 `not_found`; a body without a known role, or with a field the
    request does not have, is 400 in the error envelope; nothing changes."""
    admin = await chat_server.admin("root")
    bob = await chat_server.user("bob")
    target = bob.user_id if path_id is None else path_id
    with pytest.raises(ChatApiError) as caught:
        await admin.request("PUT", f"/api/v1/admin/users/{target}/role", body)
    assert caught.value.status == status
    if code is not None:
        assert caught.value.code == code
    assert (await bob.me()).role == "member"


async def test_the_server_state_counts_nodes_connections_messages_and_disk(
    chat_server: RunningServer, chat_server_kind: str
) -> None:
    """GET /admin/server: this version, the node that answered and its uptime, every live
    node, their WebSockets, the messages stored (each accepted send counted once, however
    often it was sent) and the bytes of the data folder; a member is refused."""
    admin = await chat_server.admin("root")
    bob = await chat_server.user("bob")
    before = await admin.server_state()
    assert before.version == VERSION
    assert before.nodes == len(chat_server.ws_urls)
    assert before.uptime_s >= 0
    assert before.registration == "open"
    assert before.messages_stored is not None

    channel = await admin.open_direct(bob.user_id)
    for number in range(3):
        await bob.send_message(channel.channel_id, f"hello {number}", client_msg_id=f"m{number}")
    await bob.send_message(channel.channel_id, "hello 0", client_msg_id="m0")
    socket = await RawSocket.open(chat_server.ws_url, bob.token or "")
    try:
        await socket.until("synced")
        after = await admin.server_state()
        assert after.messages_stored == before.messages_stored + 3
        if chat_server_kind == "embedded":
            # A cluster node reports its count with its heartbeat; this one counts now.
            assert after.connections == before.connections + 1
            assert after.disk_bytes is not None
            assert after.disk_bytes > 0
    finally:
        await socket.close()

    refused = await refusal(bob.server_state())
    assert (refused.status, refused.code) == (403, "forbidden")


async def test_the_page_can_tell_members_from_admins(chat_server: RunningServer) -> None:
    """The admin page's first question, `GET /me`, says `role`; the admin API's refusal of a
    member is 403 `forbidden`, which the page shows as "admins only"."""
    member: ChatClient = await chat_server.user("member")
    admin = await chat_server.admin("root")
    assert (await member.me()).role == "member"
    assert (await admin.me()).role == "admin"
    refused = await refusal(member.server_state())
    assert (refused.status, refused.code) == (403, "forbidden")
