"""A session answers each frame on a connection, with the modules built on fakes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import structlog.testing

from chatapp.gateway import frames
from chatapp.gateway.connection import Connection
from chatapp.gateway.events import TypingStarted
from chatapp.gateway.session import REPLAY_BATCH, Session
from chatapp.presence import HeartbeatReceived
from chatapp.social import ReadMarkerMoved
from chatapp.testing.fakes import FakeSocket, ModulesOnFakes, build_modules_on_fakes


@dataclass
class Line:
    """Alice and Bob in a direct channel; Bob is connected, Carol is a stranger."""

    modules: ModulesOnFakes
    alice: int
    bob: int
    carol: int
    channel_id: int
    connection: Connection
    socket: FakeSocket
    session: Session

    async def handle(self, **frame: Any) -> None:
        """Parse the frame as the gateway does, then hand it to the session."""
        await self.session.handle(frames.parse_frame(json.dumps(frame)))

    async def answers(self, count: int) -> list[dict[str, Any]]:
        return await self.socket.wait_for_frames(count)


@pytest.fixture
async def line() -> AsyncIterator[Line]:
    modules = build_modules_on_fakes()
    alice, bob, carol = [await modules.sign_up(n) for n in ("alice", "bob", "carol")]
    channel, _ = await modules.social.open_direct(alice.user.user_id, bob.user.user_id)
    socket = FakeSocket()
    connection = Connection(
        socket,
        connection_id="node-1",
        user_id=bob.user.user_id,
        device_id=bob.device.device_id,
        queue_size=modules.settings.connection_queue_size,
    )
    session = Session(connection, modules.session_modules())
    yield Line(
        modules,
        alice.user.user_id,
        bob.user.user_id,
        carol.user.user_id,
        channel.channel_id,
        connection,
        socket,
        session,
    )
    await session.close()
    await connection.finish()


async def test_a_heartbeat_is_answered_and_reported_to_presence(line: Line) -> None:
    """heartbeat gets heartbeat_ack with its ref, and HeartbeatReceived names the device."""
    await line.handle(type="heartbeat", ref="h1")
    assert await line.answers(1) == [{"type": "heartbeat_ack", "ref": "h1"}]
    assert line.modules.bus.of_type(HeartbeatReceived) == [
        HeartbeatReceived(
            user_id=line.bob, device_id=line.connection.device_id, connection_id="node-1"
        )
    ]


def test_a_bare_heartbeat_parses_as_any_other_spelling_of_it() -> None:
    """The usual heartbeat text skips the JSON parse: it is the frame any spelling gives, and
    its ack is the one encoding gives."""
    assert frames.parse_frame(frames.BARE_HEARTBEAT_TEXT) == frames.parse_frame(
        '{ "type" : "heartbeat" }'
    )
    assert frames.encode({"type": "heartbeat_ack"}) == frames.HEARTBEAT_ACK


async def test_a_live_device_s_heartbeat_goes_to_presence_without_an_event(line: Line) -> None:
    """Once presence holds the device live, a heartbeat moves its deadline directly: it is
    answered as before and no HeartbeatReceived is published."""
    presence = line.modules.presence
    await presence.heartbeat(line.bob, line.connection.device_id)
    line.modules.clock.advance(20)
    await line.handle(type="heartbeat")
    assert await line.answers(1) == [{"type": "heartbeat_ack"}]
    assert line.modules.bus.of_type(HeartbeatReceived) == []
    line.modules.clock.advance(20)  # past the first heartbeat's timeout, not this one's
    assert await presence.expire_due() == 0
    assert presence.is_online(line.bob)


async def test_a_read_frame_moves_the_marker_no_further_than_the_last_message(
    line: Line,
) -> None:
    """read moves the marker (up to the channel's last message, whatever was asked),
    publishes ReadMarkerMoved from this connection, and sends no answer."""
    for n in range(1, 4):
        await line.modules.messaging.accept(line.alice, line.channel_id, f"m{n}", "hi")
    await line.handle(type="read", channel_id=line.channel_id, message_id=2)
    await line.handle(type="read", channel_id=line.channel_id, message_id=99)
    await line.handle(type="heartbeat")

    assert await line.modules.social.read_marker(line.bob, line.channel_id) == 3
    assert [
        (e.message_id, e.origin_connection) for e in line.modules.bus.of_type(ReadMarkerMoved)
    ] == [
        (2, "node-1"),
        (3, "node-1"),
    ]
    assert [frame["type"] for frame in await line.answers(1)] == ["heartbeat_ack"]


async def test_typing_is_published_with_the_channels_members(line: Line) -> None:
    """typing publishes TypingStarted naming the typer and every member, sorted."""
    await line.handle(type="typing", channel_id=line.channel_id)
    assert line.modules.bus.of_type(TypingStarted) == [
        TypingStarted(
            channel_id=line.channel_id,
            user_id=line.bob,
            member_ids=tuple(sorted((line.alice, line.bob))),
        )
    ]


async def test_a_refusal_becomes_an_error_frame_and_the_session_goes_on(line: Line) -> None:
    """Typing in a channel of others is not_member, in a missing one not_found; both are
    error frames with the ref, and the next frame is answered as usual."""
    other, _ = await line.modules.social.open_direct(line.alice, line.carol)
    await line.handle(type="typing", channel_id=other.channel_id, ref="t1")
    await line.handle(type="read", channel_id=999, message_id=1, ref="r1")
    await line.handle(type="heartbeat", ref="h1")

    first, second, third = await line.answers(3)
    assert (first["type"], first["code"], first["ref"]) == ("error", "not_member", "t1")
    assert (second["type"], second["code"], second["ref"]) == ("error", "not_found", "r1")
    assert third == {"type": "heartbeat_ack", "ref": "h1"}
    assert line.modules.bus.of_type(TypingStarted) == []


async def test_a_second_hello_is_a_bad_request(line: Line) -> None:
    """hello is said once per connection; another one is answered with bad_request."""
    await line.handle(type="hello", token="anything", ref="again")
    (error,) = await line.answers(1)
    assert (error["code"], error["ref"]) == ("bad_request", "again")


async def test_a_store_failure_becomes_store_unavailable(line: Line) -> None:
    """A channel store that fails (its own StoreFailed) and a message store that fails
    (a refusal from messaging) both answer store_unavailable, and change nothing."""
    await line.modules.messaging.accept(line.alice, line.channel_id, "m1", "hi")
    line.modules.channels.fail_only = {"read_marker"}
    line.modules.channels.fail_next = True
    with structlog.testing.capture_logs() as logs:
        await line.handle(type="read", channel_id=line.channel_id, message_id=1, ref="r1")
    line.modules.messages.fail_next = True
    await line.handle(type="read", channel_id=line.channel_id, message_id=1, ref="r2")

    first, second = await line.answers(2)
    assert (first["code"], first["ref"]) == ("store_unavailable", "r1")
    assert (second["code"], second["ref"]) == ("store_unavailable", "r2")
    assert await line.modules.social.read_marker(line.bob, line.channel_id) == 0
    assert [(e["event"], e["frame"]) for e in logs] == [("store_failed", "Read")]


async def test_sync_replays_the_inbox_after_since_then_says_synced(line: Line) -> None:
    """sync {since} sends a message frame per inbox entry after since, in seq order, then
    synced with the last seq and the ref; live messages then follow without repeats."""
    for n in range(1, 4):
        await line.modules.messaging.accept(line.alice, line.channel_id, f"m{n}", f"text {n}")
    await line.handle(type="sync", since=1, ref="s1")

    replay = await line.answers(3)
    assert [(f["type"], f.get("seq")) for f in replay] == [
        ("message", 2),
        ("message", 3),
        ("synced", 3),
    ]
    assert replay[0]["message"]["text"] == "text 2"
    assert replay[2] == {"type": "synced", "seq": 3, "has_more": False, "ref": "s1"}
    line.connection.deliver(3, frames.message_frame(3, "{}"))
    line.connection.deliver(4, frames.message_frame(4, "{}"))
    assert [f.get("seq") for f in await line.answers(4)][3:] == [4]


async def test_a_long_replay_stops_at_one_batch_and_says_there_is_more(line: Line) -> None:
    """More than REPLAY_BATCH entries: one batch is sent, then synced has_more=true at the
    last seq sent, for the client to sync from."""
    for n in range(REPLAY_BATCH + 1):
        await line.modules.messages.append(
            sender_id=line.alice,
            channel_id=line.channel_id,
            client_msg_id=f"m{n}",
            text="x",
            member_ids=[line.alice, line.bob],
            created_at=0,
        )
    await line.session.replay(0)

    sent = await line.answers(REPLAY_BATCH + 1)
    assert [f["seq"] for f in sent[:-1]] == list(range(1, REPLAY_BATCH + 1))
    assert sent[-1] == {"type": "synced", "seq": REPLAY_BATCH, "has_more": True}


async def test_skip_history_says_synced_at_max_seq_and_delivers_what_follows(
    line: Line,
) -> None:
    """A hello without last_seq: no replay, synced at max_seq, then only newer messages."""
    await line.modules.messaging.accept(line.alice, line.channel_id, "m1", "hi")
    await line.session.skip_history(1, ref="hello")
    line.connection.deliver(1, frames.message_frame(1, "{}"))
    line.connection.deliver(2, frames.message_frame(2, "{}"))
    synced, message = await line.answers(2)
    assert synced == {"type": "synced", "seq": 1, "has_more": False, "ref": "hello"}
    assert (message["type"], message["seq"]) == ("message", 2)


async def test_a_send_frame_is_acknowledged(line: Line) -> None:
    """send goes through the connection's send pipeline and is answered with ack."""
    await line.handle(
        type="send", client_msg_id="c1", channel_id=line.channel_id, text="hello", ref="s"
    )
    (ack,) = await line.answers(1)
    assert (ack["type"], ack["client_msg_id"], ack["seq"], ack["ref"]) == ("ack", "c1", 1, "s")
    assert ack["message"]["text"] == "hello"
