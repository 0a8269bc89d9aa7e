"""The WebSocket gateway, frame by frame, through a real server and real sockets."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from chatapp.client import ChatClient
from chatapp.testing import RawSocket, RunningServer, run_server


async def direct_channel(a: ChatClient, b: ChatClient) -> int:
    answer = await a.request("POST", "/api/v1/channels/direct", {"user_id": b.user_id})
    channel_id: int = answer["channel"]["channel_id"]
    return channel_id


async def connect(server: RunningServer, client: ChatClient, **kwargs: Any) -> RawSocket:
    # Channel events from set-up requests must not arrive on the new socket.
    await server.settle()
    raw = await RawSocket.open(server.ws_url, client.token or "", **kwargs)
    await raw.until("synced")
    return raw


def send_frame(channel_id: int, cmid: str, text: str, ref: str | None = None) -> dict[str, Any]:
    frame: dict[str, Any] = {
        "type": "send",
        "client_msg_id": cmid,
        "channel_id": channel_id,
        "text": text,
    }
    if ref is not None:
        frame["ref"] = ref
    return frame


async def test_hello_answers_ready_then_synced(chat_server: RunningServer) -> None:
    """hello → ready {user_id, device_id, heartbeat_interval_ms, max_seq} → synced, refs echoed."""
    alice = await chat_server.user()
    raw = await RawSocket.open(chat_server.ws_url, alice.token or "", ref="h1")
    try:
        assert raw.ready == {
            "type": "ready",
            "user_id": alice.user_id,
            "device_id": alice.device_id,
            "heartbeat_interval_ms": 5000,
            "max_seq": 0,
            "ref": "h1",
        }
        assert await raw.expect("synced") == {
            "type": "synced",
            "seq": 0,
            "has_more": False,
            "ref": "h1",
        }
        await raw.send({"type": "heartbeat", "ref": "hb"})
        assert await raw.expect("heartbeat_ack") == {"type": "heartbeat_ack", "ref": "hb"}
    finally:
        await raw.close()


async def test_two_users_with_two_devices_each(chat_server: RunningServer) -> None:
    """Every device gets every message once, in order; the sending connection only its ack."""
    alice, bob = await chat_server.user("alice"), await chat_server.user("bob")
    alice2, bob2 = await chat_server.device("alice"), await chat_server.device("bob")
    channel_id = await direct_channel(alice, bob)
    sockets = [await connect(chat_server, c) for c in (alice, alice2, bob, bob2)]
    a1, a2, b1, b2 = sockets
    try:
        for i in range(5):
            await a1.send(send_frame(channel_id, f"a{i}", f"from alice {i}", ref=f"r{i}"))
            await b1.send(send_frame(channel_id, f"b{i}", f"from bob {i}"))
        acks_a = [await a1.receive() for _ in range(10)]
        acks_b = [await b1.receive() for _ in range(10)]
        seen = {
            name: [await s.receive() for _ in range(10)] for name, s in (("a2", a2), ("b2", b2))
        }
        for frames, own, other in ((acks_a, "a", "b"), (acks_b, "b", "a")):
            acks = [f for f in frames if f["type"] == "ack"]
            messages = [f for f in frames if f["type"] == "message"]
            assert [a["client_msg_id"] for a in acks] == [f"{own}{i}" for i in range(5)]
            assert [m["message"]["client_msg_id"] for m in messages] == [
                f"{other}{i}" for i in range(5)
            ]
        assert [a["ref"] for a in acks_a if a["type"] == "ack"] == [f"r{i}" for i in range(5)]
        for frames in seen.values():
            assert all(f["type"] == "message" for f in frames)
            seqs = [f["seq"] for f in frames]
            assert seqs == list(range(1, 11))
            ids = [f["message"]["message_id"] for f in frames]
            assert ids == list(range(1, 11))
        for socket in sockets:
            assert await socket.silent(0.1)
    finally:
        for socket in sockets:
            await socket.close()


async def test_group_of_100_reaches_every_device_once(chat_server: RunningServer) -> None:
    """A message to a 100-member group reaches each member's connected device exactly once."""
    members = await chat_server.users(100)
    owner = members[0]
    answer = await owner.request(
        "POST",
        "/api/v1/channels/group",
        {"name": "all hands", "member_ids": [m.user_id for m in members[1:]]},
    )
    channel_id = answer["channel"]["channel_id"]
    sockets = [await connect(chat_server, member) for member in members]
    try:
        await sockets[0].send(send_frame(channel_id, "hello-all", "hello everyone"))
        assert (await sockets[0].expect("ack"))["message"]["message_id"] == 1
        received = await asyncio.gather(*(s.expect("message") for s in sockets[1:]))
        assert {frame["message"]["client_msg_id"] for frame in received} == {"hello-all"}
        assert all(frame["seq"] == 1 for frame in received)
        silent = await asyncio.gather(*(s.silent(0.05) for s in sockets))
        assert all(silent)
    finally:
        await asyncio.gather(*(s.close() for s in sockets))


