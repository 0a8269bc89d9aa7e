"""One connection's queue, its catch-up hold and its closing, on a FakeSocket."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable

import pytest

from chatapp.gateway import frames
from chatapp.gateway.budget import OutgoingBudget, frame_bytes
from chatapp.gateway.connection import CLOSE_SLOW_CONSUMER, Connection, State
from chatapp.testing.fakes import FakeSocket

QUEUE = 16

Connect = Callable[..., tuple[Connection, FakeSocket]]


@pytest.fixture
async def connect() -> AsyncIterator[Connect]:
    """Make connections on fake sockets; each is finished (writer stopped) after the test."""
    made: list[Connection] = []

    def make(
        queue_size: int = QUEUE,
        *,
        budget: OutgoingBudget | None = None,
        hold_until_ready: bool = False,
    ) -> tuple[Connection, FakeSocket]:
        socket = FakeSocket()
        connection = Connection(
            socket,
            connection_id=f"test-{len(made)}",
            user_id=1,
            device_id=1,
            queue_size=queue_size,
            budget=budget,
            hold_until_ready=hold_until_ready,
        )
        made.append(connection)
        return connection, socket

    yield make
    for connection in made:
        if connection.closing is not None:
            await connection.closing
        await connection.finish()


def message(seq: int) -> str:
    return frames.message_frame(seq, json.dumps({"text": f"m{seq}"}))


def seqs(socket: FakeSocket) -> list[int]:
    return [frame["seq"] for frame in socket.of_type("message")]


async def test_a_full_queue_closes_the_connection_with_1013(connect: Connect) -> None:
    """A client that reads nothing fills its queue; one frame more closes it as a slow
    consumer, drops what was queued, and later frames are ignored."""
    connection, socket = connect()
    socket.stall()
    for n in range(QUEUE):
        connection.push(frames.encode({"type": "n", "n": n}))
    assert connection.close_code is None

    connection.push(frames.encode({"type": "one too many"}))
    connection.push(frames.encode({"type": "after closing"}))

    assert connection.state is State.CLOSING
    assert await socket.wait_closed() == CLOSE_SLOW_CONSUMER
    assert connection.close_code == CLOSE_SLOW_CONSUMER
    assert socket.sent == []


async def test_a_slow_reader_is_slowed_down_not_disconnected(connect: Connect) -> None:
    """Three-quarters full, room_for_answers waits while the client reads nothing, and
    returns once the writer drains the queue; the connection stays open."""
    connection, socket = connect()
    socket.stall()
    for n in range(QUEUE * 3 // 4):
        connection.push(frames.encode({"type": "n", "n": n}))
    waiting = asyncio.create_task(connection.room_for_answers())
    await socket.wait_until_stalled()
    assert not waiting.done()

    socket.resume()
    await waiting
    await socket.wait_for_frames(QUEUE * 3 // 4)
    assert connection.close_code is None


async def test_messages_held_during_catch_up_follow_the_replay_without_repeats(
    connect: Connect,
) -> None:
    """Live messages that arrive while replaying are held; go_live sends those past the
    replay, in order; anything at or below what was delivered is never sent twice."""
    connection, socket = connect()
    connection.start_catching_up(0)
    connection.deliver(3, message(3))
    connection.deliver(4, message(4))
    for seq in (1, 2, 3):
        await connection.replayed(seq, message(seq))

    assert connection.go_live()
    connection.deliver(4, message(4))
    connection.deliver(2, message(2))
    connection.deliver(5, message(5))

    await socket.wait_for_frames(5)
    assert seqs(socket) == [1, 2, 3, 4, 5]
    assert (connection.state, connection.delivered_seq) == (State.LIVE, 5)


async def test_go_live_is_false_when_the_hold_overflowed(connect: Connect) -> None:
    """More live messages than the queue holds while replaying: go_live says False (read
    the store again) and stays catching up; after a second replay it goes live."""
    connection, socket = connect()
    connection.start_catching_up(0)
    for seq in range(1, QUEUE + 2):
        connection.deliver(seq, message(seq))

    assert not connection.go_live()
    assert connection.state is State.CATCHING_UP
    for seq in range(1, QUEUE + 2):
        await connection.replayed(seq, message(seq))
    assert connection.go_live()

    connection.deliver(QUEUE + 2, message(QUEUE + 2))
    await socket.wait_for_frames(QUEUE + 2)
    assert seqs(socket) == list(range(1, QUEUE + 3))


async def test_skip_to_goes_live_after_a_seq_without_replaying(connect: Connect) -> None:
    """A hello without last_seq: held messages up to max_seq are dropped, later ones sent."""
    connection, socket = connect()
    connection.deliver(5, message(5))
    connection.deliver(6, message(6))
    connection.skip_to(5)
    connection.deliver(7, message(7))
    await socket.wait_for_frames(2)
    assert seqs(socket) == [6, 7]


async def test_close_closes_the_socket_once_with_its_code(connect: Connect) -> None:
    """close(code) closes the socket with that code and reason; a second close is ignored;
    queued frames and later puts are dropped."""
    connection, socket = connect()
    socket.stall()
    connection.push(frames.encode({"type": "queued"}))
    connection.close(4401, "the device was logged out")
    connection.close(1001, "again")
    await connection.put(frames.encode({"type": "after"}))

    assert await socket.wait_closed() == 4401
    assert socket.close_message == b"the device was logged out"
    assert socket.sent == []


async def test_an_unsendable_frame_is_dropped_and_the_next_one_sent(connect: Connect) -> None:
    """A frame the socket cannot encode (a lone surrogate) costs that frame, not the
    connection."""
    connection, socket = connect()
    connection.push('{"type":"bad","text":"\udc80"}')
    connection.push(frames.encode({"type": "good"}))
    await socket.wait_for_frames(1)
    assert socket.types() == ["good"]
    assert connection.close_code is None


async def test_a_put_waiting_for_room_returns_when_the_connection_closes(
    connect: Connect,
) -> None:
    """A replay's put that waits on a full queue gives up once the connection is closing."""
    connection, socket = connect()
    socket.stall()
    for n in range(QUEUE):
        connection.push(frames.encode({"type": "n", "n": n}))
    await socket.wait_until_stalled()  # the writer holds one frame and cannot send it
    connection.push(frames.encode({"type": "n", "n": QUEUE}))  # the queue is full again

    # Closed while the put below waits for room, as a revocation or shutdown would.
    asyncio.get_running_loop().call_soon(connection.close, 1001, "server shutting down")
    async with asyncio.timeout(0.05):
        await connection.put(frames.encode({"type": "replayed"}))
    assert connection.close_code == 1001


