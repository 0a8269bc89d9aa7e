"""One connection's sends: checked in order, stored without waiting, acknowledged in order."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from chatapp.config import Settings
from chatapp.gateway import frames
from chatapp.gateway.connection import Connection
from chatapp.gateway.send_pipeline import PENDING_SENDS, SendPipeline
from chatapp.messaging import MessageAccepted
from chatapp.social import ChannelChanged, ChannelStoreError
from chatapp.testing.fakes import FakeSocket, ModulesOnFakes, build_modules_on_fakes


@dataclass
class Sender:
    """Alice on one connection, in a direct channel with Bob."""

    modules: ModulesOnFakes
    alice: int
    channel_id: int
    other_channel_id: int
    """A channel of Bob and Carol, which Alice is not in."""
    socket: FakeSocket
    pipeline: SendPipeline

    async def send(self, client_msg_id: str, text: str = "hi", **extra: Any) -> None:
        frame = frames.Send(
            client_msg_id=client_msg_id,
            channel_id=extra.pop("channel_id", self.channel_id),
            text=text,
            ref=f"ref-{client_msg_id}",
        )
        await self.pipeline.put(frame)


async def make_sender(settings: Settings | None = None) -> tuple[Sender, Connection]:
    modules = build_modules_on_fakes(settings)
    alice, bob, carol = [(await modules.sign_up(n)).user for n in ("alice", "bob", "carol")]
    channel, _ = await modules.social.open_direct(alice.user_id, bob.user_id)
    other, _ = await modules.social.open_direct(bob.user_id, carol.user_id)
    socket = FakeSocket()
    connection = Connection(
        socket, connection_id="node-1", user_id=alice.user_id, device_id=1, queue_size=64
    )
    pipeline = SendPipeline(connection, modules.messaging, modules.metrics)
    sender = Sender(modules, alice.user_id, channel.channel_id, other.channel_id, socket, pipeline)
    return sender, connection


@pytest.fixture
async def sender() -> AsyncIterator[Sender]:
    made, connection = await make_sender()
    yield made
    await made.pipeline.close()
    await connection.finish()


@pytest.fixture
async def limited_sender() -> AsyncIterator[Sender]:
    made, connection = await make_sender(Settings(send_burst=1, send_rate_per_second=0.01))
    yield made
    await made.pipeline.close()
    await connection.finish()


def summary(frame: dict[str, Any]) -> tuple[str, str, str | int]:
    """(type, client_msg_id, seq for an ack or code for an error)."""
    detail = frame["seq"] if frame["type"] == "ack" else frame["code"]
    return frame["type"], frame["client_msg_id"], detail


async def test_acks_wait_for_the_store_and_come_in_the_order_sent(sender: Sender) -> None:
    """All three sends reach the store before any is durable (one group commit); no ack
    goes out until they are stored; then acks follow in the order sent, with their refs."""
    sender.modules.messages.hold()
    for client_msg_id in ("c1", "c2", "c3"):
        await sender.send(client_msg_id)
    await sender.modules.messages.wait_until_held(3)
    assert sender.socket.sent == []

    sender.modules.messages.release()
    acks = await sender.socket.wait_for_frames(3)
    assert [summary(f) for f in acks] == [("ack", "c1", 1), ("ack", "c2", 2), ("ack", "c3", 3)]
    assert [f["ref"] for f in acks] == ["ref-c1", "ref-c2", "ref-c3"]
    assert [f["message"]["message_id"] for f in acks] == [1, 2, 3]
    origins = {e.origin_connection for e in sender.modules.bus.of_type(MessageAccepted)}
    assert origins == {"node-1"}


async def test_a_refused_send_is_answered_in_its_place_with_its_client_msg_id(
    sender: Sender,
) -> None:
    """A refusal (not a member, empty text) is an error frame carrying client_msg_id and ref,
    in the order sent; the sends around it are acknowledged as usual."""
    await sender.send("c1")
    await sender.send("c2", channel_id=sender.other_channel_id)
    await sender.send("c3")
    await sender.send("c4", text="")

    answers = await sender.socket.wait_for_frames(4)
    assert [summary(f) for f in answers] == [
        ("ack", "c1", 1),
        ("error", "c2", "not_member"),
        ("ack", "c3", 2),
        ("error", "c4", "text_empty"),
    ]
    assert answers[1]["ref"] == "ref-c2"


async def test_a_rate_limited_send_is_an_error_and_counted(limited_sender: Sender) -> None:
    """Past the burst a send gets rate_limited with its client_msg_id; the metric counts it."""
    await limited_sender.send("c1")
    await limited_sender.send("c2")
    answers = await limited_sender.socket.wait_for_frames(2)
    assert [summary(f) for f in answers] == [("ack", "c1", 1), ("error", "c2", "rate_limited")]
    registry = limited_sender.modules.metrics.registry
    assert registry.get_sample_value("chatapp_rate_limited_total", {"limit": "sends"}) == 1


async def test_a_send_the_store_cannot_write_is_store_unavailable(sender: Sender) -> None:
    """A failed write answers store_unavailable with the client_msg_id; the retry is stored
    under the next id, with no gap."""
    sender.modules.messages.fail_only = {"submit"}
    sender.modules.messages.fail_next = True
    await sender.send("c1")
    await sender.send("c1")
    answers = await sender.socket.wait_for_frames(2)
    assert [summary(f) for f in answers] == [
        ("error", "c1", "store_unavailable"),
        ("ack", "c1", 1),
    ]


async def test_a_repeat_in_flight_is_acknowledged_with_the_original(sender: Sender) -> None:
    """The same client_msg_id twice before the first is durable: both acks carry the one
    stored message, and it is published once."""
    sender.modules.messages.hold()
    await sender.send("c1", text="once")
    await sender.send("c1", text="twice")
    await sender.modules.messages.wait_until_held(2)
    sender.modules.messages.release()

    first, second = await sender.socket.wait_for_frames(2)
    assert first["message"] == second["message"]
    assert first["message"]["text"] == "once"
    assert len(sender.modules.bus.of_type(MessageAccepted)) == 1


async def test_a_repeat_of_a_stored_send_is_acked_without_a_new_message(sender: Sender) -> None:
    """A resent client_msg_id (a retry after a lost ack) gets the original's ack again."""
    await sender.send("c1", text="first")
    await sender.socket.wait_for_frames(1)
    await sender.send("c1", text="second")
    first, second = await sender.socket.wait_for_frames(2)
    assert second == first
    assert len(sender.modules.bus.of_type(MessageAccepted)) == 1