async def test_concurrent_senders_keep_ids_contiguous(chat_server: RunningServer) -> None:
    """Five senders at once: message ids are 1..N, each sender's order kept, seqs contiguous."""
    members = await chat_server.users(5)
    answer = await members[0].request(
        "POST",
        "/api/v1/channels/group",
        {"name": "busy", "member_ids": [m.user_id for m in members[1:]]},
    )
    channel_id = answer["channel"]["channel_id"]
    sockets = [await connect(chat_server, member) for member in members]
    per_sender = 40
    try:
        for index, socket in enumerate(sockets):
            for i in range(per_sender):
                await socket.send(send_frame(channel_id, f"s{index}-{i}", f"{index}:{i}"))

        async def collect(socket: RawSocket) -> list[dict[str, Any]]:
            return [await socket.receive() for _ in range(per_sender * len(sockets))]

        streams = await asyncio.gather(*(collect(s) for s in sockets))
    finally:
        await asyncio.gather(*(s.close() for s in sockets))
    history = await members[0].request(
        "GET", f"/api/v1/channels/{channel_id}/messages", params={"limit": "200"}
    )
    messages = history["messages"]
    assert [m["message_id"] for m in messages] == list(range(1, per_sender * 5 + 1))
    for index in range(5):
        mine = [m["text"] for m in messages if m["text"].startswith(f"{index}:")]
        assert mine == [f"{index}:{i}" for i in range(per_sender)]
    for stream in streams:
        seqs = sorted(frame["seq"] for frame in stream)
        assert seqs == list(range(1, per_sender * 5 + 1))


async def test_limits_on_the_socket_leave_it_usable(chat_server: RunningServer) -> None:
    """100,000 characters round-trip; 100,001 and empty get their errors; the socket goes on."""
    alice, bob = await chat_server.user(), await chat_server.user()
    channel_id = await direct_channel(alice, bob)
    a, b = await connect(chat_server, alice), await connect(chat_server, bob)
    try:
        text = ("é😀中 " * 25_000)[:100_000]
        await a.send(send_frame(channel_id, "big", text))
        assert (await a.expect("ack"))["message"]["text"] == text
        assert (await b.expect("message"))["message"]["text"] == text
        await a.send(send_frame(channel_id, "too-big", "x" * 100_001, ref="r1"))
        error = await a.expect("error")
        assert (error["code"], error["ref"], error["client_msg_id"]) == (
            "text_too_long",
            "r1",
            "too-big",
        )
        await a.send(send_frame(channel_id, "empty", ""))
        assert (await a.expect("error"))["code"] == "text_empty"
        await a.send(send_frame(channel_id, "after", "still here"))
        assert (await a.expect("ack"))["message"]["message_id"] == 2
    finally:
        await a.close()
        await b.close()


async def test_escaped_maximum_fits_in_a_frame(chat_server: RunningServer) -> None:
    """100,000 emoji sent as \\uXXXX surrogate pairs (1.2 MB of JSON) is accepted."""
    alice, bob = await chat_server.user(), await chat_server.user()
    channel_id = await direct_channel(alice, bob)
    a = await connect(chat_server, alice)
    try:
        frame = json.dumps(send_frame(channel_id, "escaped", "😀" * 100_000), ensure_ascii=True)
        assert len(frame) > 1_200_000
        await a.socket.send_str(frame)
        assert len((await a.expect("ack"))["message"]["text"]) == 100_000
    finally:
        await a.close()


