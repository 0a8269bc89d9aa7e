"""The account endpoints of the protocol, through a real server and the Python client."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from chatapp.client import ChatApiError, ChatClient
from chatapp.testing import RawSocket, RunningServer, run_server
from tests.e2e.refusals import refusal


async def test_signup_returns_the_user_and_lowercases_the_name(chat_server: RunningServer) -> None:
    """Signup answers 201 with the protocol's user object; `Alice` is stored as `alice`."""
    client = chat_server.client()
    answer = await client.request(
        "POST", "/api/v1/auth/signup", {"username": "Alice", "password": "password1"}
    )
    assert set(answer["user"]) == {
        "user_id", "username", "display_name", "about", "created_at", "role",
    }  # fmt: skip
    assert answer["user"]["username"] == "alice"
    assert answer["user"]["role"] == "member"
    assert answer["user"]["display_name"] == "alice"


async def test_signup_refuses_a_taken_name_in_any_case(chat_server: RunningServer) -> None:
    """Usernames are case-insensitive: `BOB` after `bob` is 409 username_taken."""
    client = chat_server.client()
    await client.signup("bob", "password1")
    error = await refusal(client.signup("BOB", "password2"))
    assert (error.status, error.code) == (409, "username_taken")


@pytest.mark.parametrize("name", ["ab", "a" * 33, "has space", "émile", "semi;colon", ""])
async def test_signup_refuses_invalid_usernames(chat_server: RunningServer, name: str) -> None:
    """Names outside 3-32 of a-z 0-9 _ . - are 422 invalid_username."""
    error = await refusal(chat_server.client().signup(name, "password1"))
    assert (error.status, error.code) == (422, "invalid_username")


@pytest.mark.parametrize("password", ["short", "x" * 1025])
async def test_signup_refuses_weak_passwords(chat_server: RunningServer, password: str) -> None:
    """Passwords must be 8 to 1,024 characters: 422 weak_password otherwise."""
    error = await refusal(chat_server.client().signup("carol", password))
    assert (error.status, error.code) == (422, "weak_password")


async def test_signup_accepts_the_limits_exactly(chat_server: RunningServer) -> None:
    """The boundaries themselves are allowed: 3- and 32-character names, 8 and 1,024 passwords."""
    client = chat_server.client()
    await client.signup("abc", "x" * 8)
    await client.signup("a._-" + "z" * 28, "x" * 1024)
    await client.login("abc", "x" * 8)


async def test_concurrent_signups_of_one_name_have_one_winner(chat_server: RunningServer) -> None:
    """Ten simultaneous signups of the same name: exactly one succeeds, the rest get 409."""
    results = await asyncio.gather(
        *(chat_server.client().signup("dave", f"password{i}") for i in range(10)),
        return_exceptions=True,
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, ChatApiError)]
    assert len(winners) == 1
    assert len(losers) == 9
    assert {(e.status, e.code) for e in losers} == {(409, "username_taken")}


async def test_login_gives_token_device_user_and_ws_url(chat_server: RunningServer) -> None:
    """Login answers token, device_id, user and the ws_url of this server (of a node)."""
    client = chat_server.client()
    await client.signup("erin", "password1")
    answer = await client.login("Erin", "password1", device_name="laptop")
    assert answer.user.username == "erin"
    assert answer.ws_url in chat_server.ws_urls
    assert len(answer.token) >= 43
    devices = await client.devices()
    assert [(d.device_id, d.name, d.current) for d in devices] == [
        (answer.device_id, "laptop", True)
    ]


async def test_login_refuses_wrong_password_and_unknown_user(chat_server: RunningServer) -> None:
    """A wrong password and an unknown username both get 401 invalid_credentials."""
    client = chat_server.client()
    await client.signup("frank", "password1")
    for username, password in [("frank", "password2"), ("nobody", "password1")]:
        error = await refusal(client.login(username, password))
        assert (error.status, error.code) == (401, "invalid_credentials")