READY = frames.encode({"type": "ready"})


async def test_frames_pushed_before_ready_follow_it_in_order(connect: Connect) -> None:
    """A connection made for a hello holds what is pushed before `ready` (typing, presence,
    channel frames fanned out while the gateway reads max_seq): `ready` goes first, then
    they follow in the order pushed, then what is pushed afterwards."""
    connection, socket = connect(hold_until_ready=True)
    connection.push(frames.encode({"type": "typing", "n": 1}))
    connection.push(frames.encode({"type": "presence", "n": 2}))
    await asyncio.sleep(0)  # the writer would have sent them by now
    assert socket.sent == []

    connection.send_ready(READY)
    connection.push(frames.encode({"type": "read", "n": 3}))
    sent = await socket.wait_for_frames(4)
    assert [frame["type"] for frame in sent] == ["ready", "typing", "presence", "read"]
    assert connection.queued_bytes == 0


async def test_frames_held_for_ready_count_in_the_byte_budget(connect: Connect) -> None:
    """Frames held for `ready` are bytes the server holds: counted in the connection's and
    the server's budget, past the connection's budget a slow consumer (1013), and given back
    when the connection closes."""
    budget = OutgoingBudget(per_connection=1000, total=10_000)
    connection, socket = connect(budget=budget, hold_until_ready=True)
    frame = frames.encode({"type": "typing", "text": "x" * 300})
    connection.push(frame)
    connection.push(frame)
    assert budget.held == connection.queued_bytes == 2 * frame_bytes(frame)

    connection.push(frame)
    connection.push(frame)  # past 1000 bytes
    assert await socket.wait_closed() == CLOSE_SLOW_CONSUMER
    assert (budget.held, connection.queued_bytes) == (0, 0)
    connection.send_ready(READY)
    assert socket.sent == []


