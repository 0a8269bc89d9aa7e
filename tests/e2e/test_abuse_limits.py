"""Abuse limits: origins, send rates, connection counts, signups, and logins that must not
stall delivery. Each limit is configurable and counted in /metrics."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import pytest

from chatapp.client import ChatApiError, ChatClient
from chatapp.testing import RawSocket, run_server


async def metric(client: ChatClient, line_start: str) -> str:
    text = (await client.raw_request("GET", "/metrics")).text
    (line,) = [line for line in text.splitlines() if line.startswith(line_start)]
    return line


async def handshake_status(ws_url: str, origin: str | None) -> int:
    headers = {"Origin": origin} if origin else {}
    async with aiohttp.ClientSession() as session:
        try:
            socket = await session.ws_connect(ws_url, headers=headers)
        except aiohttp.WSServerHandshakeError as error:
            return error.status
        await socket.close()
        return 101


async def test_websocket_from_a_foreign_origin_is_refused(tmp_path: Path) -> None:
    """Cross-site WebSocket hijacking: a foreign Origin gets 403; ours, allowed, none pass."""
    async with run_server(tmp_path / "d", allowed_origins=["https://app.example.org"]) as server:
        own = server.url
        assert await handshake_status(server.ws_url, "https://evil.example") == 403
        assert await handshake_status(server.ws_url, "null") == 403
        assert await handshake_status(server.ws_url, own) == 101
        assert await handshake_status(server.ws_url, "https://app.example.org") == 101
        assert await handshake_status(server.ws_url, None) == 101
        client = server.client()
        assert await metric(client, 'chatapp_rate_limited_total{limit="origin"}') == (
            'chatapp_rate_limited_total{limit="origin"} 2.0'
        )


async def test_sends_per_user_are_rate_limited(tmp_path: Path) -> None:
    """Past the token bucket, sends get rate_limited (429 / error frame), never a silent drop."""
    async with run_server(tmp_path / "d", send_rate_per_second=0.001, send_burst=3) as server:
        alice, bob = await server.users(2)
        channel_id = (await alice.open_direct(bob.user_id)).channel_id
        for i in range(3):
            await alice.send_message(channel_id, "ok", client_msg_id=f"ok{i}")
        with pytest.raises(ChatApiError) as caught:
            await alice.send_message(channel_id, "too many", client_msg_id="http-over")
        assert (caught.value.status, caught.value.code) == (429, "rate_limited")
        assert caught.value.retry_after is not None
        await server.settle()
        raw = await RawSocket.open(server.ws_url, alice.token or "")
        await raw.until("synced")
        await raw.send(
            {"type": "send", "client_msg_id": "ws-over", "channel_id": channel_id, "text": "x"}
        )
        error = await raw.expect("error")
        assert (error["code"], error["client_msg_id"]) == ("rate_limited", "ws-over")
        # A retry of a stored send is answered, not limited: it stores nothing.
        await raw.send(
            {"type": "send", "client_msg_id": "ok0", "channel_id": channel_id, "text": "ok"}
        )
        assert (await raw.expect("ack"))["message"]["message_id"] == 1
        await raw.close()
        # Bob has his own bucket.
        await bob.send_message(channel_id, "mine", client_msg_id="bob")
        history = await bob.messages(channel_id)
        assert [m.client_msg_id for m in history.messages] == ["ok0", "ok1", "ok2", "bob"]
        assert await metric(bob, 'chatapp_rate_limited_total{limit="sends"}') == (
            'chatapp_rate_limited_total{limit="sends"} 1.0'
        )


async def test_live_connections_are_limited(tmp_path: Path) -> None:
    """Too many sockets for one user, or in all, are closed with 4429 and counted."""
    async with run_server(tmp_path / "d", max_connections_per_user=2, max_connections=3) as server:
        alice, bob = await server.users(2)
        first = [await RawSocket.open(server.ws_url, alice.token or "") for _ in range(2)]
        third = await RawSocket.connect(server.ws_url)
        await third.send({"type": "hello", "token": alice.token})
        assert await third.closed_with() == 4429
        await third.close()
        bobs = await RawSocket.open(server.ws_url, bob.token or "")
        fourth = await RawSocket.connect(server.ws_url)
        assert await fourth.closed_with() == 4429
        await fourth.close()
        for socket in (*first, bobs):
            await socket.close()
        client = server.client()
        assert await metric(client, 'chatapp_rate_limited_total{limit="connections_per_user"}')
        assert await metric(client, 'chatapp_rate_limited_total{limit="connections_total"}')


async def test_signups_per_address_are_limited(tmp_path: Path) -> None:
    """More signups from one address than allowed get 429 with Retry-After."""
    async with run_server(tmp_path / "d", signups_per_address=2) as server:
        client = server.client()
        await client.signup("one", "password1")
        await client.signup("two", "password1")
        with pytest.raises(ChatApiError) as caught:
            await client.signup("three", "password1")
        assert (caught.value.status, caught.value.code) == (429, "rate_limited")


async def test_a_login_storm_does_not_stall_delivery(tmp_path: Path) -> None:
    """Real argon2id cost (OWASP minimum) in a bounded pool: messages flow during 40 logins."""
    async with run_server(
        tmp_path / "d", password_hash_time_cost=2, password_hash_memory_kib=19456
    ) as server:
        alice, bob = await server.users(2)
        channel_id = (await alice.open_direct(bob.user_id)).channel_id
        await server.settle()
        receiver = await RawSocket.open(server.ws_url, bob.token or "")
        await receiver.until("synced")

        async def round_trip(i: int) -> float:
            started = time.perf_counter()
            await alice.send_message(channel_id, "ping", client_msg_id=f"p{i}")
            await receiver.expect("message")
            return time.perf_counter() - started

        quiet = [await round_trip(i) for i in range(5)]
        storm = asyncio.gather(
            *(server.client().login(alice.login_answer.user.username, "correct horse battery")  # type: ignore[union-attr]
              for _ in range(40))
        )  # fmt: skip
        during: list[float] = []
        while not storm.done():
            during.append(await round_trip(100 + len(during)))
        await storm
        await receiver.close()
        assert during, "the storm ended before any message was sent"
        # Generous: hashing 40 passwords takes seconds of CPU, a message must not wait for it.
        assert max(during) < max(0.5, 20 * max(quiet))


async def test_limits_behind_a_trusted_proxy_count_clients(tmp_path: Path) -> None:
    """Behind a trusted proxy each forwarded client has its own login budget."""
    async with run_server(
        tmp_path / "d", login_attempts_per_address=2, trusted_proxies=["127.0.0.1"]
    ) as server:
        client = server.client()
        await client.signup("zoe", "password1")
        for address in ("198.51.100.1", "198.51.100.2"):
            for _ in range(2):
                answer = await client.raw_request(
                    "POST",
                    "/api/v1/auth/login",
                    data='{"username": "zoe", "password": "password1"}',
                    headers={"X-Forwarded-For": address},
                )
                assert answer.status == 200
        third = await client.raw_request(
            "POST",
            "/api/v1/auth/login",
            data='{"username": "zoe", "password": "password1"}',
            headers={"X-Forwarded-For": "198.51.100.1"},
        )
        assert third.status == 429


async def test_group_creation_and_member_adds_are_rate_limited(tmp_path: Path) -> None:
    """Putting people into groups is counted per user: past the limit, 429 with Retry-After
    (and 'try again in' never says 0.0 s); another user has a bucket of their own."""
    async with run_server(tmp_path / "d", group_changes_per_user=3) as server:
        alice, bob, carol, dave = await server.users(4)
        group = await alice.request(
            "POST", "/api/v1/channels/group", {"name": "g", "member_ids": [bob.user_id]}
        )
        path = f"/api/v1/channels/{group['channel']['channel_id']}/members"
        await alice.request("POST", path, {"user_id": carol.user_id})
        await alice.request("POST", "/api/v1/channels/group", {"name": "h", "member_ids": []})
        with pytest.raises(ChatApiError) as caught:
            await alice.request("POST", path, {"user_id": dave.user_id})
        assert (caught.value.status, caught.value.code) == (429, "rate_limited")
        assert caught.value.retry_after is not None
        assert "in 0.0 s" not in str(caught.value)
        await dave.request("POST", "/api/v1/channels/group", {"name": "d", "member_ids": []})