async def test_two_devices_have_separate_tokens(chat_server: RunningServer) -> None:
    """Each login is a device with its own token; logging one out leaves the other working."""
    phone = await chat_server.user("grace", device_name="phone")
    laptop = await chat_server.device("grace", device_name="laptop")
    assert phone.token != laptop.token
    assert {d.name for d in await laptop.devices()} == {"phone", "laptop"}
    await phone.logout()
    error = await refusal(phone.me())
    assert (error.status, error.code) == (401, "unauthorized")
    assert (await laptop.me()).username == "grace"
    assert [d.name for d in await laptop.devices()] == ["laptop"]


async def test_revoked_device_token_is_refused_everywhere(chat_server: RunningServer) -> None:
    """After DELETE /me/devices/{id}, that token gets 401 on every authenticated endpoint."""
    owner = await chat_server.user("heidi")
    stolen = await chat_server.device("heidi")
    await owner.revoke_device(stolen.device_id)
    for call in [
        stolen.me(),
        stolen.update_me(about="x"),
        stolen.devices(),
        stolen.revoke_device(owner.device_id),
        stolen.user(owner.user_id),
        stolen.find_users("he"),
        stolen.logout(),
        stolen.discovery(),
    ]:
        error = await refusal(call)
        assert (error.status, error.code) == (401, "unauthorized")


async def test_missing_and_malformed_tokens_are_unauthorized(chat_server: RunningServer) -> None:
    """No header, a non-bearer scheme and an unknown token all get 401 unauthorized."""
    for token in [None, "not-a-real-token"]:
        error = await refusal(chat_server.client(token=token).me())
        assert (error.status, error.code) == (401, "unauthorized")
    answer = await chat_server.client().raw_request(
        "GET", "/api/v1/me", headers={"Authorization": "Basic abc"}
    )
    assert answer.status == 401
    assert answer.json()["error"]["code"] == "unauthorized"


async def test_revoking_an_unknown_or_foreign_device_is_not_found(
    chat_server: RunningServer,
) -> None:
    """A user cannot revoke another user's device, nor learn that it exists: 404."""
    ivan = await chat_server.user("ivan")
    judy = await chat_server.user("judy")
    for device_id in [judy.device_id, 999_999]:
        error = await refusal(ivan.revoke_device(device_id))
        assert (error.status, error.code) == (404, "not_found")
    assert len(await judy.devices()) == 1


async def test_profile_can_be_read_and_changed(chat_server: RunningServer) -> None:
    """PATCH /me changes display_name and about; GET /me and GET /users/{id} show it (the
    latter without the settings only /me shows)."""
    kim = await chat_server.user("kim")
    updated = await kim.update_me(display_name="Kim K", about="hello")
    assert (updated.display_name, updated.about) == ("Kim K", "hello")
    assert await kim.me() == updated
    other = await chat_server.user()
    public = (await other.user(kim.user_id)).model_dump()
    assert public == updated.model_dump(exclude={"share_read_receipts", "group_adds"})


async def test_profile_limits_are_enforced(chat_server: RunningServer) -> None:
    """An empty or overlong display name and an overlong about are refused with 422."""
    leo = await chat_server.user("leo")
    refused: list[tuple[dict[str, Any], str]] = [
        ({"display_name": "  "}, "invalid_display_name"),
        ({"display_name": "x" * 65}, "invalid_display_name"),
        ({"about": "x" * 501}, "invalid_about"),
    ]
    for kwargs, code in refused:
        error = await refusal(leo.update_me(**kwargs))
        assert (error.status, error.code) == (422, code)
    assert (await leo.me()).display_name == "leo"


async def test_user_lookup_by_id_and_prefix(chat_server: RunningServer) -> None:
    """GET /users/{id} finds one user; ?username= matches exactly or by prefix, exact first."""
    me = await chat_server.user("mallory")
    for name in ["mal", "mal_x", "malt", "other"]:
        await chat_server.client().signup(name, "password1")
    assert [u.username for u in await me.find_users("MAL")] == ["mal", "mal_x", "mallory", "malt"]
    assert [u.username for u in await me.find_users("mal_")] == ["mal_x"]
    assert await me.find_users("zzz") == []
    error = await refusal(me.user(123_456))
    assert (error.status, error.code) == (404, "not_found")


