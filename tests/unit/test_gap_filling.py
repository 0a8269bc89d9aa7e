"""Live delivery with a gap is filled from the store: every entry once, in seq order."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

from chatapp.gateway import frames
from chatapp.gateway.connection import Connection
from chatapp.gateway.session import Session
from chatapp.messaging import AcceptedMessage, InboxPage
from chatapp.social import Channel
from chatapp.testing.fakes import FakeSocket, build_modules_on_fakes
from chatapp.testing.fakes.modules import ModulesOnFakes


async def bobs_connection() -> tuple[ModulesOnFakes, int, int, Channel, FakeSocket, Connection]:
    """Modules on fakes, alice and bob in a direct channel, and a connection of bob's."""
    modules = build_modules_on_fakes()
    alice, bob = [(await modules.sign_up(name)).user.user_id for name in ("alice", "bob")]
    channel, _ = await modules.social.open_direct(alice, bob)
    socket = FakeSocket()
    connection = Connection(socket, connection_id="n-1", user_id=bob, device_id=1, queue_size=64)
    return modules, alice, bob, channel, socket, connection


async def test_a_skipped_seq_is_sent_from_the_store_before_what_follows() -> None:
    """Seq 3 arriving before seq 2 (another node was faster): Bob still gets 1, 2, 3, once each.

    That is what a bus between nodes can do; the store, not the bus, decides
    what the device gets.
    """
    modules, alice, bob, channel, socket, connection = await bobs_connection()
    session = Session(connection, modules.session_modules())
    try:
        connection.skip_to(0)
        sent: list[AcceptedMessage] = [
            await modules.messaging.accept(alice, channel.channel_id, f"m{n}", f"text {n}")
            for n in (1, 2, 3)
        ]

        def live(accepted: AcceptedMessage) -> None:
            seq = accepted.inbox_seqs[bob]
            connection.deliver(seq, frames.message_frame(seq, accepted.message.model_dump_json()))

        live(sent[0])
        live(sent[2])  # seq 2 is late
        live(sent[1])
        received = await socket.wait_for_frames(3)
        await asyncio.sleep(0)
        assert [frame["seq"] for frame in received] == [1, 2, 3]
        assert [frame["message"]["text"] for frame in received] == ["text 1", "text 2", "text 3"]
        live(sent[2])  # a repeat from the bus is dropped
        assert connection.delivered_seq == 3
        assert len(socket.sent) == 3
    finally:
        await session.close()
        await connection.finish()


async def test_own_sends_are_not_mistaken_for_a_gap() -> None:
    """A seq this connection sent itself (it got an ack) leaves no gap and is never echoed."""
    modules, alice, bob, channel, socket, connection = await bobs_connection()
    session = Session(connection, modules.session_modules())
    try:
        connection.skip_to(0)
        mine = await modules.messaging.accept(bob, channel.channel_id, "b1", "from bob")
        theirs = await modules.messaging.accept(alice, channel.channel_id, "a1", "from alice")
        connection.own(mine.inbox_seqs[bob])
        seq = theirs.inbox_seqs[bob]
        connection.deliver(seq, frames.message_frame(seq, theirs.message.model_dump_json()))
        (frame,) = await socket.wait_for_frames(1)
        assert (frame["seq"], frame["message"]["text"]) == (2, "from alice")
        assert connection.delivered_seq == 2
    finally:
        await session.close()
        await connection.finish()


async def test_a_gap_fill_leaves_a_send_in_flight_to_its_ack() -> None:
    """A gap fill that reads this connection's own send from the store before the ack is
    recorded does not send it as a `message`: it arrives once, as the `ack`.

    The fake store makes the send readable and completes its future at once; the
    pipeline records the ack a few steps later, and the fill runs in between.
    """
    modules, alice, _bob, channel, socket, connection = await bobs_connection()
    session = Session(connection, modules.session_modules())
    try:
        connection.skip_to(0)
        await modules.messaging.accept(alice, channel.channel_id, "a1", "from alice")
        modules.messages.hold()
        send = {"type": "send", "channel_id": channel.channel_id, "client_msg_id": "b1"}
        await session.handle(frames.parse_frame(json.dumps({**send, "text": "from bob"})))
        await modules.messages.wait_until_held(1)
        modules.messages.release()  # stored, readable, its future done; no ack yet
        session.fill_gap()  # the bus between nodes was away, say
        await asyncio.sleep(0)  # the fill starts: it has read the store
        # A sync waits for the fill (one replay at a time), then says where it is.
        await session.handle(frames.parse_frame(json.dumps({"type": "sync", "since": 2})))

        sent = await socket.wait_for_frames(3)
        assert [(f["type"], f.get("seq")) for f in sent] == [
            ("message", 1),
            ("ack", 2),
            ("synced", 2),
        ]
        assert sent[1]["client_msg_id"] == "b1"
        assert connection.delivered_seq == 2
    finally:
        await session.close()
        await connection.finish()


