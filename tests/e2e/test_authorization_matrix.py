"""Authorization matrix: every endpoint and frame type, tried by callers who may not use it.

The endpoints come from the server's own OpenAPI document at test time, so an
endpoint added later is in the matrix without anyone remembering to add it.
Callers: no token, malformed and unknown tokens, a token revoked by logout and
one revoked by device removal (401 `unauthorized`); a non-member of a channel
(403 `not_member`); a member who is not the owner, for owner-only actions
(403 `forbidden`); a member who is not a server admin, for the admin API
(403 `forbidden`). A refusal reveals nothing: not the channel's name, its
members, their names nor its messages.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chatapp.client import ChatClient
from chatapp.testing import RawSocket, RunningServer
from chatapp.testing.openapi_requests import Hint, Operation, example_body, operations

PUBLIC = {
    "POST /api/v1/auth/signup",
    "POST /api/v1/auth/login",
    "GET /healthz",
    "GET /readyz",
    "GET /metrics",
    "GET /api/v1/openapi.json",
}
OWNER_ONLY = {
    "PATCH /api/v1/channels/{id}",
    "POST /api/v1/channels/{id}/members",
    "DELETE /api/v1/channels/{id}/members/{user_id}",
    # On another member's message: only its sender edits; its sender or the owner deletes.
    "PATCH /api/v1/channels/{id}/messages/{message_id}",
    "DELETE /api/v1/channels/{id}/messages/{message_id}",
}
"""Channel actions a member who is not the owner may not take (on another member, or on the
owner's message)."""
MEMBERS_ONLY_READS = {
    "GET /api/v1/channels/{id}",
    "GET /api/v1/channels/{id}/messages",
    "GET /api/v1/channels/{id}/presence",
    "GET /api/v1/channels/{id}/receipts",
}
"""Channel reads that must be in the matrix: each shows who is in the channel or what they
said or read, so an outsider must learn nothing from them."""
ADMIN_PREFIX = "/api/v1/admin/"
"""Every operation under it is the admin API's: a server admin's alone."""
ADMIN_PAGE_OPERATIONS = {
    "PUT /api/v1/admin/users/{user_id}/role",
    "GET /api/v1/admin/server",
}
"""Added for the admin page: in the matrix like the rest of the admin API."""
CHANNEL_NAME = "Project Nightingale"
SECRET_TEXT = "the nightingale sings at dawn"


@dataclass
class Scene:
    """A group (owner alice, members bob and carol) that mallory is not in, and the tokens."""

    server: RunningServer
    document: dict[str, Any]
    alice: ChatClient
    bob: ChatClient
    carol: ChatClient
    mallory: ChatClient
    group_id: int
    direct_id: int
    """alice and bob's direct channel."""
    revoked: dict[str, str]
    """Tokens that must not work, by how they came to be so."""

    @property
    def member_ids(self) -> set[int]:
        return {self.alice.user_id, self.bob.user_id, self.carol.user_id}

    @property
    def secrets(self) -> list[str]:
        names = ["alice_owner", "bob_member", "carol_member"]
        return [CHANNEL_NAME, "Nightingale", SECRET_TEXT, *names]

    def request_for(self, operation: Operation, **path: int) -> tuple[str, Any]:
        """The operation's URL (ids of the group and of alice's device by default) and a
        valid body, so that a refusal can only be about who asks."""
        values: dict[str, int | str] = {
            "id": self.group_id, "user_id": self.bob.user_id,
            "device_id": self.alice.device_id, "message_id": 1, "emoji": "%F0%9F%91%8D",
            "code": "no-such-invite",
        }  # fmt: skip
        values.update(path)
        url = operation.url(values)
        if operation.query_required:
            url += "?" + "&".join(f"{name}=alice_owner" for name in operation.query_required)
        hints: dict[str, Hint] = {
            "user_id": self.carol.user_id,
            "member_ids": [self.carol.user_id],
            "message_id": 1,
            "client_msg_id": lambda: uuid.uuid4().hex,
            "text": "let me in",
            "name": "taken over",
            "provider": "log",
            "username": "alice_owner",
            "password": "correct horse battery",
        }
        schema = operation.body_schema
        return url, example_body(self.document, schema, hints) if schema else None


async def build_scene(server: RunningServer) -> Scene:
    for _ in range(10):  # ids in the teens: a member id in an answer is no coincidence
        await server.user()
    alice, bob = await server.user("alice_owner"), await server.user("bob_member")
    carol, mallory = await server.user("carol_member"), await server.user("mallory_outsider")
    group = await alice.create_group(CHANNEL_NAME, [bob.user_id, carol.user_id])
    direct = await alice.open_direct(bob.user_id)
    await alice.send_message(group.channel_id, SECRET_TEXT)
    await bob.send_message(direct.channel_id, SECRET_TEXT)
    logged_out = await server.device("alice_owner")
    await logged_out.logout()
    removed = await server.device("alice_owner")
    await alice.revoke_device(removed.device_id)
    revoked = {
        "logged out": logged_out.token or "",
        "device removed": removed.token or "",
        "unknown": "A" * 43,
    }
    document = await alice.request("GET", "/api/v1/openapi.json")
    await server.settle()
    return Scene(server, document, alice, bob, carol, mallory, group.channel_id,
                 direct.channel_id, revoked)  # fmt: skip


async def call(
    server: RunningServer, method: str, url: str, body: Any, headers: Mapping[str, str]
) -> tuple[int, str]:
    client = server.client()
    data = None if body is None else json.dumps(body)
    answer = await client.raw_request(
        method, url, data=data, headers={"Content-Type": "application/json", **headers}
    )
    return answer.status, answer.text


def leaks(scene: Scene, text: str, sent: str) -> list[str]:
    """What `text` reveals of the group: its name, members' names and ids, its messages.
    Ids the caller sent itself (in `sent`) do not count."""
    found = [secret for secret in scene.secrets if secret.lower() in text.lower()]
    for member_id in scene.member_ids:
        pattern = rf"\b{member_id}\b"
        if re.search(pattern, text) and not re.search(pattern, sent):
            found.append(f"member id {member_id}")
    return found


def error_code(text: str) -> str | None:
    """The code of an error envelope; None if `text` is not exactly one."""
    try:
        document = json.loads(text)
    except ValueError:
        return None
    if not isinstance(document, dict) or set(document) != {"error"}:
        return None
    code = document["error"].get("code")
    return code if isinstance(code, str) else None


async def test_public_operations_are_exactly_the_known_ones(chat_server: RunningServer) -> None:
    """The OpenAPI document marks as public (no security) exactly signup, login, health,
    readiness, metrics and the document itself; each answers without a token."""
    client = chat_server.client()
    document = await client.request("GET", "/api/v1/openapi.json")
    public = {operation.label for operation in operations(document) if operation.public}
    assert public == PUBLIC
    for label in ("GET /healthz", "GET /readyz", "GET /metrics", "GET /api/v1/openapi.json"):
        method, path = label.split()
        status, _ = await call(chat_server, method, path, None, {})
        assert status == 200, label


async def test_every_endpoint_refuses_missing_and_revoked_tokens(
    chat_server: RunningServer,
) -> None:
    """Every operation but the public ones, with no token, a malformed or unknown one, or one
    revoked by logout or by device removal: 401 `unauthorized`, revealing nothing."""
    scene = await build_scene(chat_server)
    credentials = {
        "no Authorization": {},
        "empty bearer": {"Authorization": "Bearer "},
        "basic scheme": {"Authorization": f"Basic {scene.alice.token}"},
        "token without scheme": {"Authorization": scene.alice.token or ""},
        **{f"{how} token": {"Authorization": f"Bearer {token}"}
           for how, token in scene.revoked.items()},
    }  # fmt: skip
    failures = []
    guarded = [op for op in operations(scene.document) if op.label not in PUBLIC]
    assert len(guarded) >= 20, "the document lists fewer operations than the server has"
    for operation in guarded:
        url, body = scene.request_for(operation)
        for how, headers in credentials.items():
            status, text = await call(chat_server, operation.method, url, body, headers)
            if status != 401 or error_code(text) != "unauthorized":
                failures.append(f"{operation.label} with {how}: {status} {text[:200]}")
            elif found := leaks(scene, text, url + json.dumps(body)):
                failures.append(f"{operation.label} with {how} reveals {found}")
    assert not failures, f"{len(failures)} wrong answers:\n" + "\n".join(failures)
    # None of it changed anything: alice's own token still works.
    assert (await scene.alice.channel(scene.group_id)).name == CHANNEL_NAME


async def test_non_members_learn_nothing_and_change_nothing(chat_server: RunningServer) -> None:
    """Every operation on a channel (`/channels/{id}...`), by a user who is not a member:
    403 `not_member` for the group and for a direct channel, 404 for a channel that does not
    exist; no answer reveals the name, the members or the messages, and nothing changes."""
    scene = await build_scene(chat_server)
    mallory = {"Authorization": f"Bearer {scene.mallory.token}"}
    before = await scene.alice.channel(scene.group_id)
    history_before = await scene.alice.messages(scene.group_id)
    channel_scoped = [op for op in operations(scene.document) if "/channels/{id}" in op.path]
    assert len(channel_scoped) >= 7, "the document lists fewer channel operations than expected"
    assert {op.label for op in channel_scoped} >= MEMBERS_ONLY_READS
    failures = []
    for operation in channel_scoped:
        for channel_id, expected in ((scene.group_id, ("not_member", 403)),
                                     (scene.direct_id, ("not_member", 403)),
                                     (987_654, ("not_found", 404))):  # fmt: skip
            url, body = scene.request_for(operation, id=channel_id)
            status, text = await call(chat_server, operation.method, url, body, mallory)
            if (error_code(text), status) != expected:
                failures.append(f"{operation.label} on {channel_id}: {status} {text[:200]}")
            elif found := leaks(scene, text, url + json.dumps(body)):
                failures.append(f"{operation.label} on {channel_id} reveals {found}")
    assert not failures, f"{len(failures)} wrong answers:\n" + "\n".join(failures)
    assert await scene.alice.channel(scene.group_id) == before
    assert await scene.alice.messages(scene.group_id) == history_before
    listed = await scene.mallory.channels()
    assert scene.group_id not in {channel.channel_id for channel in listed}
    assert not (await scene.mallory.sync()).events


async def test_members_who_are_not_owners_cannot_take_owner_actions(
    chat_server: RunningServer,
) -> None:
    """Owner-only channel actions (rename, add a member, remove another member) by a member
    who is not the owner: 403 `forbidden`; every other channel operation is open to members."""
    scene = await build_scene(chat_server)
    bob = {"Authorization": f"Bearer {scene.bob.token}"}
    channel_scoped = [op for op in operations(scene.document) if "/channels/{id}" in op.path]
    failures = []
    for operation in channel_scoped:
        url, body = scene.request_for(operation, user_id=scene.carol.user_id)
        status, text = await call(chat_server, operation.method, url, body, bob)
        if operation.label in OWNER_ONLY:
            if (status, error_code(text)) != (403, "forbidden"):
                failures.append(f"{operation.label} by a member: {status} {text[:200]}")
        elif status >= 400:
            failures.append(f"{operation.label} refused to a member: {status} {text[:200]}")
    assert not failures, "\n".join(failures)
    channel = await scene.alice.channel(scene.group_id)
    assert (channel.name, set(channel.members)) == (CHANNEL_NAME, scene.member_ids)


async def test_other_users_devices_are_out_of_reach(chat_server: RunningServer) -> None:
    """Device operations (`/me/devices/{device_id}...`) on another user's device: 404, and
    that device's token keeps working."""
    scene = await build_scene(chat_server)
    mallory = {"Authorization": f"Bearer {scene.mallory.token}"}
    device_scoped = [op for op in operations(scene.document) if "{device_id}" in op.path]
    assert device_scoped
    failures = []
    for operation in device_scoped:
        url, body = scene.request_for(operation, device_id=scene.alice.device_id)
        status, text = await call(chat_server, operation.method, url, body, mallory)
        if (status, error_code(text)) != (404, "not_found"):
            failures.append(f"{operation.label} on alice's device: {status} {text[:200]}")
    assert not failures, "\n".join(failures)
    assert (await scene.alice.me()).username == "alice_owner"
    assert scene.alice.device_id in {device.device_id for device in await scene.alice.devices()}


OWN_ACCOUNT = {
    "POST /api/v1/me/password",
    "DELETE /api/v1/me",
    "GET /api/v1/me/export",
}
"""Operations on the caller's account as a whole: they act on the caller alone."""


async def test_own_account_operations_reach_only_the_callers_account(
    chat_server: RunningServer,
) -> None:
    """`POST /me/password`, `DELETE /me` and `GET /me/export` act on the token's own account
    alone: another user's password sent with mallory's token is 401 `invalid_credentials`
    and changes nobody's account, and mallory's export holds nothing of a group she is not
    in; the other user still logs in with their password and keeps their device."""
    scene = await build_scene(chat_server)
    assert {op.label for op in operations(scene.document)} >= OWN_ACCOUNT
    victim_password = "the victim's own secret"
    victim = await chat_server.user("victim_user", victim_password)
    mallory = {"Authorization": f"Bearer {scene.mallory.token}"}
    bodies = {
        "POST /api/v1/me/password": {
            "current_password": victim_password, "new_password": "taken over at last",
        },
        "DELETE /api/v1/me": {"password": victim_password, "erase_messages": True},
    }  # fmt: skip
    for label, body in bodies.items():
        method, path = label.split()
        status, text = await call(chat_server, method, path, body, mallory)
        assert (status, error_code(text)) == (401, "invalid_credentials"), label
    status, text = await call(chat_server, "GET", "/api/v1/me/export", None, mallory)
    assert status == 200
    assert not leaks(scene, text, ""), leaks(scene, text, "")
    assert "victim_user" not in text
    assert (await victim.me()).username == "victim_user"
    assert (await chat_server.device("victim_user", victim_password)).user_id == victim.user_id
    assert (await scene.mallory.me()).username == "mallory_outsider"


async def test_members_who_are_not_admins_are_refused_the_whole_admin_api(
    chat_server: RunningServer,
) -> None:
    """Every operation of the admin API (`/api/v1/admin/...`), by members who are not server
    admins (an outsider, a group's owner, a member, with valid requests): 403 `forbidden`,
    revealing nothing, and nothing changes; a server admin's same requests are let through.
    A member made admin and then revoked is refused again with the same token."""
    scene = await build_scene(chat_server)
    admin_ops = [op for op in operations(scene.document) if op.path.startswith(ADMIN_PREFIX)]
    assert admin_ops, "the document lists no admin operation"
    assert {op.label for op in admin_ops} >= ADMIN_PAGE_OPERATIONS
    assert all(not op.public for op in admin_ops)
    members = {"mallory (outsider)": scene.mallory, "alice (group owner)": scene.alice,
               "bob (member)": scene.bob}  # fmt: skip
    failures = []
    for operation in admin_ops:
        url, body = scene.request_for(operation)
        for who, member in members.items():
            headers = {"Authorization": f"Bearer {member.token}"}
            status, text = await call(chat_server, operation.method, url, body, headers)
            if (status, error_code(text)) != (403, "forbidden"):
                failures.append(f"{operation.label} by {who}: {status} {text[:200]}")
            elif found := leaks(scene, text, url + json.dumps(body)):
                failures.append(f"{operation.label} by {who} reveals {found}")
    assert not failures, f"{len(failures)} wrong answers:\n" + "\n".join(failures)
    assert (await scene.alice.channel(scene.group_id)).name == CHANNEL_NAME

    admin = await chat_server.admin("root_admin")
    for operation in admin_ops:
        url, body = scene.request_for(operation)
        headers = {"Authorization": f"Bearer {admin.token}"}
        status, text = await call(chat_server, operation.method, url, body, headers)
        assert status not in (401, 403), f"{operation.label} refused to an admin: {text[:200]}"

    carol = {"Authorization": f"Bearer {scene.carol.token}"}
    await chat_server.make_admin("carol_member")
    for operation in admin_ops:
        url, body = scene.request_for(operation)
        status, text = await call(chat_server, operation.method, url, body, carol)
        assert status not in (401, 403), f"{operation.label} refused to carol: {text[:200]}"
    await chat_server.revoke_admin("carol_member")
    for operation in admin_ops:
        url, body = scene.request_for(operation)
        status, text = await call(chat_server, operation.method, url, body, carol)
        assert (status, error_code(text)) == (403, "forbidden"), operation.label


# -- the WebSocket -------------------------------------------------------------------------


async def test_non_member_frames_are_refused_and_reveal_nothing(
    chat_server: RunningServer,
) -> None:
    """send, read and typing for a channel the user is not in: `error` not_member (not_found
    for no such channel) with nothing but code, message and the frame's own ref and
    client_msg_id; sync replays none of it; the channel's traffic never reaches the user."""
    scene = await build_scene(chat_server)
    frames: dict[str, dict[str, Any]] = {
        "send": {"type": "send", "channel_id": 0, "client_msg_id": "peek", "text": "hi"},
        "read": {"type": "read", "channel_id": 0, "message_id": 1},
        "typing": {"type": "typing", "channel_id": 0},
    }
    outsider = await RawSocket.open(chat_server.ws_url, scene.mallory.token or "", last_seq=0)
    insider = await RawSocket.open(chat_server.ws_url, scene.alice.token or "")
    try:
        replay = await outsider.until("synced")
        assert replay == [{"type": "synced", "seq": 0, "has_more": False}]
        await insider.until("synced")
        failures = []
        for channel_id, code in ((scene.group_id, "not_member"), (scene.direct_id, "not_member"),
                                 (987_654, "not_found")):  # fmt: skip
            for kind, frame in frames.items():
                ref = f"{kind}-{channel_id}"
                await outsider.send(frame | {"channel_id": channel_id, "ref": ref})
                error = await outsider.expect("error")
                expected_keys = {"type", "code", "message", "ref"} | (
                    {"client_msg_id"} if kind == "send" else set()
                )
                sent = json.dumps(frame | {"channel_id": channel_id})
                if error["code"] != code or error["ref"] != ref or set(error) != expected_keys:
                    failures.append(f"{kind} to {channel_id}: {error}")
                elif found := leaks(scene, json.dumps(error), sent):
                    failures.append(f"{kind} to {channel_id} reveals {found}: {error}")
        assert not failures, "\n".join(failures)
        await insider.send({"type": "typing", "channel_id": scene.group_id})
        await insider.send(
            {"type": "send", "channel_id": scene.group_id, "client_msg_id": "x", "text": "psst"}
        )
        await insider.until("ack")
        await chat_server.settle()
        assert await outsider.silent(0.3)
        await outsider.send({"type": "sync", "since": 0, "ref": "again"})
        assert await outsider.expect("synced") == {
            "type": "synced", "seq": 0, "has_more": False, "ref": "again",
        }  # fmt: skip
    finally:
        await outsider.close()
        await insider.close()


async def test_revoked_tokens_cannot_say_hello_and_logout_closes_with_4401(
    chat_server: RunningServer,
) -> None:
    """hello with a token revoked by logout or device removal, or unknown, is closed with 4401;
    a live connection whose device logs out is closed with 4401 too."""
    scene = await build_scene(chat_server)
    for how, token in scene.revoked.items():
        raw = await RawSocket.connect(chat_server.ws_url)
        try:
            await raw.send({"type": "hello", "token": token})
            assert await raw.closed_with() == 4401, how
        finally:
            await raw.close()
    leaving = await chat_server.device("bob_member")
    live = await RawSocket.open(chat_server.ws_url, leaving.token or "")
    try:
        await live.until("synced")
        await leaving.logout()
        assert await live.closed_with() == 4401
    finally:
        await live.close()