async def test_user_search_returns_at_most_20(chat_server: RunningServer) -> None:
    """A prefix that matches many users answers at most 20."""
    me = await chat_server.user("searcher")
    await asyncio.gather(
        *(chat_server.client().signup(f"many{i:02}", "password1") for i in range(25))
    )
    assert len(await me.find_users("many")) == 20


@pytest.mark.embedded_only  # a cluster's discovery: tests/e2e/test_cluster.py
async def test_discovery_names_this_server(chat_server: RunningServer) -> None:
    """GET /discovery answers the ws_url clients should connect to, and the node's name."""
    client = await chat_server.user()
    assert await client.discovery() == chat_server.ws_url
    answer = await client.request("GET", "/api/v1/discovery")
    port = chat_server.url.rsplit(":", 1)[1]
    assert answer == {"ws_url": chat_server.ws_url, "node_id": f"127.0.0.1:{port}"}


# -- roles and the admin API ----------------------------------------------------------------


async def shown_roles(viewer: ChatClient, user_id: int, username: str) -> dict[str, str]:
    """The user's `role` as each call that shows a user object shows it to `viewer`."""
    by_id = await viewer.request("GET", f"/api/v1/users/{user_id}")
    found = await viewer.request("GET", "/api/v1/users", params={"username": username})
    friends = await viewer.request("GET", "/api/v1/friends")
    return {
        "GET /users/{id}": by_id["user"]["role"],
        "GET /users?username=": found["users"][0]["role"],
        "GET /friends": next(
            friend["user"]["role"] for friend in friends["friends"]
            if friend["user"]["user_id"] == user_id
        ),
    }  # fmt: skip


async def test_every_user_object_shows_the_role_and_a_grant_shows_at_once(
    chat_server: RunningServer,
) -> None:
    """Signup, login, /me, PATCH /me, user lookups and friend lists show `role`: `member` for
    a signup; once the user is made an admin, `admin` everywhere at once, for tokens issued
    before the change too, and `member` again after a revoke."""
    alice = chat_server.client()
    signed_up = await alice.request(
        "POST", "/api/v1/auth/signup", {"username": "alice", "password": "password1"}
    )
    logged_in = await alice.request(
        "POST", "/api/v1/auth/login", {"username": "alice", "password": "password1"}
    )
    alice.token = logged_in["token"]
    assert (signed_up["user"]["role"], logged_in["user"]["role"]) == ("member", "member")
    bob = await chat_server.user("bob")
    await bob.request("POST", "/api/v1/friends", {"user_id": signed_up["user"]["user_id"]})
    await alice.request("POST", "/api/v1/friends", {"user_id": bob.user_id})
    alice_id = signed_up["user"]["user_id"]
    assert set((await shown_roles(bob, alice_id, "alice")).values()) == {"member"}

    await chat_server.make_admin("alice")
    assert (await alice.request("GET", "/api/v1/me"))["user"]["role"] == "admin"
    patched = await alice.request("PATCH", "/api/v1/me", {"about": "runs the server"})
    assert patched["user"]["role"] == "admin"
    assert set((await shown_roles(bob, alice_id, "alice")).values()) == {"admin"}
    assert (await bob.me()).role == "member"

    await chat_server.revoke_admin("alice")
    assert (await alice.me()).role == "member"
    assert set((await shown_roles(bob, alice_id, "alice")).values()) == {"member"}