async def test_bad_frames_get_errors_and_the_socket_stays(chat_server: RunningServer) -> None:
    """Malformed frames each get an `error` (with ref when readable) and the connection goes on."""
    alice, bob = await chat_server.user(), await chat_server.user()
    channel_id = await direct_channel(alice, bob)
    a = await connect(chat_server, alice)
    try:
        cases: list[str] = [
            "not json",
            "[1, 2, 3]",
            json.dumps({"type": "fly", "ref": "x1"}),
            json.dumps({"ref": "x2"}),
            json.dumps(
                {"type": "send", "ref": "x3", "channel_id": "1", "text": "a", "client_msg_id": "c"}
            ),
            json.dumps(
                {"type": "send", "ref": "x4", "channel_id": channel_id, "client_msg_id": "c"}
            ),
            json.dumps({"type": "sync", "since": -1, "ref": "x5"}),
            json.dumps({"type": "read", "channel_id": 2**60, "message_id": 1, "ref": "x6"}),
            json.dumps({"type": "hello", "token": alice.token, "ref": "x7"}),
        ]
        for case in cases:
            await a.socket.send_str(case)
            error = await a.expect("error")
            assert error["code"] == "bad_request"
        await a.socket.send_bytes(b"\x00\x01")
        assert (await a.expect("error"))["code"] == "bad_request"
        await a.send(send_frame(channel_id, "ok", "fine"))
        assert (await a.expect("ack"))["client_msg_id"] == "ok"
    finally:
        await a.close()


async def test_hello_is_required(tmp_path: Path) -> None:
    """No hello in time closes with 4408; a bad token or another first frame with 4401."""
    async with run_server(tmp_path / "d", hello_timeout_ms=200) as server:
        silent = await RawSocket.connect(server.ws_url)
        assert await silent.closed_with() == 4408
        await silent.close()
        for first in [
            {"type": "hello", "token": "nope"},
            {"type": "heartbeat"},
            {"type": "hello"},
        ]:
            raw = await RawSocket.connect(server.ws_url)
            await raw.send(first)
            assert await raw.closed_with() == 4401
            await raw.close()


async def test_oversized_frame_closes_with_1009(chat_server: RunningServer) -> None:
    """A frame over 2 MiB closes the connection with 1009; the server serves others on."""
    alice = await chat_server.user()
    raw = await connect(chat_server, alice)
    await raw.socket.send_str(json.dumps({"type": "heartbeat", "pad": "x" * (2 * 1024 * 1024)}))
    assert await raw.closed_with() == 1009
    await raw.close()
    again = await connect(chat_server, alice)
    await again.send({"type": "heartbeat"})
    assert (await again.expect("heartbeat_ack"))["type"] == "heartbeat_ack"
    await again.close()


async def test_non_member_cannot_send(chat_server: RunningServer) -> None:
    """A send to a channel the user is not in is refused with not_member; unknown is not_found."""
    alice, bob, mallory = await chat_server.users(3)
    channel_id = await direct_channel(alice, bob)
    raw = await connect(chat_server, mallory)
    try:
        await raw.send(send_frame(channel_id, "x", "let me in"))
        assert (await raw.expect("error"))["code"] == "not_member"
        await raw.send(send_frame(424242, "y", "anyone?"))
        assert (await raw.expect("error"))["code"] == "not_found"
        await raw.send({"type": "typing", "channel_id": channel_id})
        assert (await raw.expect("error"))["code"] == "not_member"
        await raw.send({"type": "read", "channel_id": channel_id, "message_id": 1})
        assert (await raw.expect("error"))["code"] == "not_member"
    finally:
        await raw.close()


async def test_same_client_msg_id_on_two_connections_is_one_message(
    chat_server: RunningServer,
) -> None:
    """The same client_msg_id from two devices of one user stores one message."""
    alice, bob = await chat_server.user("alice"), await chat_server.user()
    phone = await chat_server.device("alice")
    channel_id = await direct_channel(alice, bob)
    a, p = await connect(chat_server, alice), await connect(chat_server, phone)
    try:
        await a.send(send_frame(channel_id, "same", "once"))
        first = await a.expect("ack")
        await p.expect("message")
        await p.send(send_frame(channel_id, "same", "twice?"))
        second = await p.expect("ack")
        assert second["message"] == first["message"]
        assert second["seq"] == first["seq"]
        assert await a.silent(0.1)
    finally:
        await a.close()
        await p.close()
    history = await bob.request("GET", f"/api/v1/channels/{channel_id}/messages")
    assert [m["text"] for m in history["messages"]] == ["once"]