async def test_a_channel_store_failure_on_a_send_is_answered_and_sending_goes_on() -> None:
    """A send whose membership cannot be read answers store_unavailable with its
    client_msg_id, and the next send is acknowledged."""
    sender, connection = await make_sender()
    # Forget the cached membership, so that the check reads the (failing) store.
    await sender.modules.social.channel_changed(
        ChannelChanged(channel_id=sender.channel_id, event="updated", user_ids=())
    )
    sender.modules.channels.fail_only = {"get_channel"}
    sender.modules.channels.fail_next = True
    try:
        await sender.send("c1")
        await sender.send("c2")
        answers = await sender.socket.wait_for_frames(2, timeout=0.05)
        assert [summary(f) for f in answers] == [
            ("error", "c1", "store_unavailable"),
            ("ack", "c2", 1),
        ]
    finally:
        # Today the dead task's error comes out of close(), too.
        with contextlib.suppress(ChannelStoreError):
            await sender.pipeline.close()
        await connection.finish()


async def test_answered_waits_until_a_send_in_flight_has_its_ack_or_error(
    sender: Sender,
) -> None:
    """answered(client_msg_id) returns at once for an id not in flight; for one in flight,
    once its answer is out: after an ack the seq is the connection's own already."""
    sender.modules.messages.hold()
    await sender.send("c1")
    await sender.send("c2", channel_id=sender.other_channel_id)  # refused: not a member
    await sender.pipeline.answered("c3")
    acked = asyncio.create_task(sender.pipeline.answered("c1"))
    refused = asyncio.create_task(sender.pipeline.answered("c2"))
    await sender.modules.messages.wait_until_held(1)
    assert not acked.done()
    assert not refused.done()  # answered in order, after c1

    sender.modules.messages.release()
    await acked
    assert sender.pipeline.connection.delivered_seq == 1
    await refused
    answers = await sender.socket.wait_for_frames(2)
    assert [summary(f) for f in answers] == [("ack", "c1", 1), ("error", "c2", "not_member")]


async def test_answered_returns_once_the_pipeline_is_closed(sender: Sender) -> None:
    """A send that will never be answered (the pipeline closed) does not keep a waiter."""
    sender.modules.messages.hold()
    await sender.send("c1")
    waiting = asyncio.create_task(sender.pipeline.answered("c1"))
    await sender.modules.messages.wait_until_held(1)
    await sender.pipeline.close()
    async with asyncio.timeout(1):
        await waiting


async def test_a_sender_the_store_cannot_keep_up_with_is_held_back() -> None:
    """With the store holding every send, the pipeline has PENDING_SENDS stored sends in
    its queue of answers, one more awaited by the task that answers, one more stored that
    waits for room, and PENDING_SENDS more in its queue of sends; the next put waits until
    answers make room, then every send is answered, in order."""
    sender, connection = await make_sender(Settings(send_burst=10 * PENDING_SENDS))
    sender.modules.messages.hold()
    stored = PENDING_SENDS + 2
    taken = stored + PENDING_SENDS
    for n in range(taken):
        await sender.send(f"c{n}")
    await sender.modules.messages.wait_until_held(stored)
    blocked = asyncio.create_task(sender.send("last"))
    for _ in range(20):  # every task has run as far as it can
        await asyncio.sleep(0)
    assert not blocked.done()
    assert sender.modules.messages.held == stored

    sender.modules.messages.release()
    async with asyncio.timeout(2):
        await blocked
        answers = await sender.socket.wait_for_frames(taken + 1)
    assert [frame["client_msg_id"] for frame in answers] == [
        *(f"c{n}" for n in range(taken)),
        "last",
    ]
    assert {frame["type"] for frame in answers} == {"ack"}
    await sender.pipeline.close()
    await connection.finish()
