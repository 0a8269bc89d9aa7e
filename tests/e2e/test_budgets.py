"""Byte budgets: what one account can make the server hold is bounded, in bytes."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import aiohttp

from chatapp.client import ChatClient
from chatapp.testing import RawSocket, RunningServer, run_server

BIG = "😀" * 25_000  # 100,000 bytes of UTF-8 in 25,000 characters


async def group_of(server: RunningServer, owner: ChatClient, members: list[ChatClient]) -> int:
    answer = await owner.request(
        "POST",
        "/api/v1/channels/group",
        {"name": "g", "member_ids": [member.user_id for member in members]},
    )
    channel_id: int = answer["channel"]["channel_id"]
    await server.settle()  # the members' `channel` frames go out before anyone connects
    return channel_id


async def outgoing_bytes(client: ChatClient) -> float:
    metrics = (await client.raw_request("GET", "/metrics")).text
    found = re.search(r"^chatapp_outgoing_bytes (\S+)$", metrics, flags=re.MULTILINE)
    assert found is not None
    return float(found.group(1))


async def test_a_socket_that_never_reads_is_closed_at_its_byte_budget(tmp_path: Path) -> None:
    """With room for 1,024 frames but 256 KiB, a stalled socket is closed 1013 by bytes,
    while a member who reads gets every message."""
    async with run_server(
        tmp_path / "d", connection_queue_size=1024, connection_queue_bytes=262_144
    ) as server:
        alice, bob, carol = await server.users(3)
        channel_id = await group_of(server, alice, [bob, carol])
        carol_socket = await RawSocket.open(server.ws_url, carol.token or "")
        await carol_socket.until("synced")
        async with aiohttp.ClientSession() as session:
            stalled = await session.ws_connect(server.ws_url)
            await stalled.send_json({"type": "hello", "token": bob.token})
            for n in range(100):
                await alice.send_message(channel_id, BIG, client_msg_id=f"m{n}")
                frame = await carol_socket.expect("message", timeout=10)
                assert frame["message"]["client_msg_id"] == f"m{n}"
                assert await outgoing_bytes(alice) <= 262_144 + 2 * 110_000
            async with asyncio.timeout(10):
                while (await stalled.receive()).type is aiohttp.WSMsgType.TEXT:
                    pass
            assert stalled.close_code == 1013
        await carol_socket.close()


async def test_the_server_wide_budget_closes_the_largest_holder(tmp_path: Path) -> None:
    """Several stalled sockets of one account cannot make the server hold more than its
    total: the one holding most is closed, and a member who reads is served throughout."""
    async with run_server(
        tmp_path / "d",
        connection_queue_bytes=4 * 1024 * 1024,
        outgoing_bytes_total=1024 * 1024,
    ) as server:
        alice, bob, carol = await server.users(3)
        channel_id = await group_of(server, alice, [bob, carol])
        carol_socket = await RawSocket.open(server.ws_url, carol.token or "")
        await carol_socket.until("synced")
        async with aiohttp.ClientSession() as session:
            stalled = []
            for _ in range(4):
                socket = await session.ws_connect(server.ws_url)
                await socket.send_json({"type": "hello", "token": bob.token})
                stalled.append(socket)
            for n in range(150):
                await alice.send_message(channel_id, BIG, client_msg_id=f"m{n}")
                frame = await carol_socket.expect("message", timeout=10)
                assert frame["message"]["client_msg_id"] == f"m{n}"
                assert await outgoing_bytes(alice) <= 1024 * 1024
            codes = []
            for socket in stalled:
                async with asyncio.timeout(10):
                    while (await socket.receive()).type is aiohttp.WSMsgType.TEXT:
                        pass
                codes.append(socket.close_code)
            assert codes == [1013] * 4
        await carol_socket.close()


async def test_sync_and_replay_stop_at_the_page_budget(tmp_path: Path) -> None:
    """/sync and a hello replay carry at most page_max_bytes of text (at least one entry),
    and say has_more; paging on reaches everything, in order."""
    async with run_server(tmp_path / "d", page_max_bytes=300_000) as server:
        alice, bob = await server.users(2)
        channel = await alice.open_direct(bob.user_id)
        for n in range(10):
            await alice.send_message(channel.channel_id, BIG, client_msg_id=f"m{n}")
        seqs: list[int] = []
        since = 0
        while True:
            query = {"since": str(since), "limit": "1000"}
            page = await bob.request("GET", "/api/v1/sync", params=query)
            assert 1 <= len(page["events"]) <= 3
            seqs += [entry["seq"] for entry in page["events"]]
            since = seqs[-1]
            if not page["has_more"]:
                break
        assert seqs == list(range(1, 11))
        history = await bob.request(
            "GET", f"/api/v1/channels/{channel.channel_id}/messages", params={"limit": "200"}
        )
        assert [m["message_id"] for m in history["messages"]] == [8, 9, 10]
        assert history["has_more"] is True
        replay = await RawSocket.open(server.ws_url, bob.token or "", last_seq=0)
        frames = await replay.until("synced")
        assert frames[-1]["has_more"] is True
        assert [f["seq"] for f in frames if f["type"] == "message"] == [1, 2, 3]
        await replay.close()


async def test_a_socket_that_says_nothing_is_closed_after_twice_the_presence_timeout(
    tmp_path: Path,
) -> None:
    """No frame for twice presence_timeout (heartbeats count): closed with 4408; one that
    heartbeats stays."""
    async with run_server(tmp_path / "d", presence_timeout_ms=300) as server:
        alice, bob = await server.users(2)
        silent = await RawSocket.open(server.ws_url, alice.token or "")
        beating = await RawSocket.open(server.ws_url, bob.token or "")
        await silent.until("synced")
        await beating.until("synced")
        loop = asyncio.get_running_loop()
        started = loop.time()
        while loop.time() - started < 0.9:
            await beating.send({"type": "heartbeat"})
            await beating.expect("heartbeat_ack")
            await asyncio.sleep(0.1)
        assert await silent.closed_with(timeout=2) == 4408
        await beating.send({"type": "heartbeat"})
        assert (await beating.expect("heartbeat_ack"))["type"] == "heartbeat_ack"
        await silent.close()
        await beating.close()


async def test_websocket_pings_are_answered_and_keep_a_socket_open(tmp_path: Path) -> None:
    """A WebSocket ping, before hello or after, gets its pong with the same payload, and
    counts as the client being there: a socket that pings stays past the idle period and
    is closed (4408) once it stops."""
    async with run_server(tmp_path / "d", presence_timeout_ms=300) as server:
        (alice,) = await server.users(1)
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(server.ws_url, autoping=False) as socket,
        ):
            await socket.ping(b"before hello")
            pong = await socket.receive(timeout=2)
            assert (pong.type, pong.data) == (aiohttp.WSMsgType.PONG, b"before hello")
            await socket.send_json({"type": "hello", "token": alice.token})
            kinds = [(await socket.receive_json(timeout=2))["type"] for _ in range(2)]
            assert kinds == ["ready", "synced"]
            loop = asyncio.get_running_loop()
            started = loop.time()
            while loop.time() - started < 0.9:  # past the 0.6 s idle period
                await socket.ping(b"p")
                pong = await socket.receive(timeout=2)
                assert (pong.type, pong.data) == (aiohttp.WSMsgType.PONG, b"p")
                await asyncio.sleep(0.1)
            closing = await socket.receive(timeout=2)
            assert closing.type is aiohttp.WSMsgType.CLOSE
            assert closing.data == 4408


async def test_metrics_show_the_budgets_and_the_event_loop_lag(tmp_path: Path) -> None:
    """/metrics carries the bytes held for sockets and how late the event loop ran."""
    async with run_server(tmp_path / "d") as server:
        client = await server.user()
        async with asyncio.timeout(5):
            while True:
                metrics = (await client.raw_request("GET", "/metrics")).text
                lag = re.search(r"^chatapp_event_loop_lag_seconds (\S+)$", metrics, re.M)
                if lag is not None and float(lag.group(1)) > 0:
                    break
                await asyncio.sleep(0.2)
        assert float(lag.group(1)) < 1.0
        assert await outgoing_bytes(client) == 0