async def test_a_gap_fill_the_store_refuses_is_tried_again_until_it_answers() -> None:
    """The store fails the first two reads of a gap fill: the session waits and reads again
    (its pauses doubling), and bob gets 1, 2, 3 once each, then live messages as usual.
    Going live with the gap instead would leave the connection stuck behind it."""
    modules, alice, bob, channel, socket, connection = await bobs_connection()
    pauses: list[float] = []

    async def pause(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 2:
            modules.messages.failing = False

    session = Session(connection, replace(modules.session_modules(), pause=pause))
    try:
        connection.skip_to(0)

        async def accepted(n: int) -> AcceptedMessage:
            return await modules.messaging.accept(alice, channel.channel_id, f"m{n}", f"text {n}")

        def live(accepted: AcceptedMessage) -> None:
            seq = accepted.inbox_seqs[bob]
            connection.deliver(seq, frames.message_frame(seq, accepted.message.model_dump_json()))

        sent = [await accepted(n) for n in (1, 2, 3)]
        modules.messages.fail_only = {"inbox"}
        modules.messages.failing = True
        live(sent[2])  # seqs 1 and 2 are missing: a fill, which fails twice
        received = await socket.wait_for_frames(3)
        assert [frame["seq"] for frame in received] == [1, 2, 3]
        assert pauses == [0.05, 0.1]
        live(await accepted(4))
        (fourth,) = (await socket.wait_for_frames(4))[3:]
        assert fourth["seq"] == 4
        assert modules.messages.failures == 2
    finally:
        await session.close()
        await connection.finish()


async def test_a_gap_met_while_a_fill_goes_live_is_filled_too() -> None:
    """The fill reads the store up to seq 1; meanwhile seqs 2 and 3 are stored and 3
    arrives live first (another node was faster). Going live then meets a new gap
    (2 is missing) while the first fill is still running: it is filled as well, and
    bob gets 1, 2, 3 and then live messages, instead of waiting behind the gap for good."""
    modules, alice, bob, channel, socket, connection = await bobs_connection()
    session = Session(connection, modules.session_modules())
    store = modules.messages
    read_inbox = store.inbox
    later: list[AcceptedMessage] = []

    def live(accepted: AcceptedMessage) -> None:
        seq = accepted.inbox_seqs[bob]
        connection.deliver(seq, frames.message_frame(seq, accepted.message.model_dump_json()))

    async def inbox_raced_by_the_bus(user_id: int, *, since: int, limit: int) -> InboxPage:
        page = await read_inbox(user_id, since=since, limit=limit)
        if not later:  # only the first read: 2 and 3 are stored just after it
            later.extend(
                [
                    await modules.messaging.accept(alice, channel.channel_id, f"m{n}", f"t{n}")
                    for n in (2, 3)
                ]
            )
            live(later[1])  # 3 overtakes 2, and is held while the fill runs
        return page

    store.inbox = inbox_raced_by_the_bus  # type: ignore[method-assign]
    try:
        await modules.messaging.accept(alice, channel.channel_id, "m1", "t1")
        connection.skip_to(0)
        session.fill_gap()  # as after a bus reconnect: seq 1 was never heard live
        received = await socket.wait_for_frames(3)
        assert [frame["seq"] for frame in received] == [1, 2, 3]
        live(await modules.messaging.accept(alice, channel.channel_id, "m4", "t4"))
        assert [frame["seq"] for frame in await socket.wait_for_frames(4)] == [1, 2, 3, 4]
    finally:
        await session.close()
        await connection.finish()


class HeldPause:
    """A pause that lasts until the test lets it end, so "meanwhile" is the test's to say."""

    def __init__(self) -> None:
        self.asked: list[float] = []
        self._end = asyncio.Event()

    async def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)
        await self._end.wait()

    def end(self) -> None:
        self._end.set()


@dataclass
class GraceCase:
    """Bob's connection on a cluster's session (a held grace pause), and three messages
    from Alice stored for him, each as the frame the bus would bring."""

    modules: ModulesOnFakes
    socket: FakeSocket
    connection: Connection
    pause: HeldPause
    live: dict[int, str]


@contextlib.asynccontextmanager
async def grace_case() -> AsyncIterator[GraceCase]:
    modules, alice, bob, channel, socket, connection = await bobs_connection()
    pause = HeldPause()
    session = Session(connection, replace(modules.session_modules(), gap_grace_s=0.05, pause=pause))
    try:
        connection.skip_to(0)
        live: dict[int, str] = {}
        for n in (1, 2, 3):
            sent = await modules.messaging.accept(alice, channel.channel_id, f"m{n}", f"text {n}")
            seq = sent.inbox_seqs[bob]
            live[seq] = frames.message_frame(seq, sent.message.model_dump_json())
        yield GraceCase(modules, socket, connection, pause, live)
    finally:
        await session.close()
        await connection.finish()


async def test_a_gap_the_bus_closes_within_the_grace_is_not_read_from_the_store() -> None:
    """On a cluster a gap first waits `gap_grace_s`: seq 2 arriving meanwhile (pub/sub
    reordered two nodes' events) releases 2 and 3 in order, and the store, which would
    refuse an inbox read here, is not asked."""
    async with grace_case() as case:
        case.modules.messages.fail_only = {"inbox"}
        case.modules.messages.failing = True

        case.connection.deliver(1, case.live[1])
        case.connection.deliver(3, case.live[3])  # 2 is late
        await asyncio.sleep(0)
        assert case.pause.asked == [0.05]
        case.connection.deliver(2, case.live[2])
        case.pause.end()

        received = await case.socket.wait_for_frames(3)
        assert [frame["seq"] for frame in received] == [1, 2, 3]
        assert case.connection.state.value == "live"


async def test_a_gap_still_open_after_the_grace_is_read_from_the_store() -> None:
    """Seq 2 never arrives live (the bus dropped it): once the grace is over it is read
    from the store, before 3."""
    async with grace_case() as case:
        case.connection.deliver(1, case.live[1])
        case.connection.deliver(3, case.live[3])
        await asyncio.sleep(0)
        assert len(case.socket.sent) == 1
        case.pause.end()

        received = await case.socket.wait_for_frames(3)
        texts = [frame["message"]["text"] for frame in received]
        assert texts == ["text 1", "text 2", "text 3"]