async def test_frames_held_for_ready_are_bounded_by_the_queue(connect: Connect) -> None:
    """As many frames are held for `ready` as fit in the queue with it; one more is a slow
    consumer (1013), as a full queue is."""
    connection, socket = connect(hold_until_ready=True)
    for n in range(QUEUE - 1):
        connection.push(frames.encode({"type": "n", "n": n}))
    assert connection.close_code is None

    connection.push(frames.encode({"type": "one too many"}))
    assert await socket.wait_closed() == CLOSE_SLOW_CONSUMER


async def test_an_ack_recorded_while_replaying_leaves_its_seq_to_the_ack(
    connect: Connect,
) -> None:
    """An own send acknowledged while the replay is just below it moves the cursor over its
    seq; when the replay gets to that seq it sends nothing, and goes on after it."""
    connection, socket = connect()
    connection.start_catching_up(0)
    await connection.replayed(1, message(1))
    connection.own(2)  # the ack of this connection's send, stored as seq 2
    for seq in (2, 3):
        await connection.replayed(seq, message(seq))
    assert connection.go_live()

    await socket.wait_for_frames(2)
    assert seqs(socket) == [1, 3]
    assert connection.delivered_seq == 3


async def test_a_socket_that_keeps_up_gets_its_frames_at_once_with_no_queue(
    connect: Connect,
) -> None:
    """Frames for a socket that keeps up are written when pushed: no queue, no writer
    task, nothing held in the budget (an idle connection holds none of them)."""
    budget = OutgoingBudget(per_connection=1000, total=10_000)
    connection, socket = connect(budget=budget)
    connection.push(frames.encode({"type": "a"}))
    await connection.put(frames.encode({"type": "b"}))
    assert socket.types() == ["a", "b"]
    assert not connection.lagging
    assert (budget.held, connection.queued_bytes) == (0, 0)


async def test_a_lagging_socket_is_queued_for_in_order_until_it_has_caught_up(
    connect: Connect,
) -> None:
    """A socket that lags gets a queue: what is pushed meanwhile follows what is queued,
    even once the socket takes frames again, and when the queue is empty the connection
    writes straight to the socket again."""
    connection, socket = connect()
    socket.stall()
    connection.push(frames.encode({"type": "a"}))
    assert connection.lagging
    assert connection.queued_bytes > 0
    socket.resume()
    connection.push(frames.encode({"type": "b"}))  # behind "a", not before it
    await socket.wait_for_frames(2)
    await asyncio.sleep(0)  # the writer ends once the queue is empty
    assert not connection.lagging
    assert connection.queued_bytes == 0

    connection.push(frames.encode({"type": "c"}))
    assert socket.types() == ["a", "b", "c"]


async def test_a_peer_gone_away_costs_its_frames_not_an_error(connect: Connect) -> None:
    """A socket whose peer went away (the transport is closing) drops what is pushed; the
    read loop notices and cleans up, as it does for a writer that failed."""
    connection, socket = connect()
    socket.failing = True
    connection.push(frames.encode({"type": "lost"}))
    await connection.put(frames.encode({"type": "lost too"}))
    assert socket.sent == []
    assert connection.close_code is None