async def test_admin_cluster_lists_this_node_and_its_websockets(
    chat_server: RunningServer,
) -> None:
    """GET /admin/cluster, as an admin: every live node once (the embedded server is one:
    this process), with its ws_url, start time and last-seen time in ms; a WebSocket open on
    a node is counted on that node (within the 5 s counts may take to reach a cluster's
    registry), and no longer once it is closed."""
    admin = await chat_server.admin()
    before = int(time.time() * 1000)
    answer = await admin.request("GET", "/api/v1/admin/cluster")
    assert sorted(node["ws_url"] for node in answer["nodes"]) == sorted(chat_server.ws_urls)
    for node in answer["nodes"]:
        assert set(node) == {"node_id", "ws_url", "connections", "started_at", "last_seen_at"}
        assert 0 < node["started_at"] <= node["last_seen_at"] <= before + 60_000
        assert node["last_seen_at"] >= before - 10_000
    assert [node["node_id"] for node in answer["nodes"]] == sorted(
        node["node_id"] for node in answer["nodes"]
    )

    async def connections_on(ws_url: str) -> int:
        nodes = await admin.cluster_nodes()
        return next(node.connections for node in nodes if node.ws_url == ws_url)

    async def until_connections(ws_url: str, expected: int) -> None:
        deadline = time.monotonic() + 6.0
        while (found := await connections_on(ws_url)) != expected:
            assert time.monotonic() < deadline, f"{found} connections on {ws_url}, not {expected}"
            await asyncio.sleep(0.1)

    target = chat_server.ws_url
    baseline = await connections_on(target)
    socket = await RawSocket.open(target, admin.token or "")
    try:
        await socket.until("synced")
        await until_connections(target, baseline + 1)
    finally:
        await socket.close()
    await until_connections(target, baseline)


@pytest.mark.embedded_only  # a cluster's nodes: tests/e2e/test_cluster_admin.py
async def test_admin_cluster_on_one_server_is_this_process(chat_server: RunningServer) -> None:
    """The embedded server lists itself: its node id (host and port, as discovery names it),
    its ws_url, exactly its open WebSockets, started when it started, seen now."""
    admin = await chat_server.admin()
    port = chat_server.url.rsplit(":", 1)[1]
    sockets = [await RawSocket.open(chat_server.ws_url, admin.token or "") for _ in range(2)]
    try:
        asked_at = int(time.time() * 1000)
        [node] = await admin.cluster_nodes()
        assert (node.node_id, node.ws_url, node.connections) == (
            f"127.0.0.1:{port}",
            chat_server.ws_url,
            2,
        )
        assert asked_at - 600_000 < node.started_at <= node.last_seen_at
        assert abs(node.last_seen_at - asked_at) < 5_000
    finally:
        for socket in sockets:
            await socket.close()


async def test_admin_cluster_refuses_members_and_callers_without_a_token(
    chat_server: RunningServer,
) -> None:
    """A member gets 403 `forbidden`, without a token 401 `unauthorized`; a revoked admin is
    refused at once, with the token that worked a moment before."""
    member = await chat_server.user("just_a_member")
    error = await refusal(member.cluster_nodes())
    assert (error.status, error.code) == (403, "forbidden")
    error = await refusal(chat_server.client().cluster_nodes())
    assert (error.status, error.code) == (401, "unauthorized")

    await chat_server.make_admin("just_a_member")
    assert await member.cluster_nodes()
    await chat_server.revoke_admin("just_a_member")
    error = await refusal(member.cluster_nodes())
    assert (error.status, error.code) == (403, "forbidden")


async def test_login_is_rate_limited_per_username(tmp_path: Path) -> None:
    """Past the per-username limit, login gets 429 rate_limited with Retry-After."""
    async with run_server(tmp_path / "d", login_attempts_per_username=3) as server:
        client = server.client()
        await client.signup("nina", "password1")
        for _ in range(3):
            await refusal(client.login("nina", "wrong-password"))
        error = await refusal(client.login("nina", "password1"))
        assert (error.status, error.code) == (429, "rate_limited")
        assert error.retry_after is not None
        assert error.retry_after >= 1
        # Another username from the same address is not affected by nina's limit.
        await client.signup("olga", "password1")
        await client.login("olga", "password1")


async def test_login_is_rate_limited_per_address(tmp_path: Path) -> None:
    """Past the per-address limit, logins for any username get 429."""
    async with run_server(tmp_path / "d", login_attempts_per_address=4) as server:
        client = server.client()
        for i in range(4):
            await refusal(client.login(f"who{i}", "password1"))
        error = await refusal(client.login("fresh", "password1"))
        assert (error.status, error.code) == (429, "rate_limited")
        metrics = (await client.raw_request("GET", "/metrics")).text
        assert 'chatapp_rate_limited_total{limit="/api/v1/auth/login"} 1.0' in metrics