async def test_offline_device_catches_up_in_batches(chat_server: RunningServer) -> None:
    """A device back after 1,205 messages gets them all: hello + sync, at most 1,000 a batch."""
    alice, bob = await chat_server.user(), await chat_server.user()
    channel_id = await direct_channel(alice, bob)
    path = f"/api/v1/channels/{channel_id}/messages"
    await asyncio.gather(
        *(
            alice.request("POST", path, {"client_msg_id": f"m{i}", "text": f"{i}"})
            for i in range(1205)
        )
    )
    await chat_server.settle()
    raw = await RawSocket.open(chat_server.ws_url, bob.token or "", last_seq=3)
    try:
        assert raw.ready["max_seq"] == 1205
        batch = await raw.until("synced", timeout=20)
        assert batch[-1] == {"type": "synced", "seq": 1003, "has_more": True}
        await raw.send({"type": "sync", "since": 1003, "ref": "more"})
        rest = await raw.until("synced", timeout=20)
        assert rest[-1] == {"type": "synced", "seq": 1205, "has_more": False, "ref": "more"}
        seqs = [f["seq"] for f in batch[:-1] + rest[:-1]]
        assert seqs == list(range(4, 1206))
    finally:
        await raw.close()
    via_http = await bob.request("GET", "/api/v1/sync", params={"since": "3", "limit": "1000"})
    assert [e["seq"] for e in via_http["events"]] == list(range(4, 1004))
    assert via_http["has_more"] is True


async def test_hello_without_last_seq_replays_nothing(chat_server: RunningServer) -> None:
    """A new device (no last_seq) starts from now: no replay, then live messages."""
    alice, bob = await chat_server.user(), await chat_server.user()
    channel_id = await direct_channel(alice, bob)
    await alice.request(
        "POST", f"/api/v1/channels/{channel_id}/messages", {"client_msg_id": "old", "text": "old"}
    )
    await chat_server.settle()
    raw = await RawSocket.open(chat_server.ws_url, bob.token or "")
    try:
        assert await raw.expect("synced") == {"type": "synced", "seq": 1, "has_more": False}
        await alice.request(
            "POST",
            f"/api/v1/channels/{channel_id}/messages",
            {"client_msg_id": "new", "text": "new"},
        )
        frame = await raw.expect("message")
        assert (frame["seq"], frame["message"]["text"]) == (2, "new")
    finally:
        await raw.close()


async def test_http_send_reaches_all_of_the_senders_sockets(chat_server: RunningServer) -> None:
    """A send over HTTP has no sending connection: every socket of the sender gets `message`."""
    alice, bob = await chat_server.user(), await chat_server.user()
    channel_id = await direct_channel(alice, bob)
    a = await connect(chat_server, alice)
    try:
        await alice.request(
            "POST", f"/api/v1/channels/{channel_id}/messages", {"client_msg_id": "h", "text": "x"}
        )
        assert (await a.expect("message"))["message"]["client_msg_id"] == "h"
    finally:
        await a.close()


async def test_read_markers_reach_the_users_other_devices(chat_server: RunningServer) -> None:
    """A `read` frame moves the marker; the user's other devices get `read`, the reader none."""
    alice, bob = await chat_server.user("alice"), await chat_server.user()
    channel_id = await direct_channel(alice, bob)
    tablet = await chat_server.device("alice")
    for i in range(3):
        await bob.request(
            "POST",
            f"/api/v1/channels/{channel_id}/messages",
            {"client_msg_id": f"b{i}", "text": "x"},
        )
    a, t = await connect(chat_server, alice), await connect(chat_server, tablet)
    try:
        await a.send({"type": "read", "channel_id": channel_id, "message_id": 2})
        assert await t.expect("read") == {"type": "read", "channel_id": channel_id, "message_id": 2}
        assert await a.silent(0.1)
        await a.send({"type": "read", "channel_id": channel_id, "message_id": 1})
        assert await t.silent(0.1)
        channel = (await alice.request("GET", f"/api/v1/channels/{channel_id}"))["channel"]
        assert channel["read_message_id"] == 2
        await alice.request("POST", f"/api/v1/channels/{channel_id}/read", {"message_id": 3})
        assert (await a.expect("read"))["message_id"] == 3
        assert (await t.expect("read"))["message_id"] == 3
    finally:
        await a.close()
        await t.close()


async def test_typing_reaches_other_members_only(chat_server: RunningServer) -> None:
    """`typing` goes to the other members' devices, not to the typer's own devices."""
    alice, bob = await chat_server.user("alice"), await chat_server.user()
    laptop = await chat_server.device("alice")
    channel_id = await direct_channel(alice, bob)
    a, lap, b = [await connect(chat_server, c) for c in (alice, laptop, bob)]
    try:
        await a.send({"type": "typing", "channel_id": channel_id})
        assert await b.expect("typing") == {
            "type": "typing",
            "channel_id": channel_id,
            "user_id": alice.user_id,
        }
        assert await lap.silent(0.1)
        assert await a.silent(0.05)
    finally:
        for socket in (a, lap, b):
            await socket.close()
