"""Friendships and presence through a real server, with time on a manual clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from chatapp.client import ChatApiError, ChatClient
from chatapp.clock import ManualClock
from chatapp.testing import RawSocket, RunningServer, run_server


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest_asyncio.fixture
async def server(tmp_path: Path, clock: ManualClock) -> AsyncIterator[RunningServer]:
    async with run_server(tmp_path / "d", clock=clock) as running:
        yield running


async def befriend(a: ChatClient, b: ChatClient) -> None:
    await a.request("POST", "/api/v1/friends", {"user_id": b.user_id})
    await b.request("POST", "/api/v1/friends", {"user_id": a.user_id})


async def online(server: RunningServer, client: ChatClient) -> RawSocket:
    await server.settle()
    raw = await RawSocket.open(server.ws_url, client.token or "")
    await raw.until("synced")
    await raw.send({"type": "heartbeat"})
    await raw.expect("heartbeat_ack")
    await server.settle()
    return raw


async def friend_status(viewer: ChatClient, user_id: int) -> dict[str, Any]:
    friends = (await viewer.request("GET", "/api/v1/friends"))["friends"]
    (match,) = [f["presence"] for f in friends if f["user"]["user_id"] == user_id]
    return dict(match)


async def test_friend_requests_in_every_order(server: RunningServer) -> None:
    """A request is pending until the other side asks too; both orders end as friends."""
    alice, bob, carol = await server.users(3)
    answer = await alice.raw_request(
        "POST", "/api/v1/friends", data=f'{{"user_id": {bob.user_id}}}'
    )
    assert (answer.status, answer.json()) == (201, {"status": "pending"})
    requests = await bob.request("GET", "/api/v1/friends/requests")
    assert [r["user"]["user_id"] for r in requests["incoming"]] == [alice.user_id]
    assert requests["outgoing"] == []
    mine = await alice.request("GET", "/api/v1/friends/requests")
    assert [r["user"]["username"] for r in mine["outgoing"]] == [bob.login_answer.user.username]  # type: ignore[union-attr]
    again = await alice.request("POST", "/api/v1/friends", {"user_id": bob.user_id})
    assert again == {"status": "pending"}
    assert (await alice.request("GET", "/api/v1/friends"))["friends"] == []
    back = await bob.raw_request("POST", "/api/v1/friends", data=f'{{"user_id": {alice.user_id}}}')
    assert (back.status, back.json()) == (200, {"status": "accepted"})
    for me, other in ((alice, bob), (bob, alice)):
        friends = (await me.request("GET", "/api/v1/friends"))["friends"]
        assert [f["user"]["user_id"] for f in friends] == [other.user_id]
        assert (await me.request("GET", "/api/v1/friends/requests")) == {
            "incoming": [],
            "outgoing": [],
        }
    # Both sides at the same moment still end as friends.
    await asyncio.gather(
        bob.request("POST", "/api/v1/friends", {"user_id": carol.user_id}),
        carol.request("POST", "/api/v1/friends", {"user_id": bob.user_id}),
    )
    assert await carol.request("POST", "/api/v1/friends", {"user_id": bob.user_id}) == {
        "status": "accepted"
    }


async def test_removing_friends_and_requests(server: RunningServer) -> None:
    """DELETE removes a friend (both sides), withdraws or declines a request; else 404."""
    alice, bob, carol = await server.users(3)
    await befriend(alice, bob)
    await bob.request("DELETE", f"/api/v1/friends/{alice.user_id}")
    assert (await alice.request("GET", "/api/v1/friends"))["friends"] == []
    await alice.request("POST", "/api/v1/friends", {"user_id": carol.user_id})
    await carol.request("DELETE", f"/api/v1/friends/{alice.user_id}")
    assert (await alice.request("GET", "/api/v1/friends/requests"))["outgoing"] == []
    with pytest.raises(ChatApiError) as caught:
        await alice.request("DELETE", f"/api/v1/friends/{carol.user_id}")
    assert (caught.value.status, caught.value.code) == (404, "not_found")


async def test_bad_friend_requests(server: RunningServer) -> None:
    """Befriending yourself is 400; an unknown user 404; a malformed body 400."""
    alice = await server.user()
    for body, expected in [
        ({"user_id": alice.user_id}, (400, "bad_request")),
        ({"user_id": 999_999}, (404, "not_found")),
        ({"user_id": "2"}, (400, "bad_request")),
    ]:
        with pytest.raises(ChatApiError) as caught:
            await alice.request("POST", "/api/v1/friends", body)
        assert (caught.value.status, caught.value.code) == expected


async def test_presence_reaches_friends_only(server: RunningServer, clock: ManualClock) -> None:
    """On first heartbeat friends get `presence online`; non-friends get nothing."""
    alice, bob, stranger = await server.users(3)
    await befriend(alice, bob)
    bob_socket = await online(server, bob)
    stranger_socket = await online(server, stranger)
    alice_socket = await online(server, alice)
    try:
        frame = await bob_socket.expect("presence")
        assert frame == {
            "type": "presence",
            "user_id": alice.user_id,
            "status": "online",
            "last_active_at": clock.now_ms(),
        }
        assert await stranger_socket.silent(0.1)
        assert (await friend_status(bob, alice.user_id))["status"] == "online"
    finally:
        for socket in (alice_socket, bob_socket, stranger_socket):
            await socket.close()


async def test_offline_after_the_timeout(server: RunningServer, clock: ManualClock) -> None:
    """No heartbeat for 30 s (a manual clock, no sleeping): friends see `offline`."""
    alice, bob = await server.users(2)
    await befriend(alice, bob)
    bob_socket = await online(server, bob)
    alice_socket = await online(server, alice)
    heard_at = clock.now_ms()
    try:
        assert (await bob_socket.expect("presence"))["status"] == "online"
        clock.advance(29)
        await server.expire_presence()
        await server.settle()
        assert await bob_socket.silent(0.1)
        clock.advance(2)
        await server.expire_presence()
        await server.settle()
        frame = await bob_socket.expect("presence")
        assert (frame["status"], frame["last_active_at"]) == ("offline", heard_at)
    finally:
        await alice_socket.close()
        await bob_socket.close()


async def test_a_quick_reconnect_never_shows_offline(
    server: RunningServer, clock: ManualClock
) -> None:
    """A dropped connection that comes back within the timeout never flaps to offline."""
    alice, bob = await server.users(2)
    await befriend(alice, bob)
    bob_socket = await online(server, bob)
    first = await online(server, alice)
    assert (await bob_socket.expect("presence"))["status"] == "online"
    await first.close()
    clock.advance(20)
    await server.expire_presence()
    second = await online(server, alice)
    clock.advance(20)
    await server.expire_presence()
    await server.settle()
    try:
        assert await bob_socket.silent(0.1)
        assert (await friend_status(bob, alice.user_id))["status"] == "online"
    finally:
        await second.close()
        await bob_socket.close()


async def test_logout_offline_at_once_only_for_the_last_device(server: RunningServer) -> None:
    """Logging out one of two live devices keeps the user online; the last makes them offline."""
    alice, bob = await server.user("alice"), await server.user()
    tablet = await server.device("alice")
    await befriend(alice, bob)
    bob_socket = await online(server, bob)
    sockets = [await online(server, alice), await online(server, tablet)]
    assert (await bob_socket.expect("presence"))["status"] == "online"
    await tablet.logout()
    await server.settle()
    assert await bob_socket.silent(0.1)
    await alice.logout()
    await server.settle()
    assert (await bob_socket.expect("presence"))["status"] == "offline"
    for socket in (*sockets, bob_socket):
        await socket.close()


async def test_group_presence_on_demand(server: RunningServer) -> None:
    """GET /channels/{id}/presence lists every member's presence; non-members are refused."""
    alice, bob, carol, outsider = await server.users(4)
    group = await alice.create_group("g", [bob.user_id, carol.user_id])
    socket = await online(server, bob)
    answer = await alice.request("GET", f"/api/v1/channels/{group.channel_id}/presence")
    statuses = {p["user_id"]: p["status"] for p in answer["presence"]}
    assert statuses == {alice.user_id: "offline", bob.user_id: "online", carol.user_id: "offline"}
    with pytest.raises(ChatApiError) as caught:
        await outsider.request("GET", f"/api/v1/channels/{group.channel_id}/presence")
    assert caught.value.code == "not_member"
    await socket.close()


async def test_presence_after_a_restart(tmp_path: Path) -> None:
    """After a restart everyone is offline until they heartbeat; last_active_at is kept."""
    clock = ManualClock()
    async with run_server(tmp_path / "d", clock=clock) as first:
        alice, bob = await first.users(2)
        await befriend(alice, bob)
        socket = await online(first, alice)
        seen_at = clock.now_ms()
        assert (await friend_status(bob, alice.user_id))["status"] == "online"
        await socket.close()
        token = bob.token
    clock.advance(3600)
    async with run_server(tmp_path / "d", clock=clock) as second:
        bob_again = second.client(token)
        status = await friend_status(bob_again, alice.user_id)
        assert (status["status"], status["last_active_at"]) == ("offline", seen_at)
