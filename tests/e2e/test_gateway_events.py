"""Frames the server pushes on its own: channel changes, logouts, slow consumers."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp

from chatapp.testing import RawSocket, RunningServer, run_server


async def connect(server: RunningServer, token: str | None) -> RawSocket:
    # Channel events from set-up requests must not arrive on the new socket.
    await server.settle()
    raw = await RawSocket.open(server.ws_url, token or "")
    await raw.until("synced")
    return raw


async def test_channel_frames_follow_membership(chat_server: RunningServer) -> None:
    """Members' sockets get `channel` added/updated/removed as groups are made and changed."""
    owner, member, newcomer = await chat_server.users(3)
    sockets = [await connect(chat_server, c.token) for c in (owner, member, newcomer)]
    o, m, n = sockets
    try:
        created = await owner.request(
            "POST", "/api/v1/channels/group", {"name": "g", "member_ids": [member.user_id]}
        )
        channel_id = created["channel"]["channel_id"]
        for socket in (o, m):
            frame = await socket.expect("channel")
            assert (frame["event"], frame["channel"]["channel_id"]) == ("added", channel_id)
            assert frame["channel"]["members"] == sorted([owner.user_id, member.user_id])
        assert await n.silent(0.1)

        await owner.request(
            "POST", f"/api/v1/channels/{channel_id}/members", {"user_id": newcomer.user_id}
        )
        added = await n.expect("channel")
        assert added["event"] == "added"
        assert added["channel"]["unread_count"] == 0
        for socket in (o, m):
            assert (await socket.expect("channel"))["event"] == "updated"

        await owner.request("PATCH", f"/api/v1/channels/{channel_id}", {"name": "renamed"})
        for socket in sockets:
            frame = await socket.expect("channel")
            assert (frame["event"], frame["channel"]["name"]) == ("updated", "renamed")

        await member.request("DELETE", f"/api/v1/channels/{channel_id}/members/{member.user_id}")
        removed = await m.expect("channel")
        assert removed["event"] == "removed"
        assert member.user_id not in removed["channel"]["members"]
        for socket in (o, n):
            assert (await socket.expect("channel"))["event"] == "updated"
    finally:
        for socket in sockets:
            await socket.close()


async def test_channel_frames_carry_the_last_messages_preview(chat_server: RunningServer) -> None:
    """A `channel` frame is the same channel object as the HTTP answers: with `last_message`,
    null before any message and the text cut to 200 characters after a long one."""
    owner, member = await chat_server.users(2)
    sockets = [await connect(chat_server, c.token) for c in (owner, member)]
    try:
        created = await owner.request(
            "POST", "/api/v1/channels/group", {"name": "g", "member_ids": [member.user_id]}
        )
        channel_id = created["channel"]["channel_id"]
        for socket in sockets:
            assert (await socket.expect("channel"))["channel"]["last_message"] is None
        await owner.request(
            "POST",
            f"/api/v1/channels/{channel_id}/messages",
            {"client_msg_id": "long", "text": "😀" * 1_000},
        )
        for socket in sockets:
            await socket.expect("message")

        await owner.request("PATCH", f"/api/v1/channels/{channel_id}", {"name": "renamed"})
        for socket in sockets:
            preview = (await socket.expect("channel"))["channel"]["last_message"]
            assert (preview["message_id"], preview["sender_id"]) == (1, owner.user_id)
            assert (preview["text"], preview["truncated"]) == ("😀" * 200, True)
    finally:
        for socket in sockets:
            await socket.close()


async def test_logout_closes_that_devices_sockets(chat_server: RunningServer) -> None:
    """Logout closes that device's WebSockets with 4401; the user's other devices stay."""
    phone = await chat_server.user("alice")
    laptop = await chat_server.device("alice")
    p = await connect(chat_server, phone.token)
    lap = await connect(chat_server, laptop.token)
    try:
        await phone.logout()
        assert await p.closed_with() == 4401
        await lap.send({"type": "heartbeat"})
        assert (await lap.expect("heartbeat_ack"))["type"] == "heartbeat_ack"
        await laptop.revoke_device(laptop.device_id)
        assert await lap.closed_with() == 4401
    finally:
        await p.close()
        await lap.close()


async def test_a_client_that_never_reads_is_dropped(tmp_path: Path) -> None:
    """A socket that stops reading is disconnected when its queue fills; others are not held up."""
    async with run_server(tmp_path / "d", connection_queue_size=16) as server:
        alice, bob, carol = await server.users(3)
        answer = await alice.request(
            "POST",
            "/api/v1/channels/group",
            {"name": "g", "member_ids": [bob.user_id, carol.user_id]},
        )
        path = f"/api/v1/channels/{answer['channel']['channel_id']}/messages"
        carol_socket = await connect(server, carol.token)
        # Bob's client says hello and then never reads: aiohttp stops taking
        # bytes off the socket once its own small buffer is full, so the
        # server's writes back up into Bob's queue.
        async with aiohttp.ClientSession() as session:
            stalled = await session.ws_connect(server.ws_url)
            await stalled.send_json({"type": "hello", "token": bob.token})
            latencies = []
            text = "x" * 60_000
            for i in range(300):
                started = time.perf_counter()
                await alice.request("POST", path, {"client_msg_id": f"m{i}", "text": text})
                frame = await carol_socket.expect("message", timeout=10)
                assert frame["message"]["client_msg_id"] == f"m{i}"
                latencies.append(time.perf_counter() - started)
            async with asyncio.timeout(10):
                while (await stalled.receive()).type is aiohttp.WSMsgType.TEXT:
                    pass
            assert stalled.close_code == 1013
        counted = 'chatapp_rate_limited_total{limit="slow_consumer"} 1.0'
        # The server's handler ends just after the close; /metrics is polled
        # because it is what an operator sees (no event to wait on exists).
        async with asyncio.timeout(5):
            while counted not in (await alice.raw_request("GET", "/metrics")).text:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        await carol_socket.send({"type": "heartbeat"})
        assert (await carol_socket.expect("heartbeat_ack"))["type"] == "heartbeat_ack"
        await carol_socket.close()
        # Generous: the point is that Carol never waits on Bob's full socket.
        assert max(latencies) < 2.0
