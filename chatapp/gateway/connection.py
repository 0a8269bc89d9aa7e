"""One live WebSocket: its bounded outgoing queue, its writer, its delivery cursor."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from enum import Enum
from typing import Protocol

import structlog

from chatapp.gateway.budget import OutgoingBudget, frame_bytes

log = structlog.get_logger(__name__)

CLOSE_UNAUTHORIZED = 4401
CLOSE_HELLO_TIMEOUT = 4408
CLOSE_SLOW_CONSUMER = 1013
CLOSE_UNSUPPORTED_DATA = 1003
CLOSE_TOO_MANY = 4429
# How long a client may leave its answers unread before it counts as gone.
STALL_SECONDS = 5.0


class FrameSocket(Protocol):
    """The two things a connection does to its WebSocket (aiohttp's answers them)."""

    async def send_str(self, data: str) -> None: ...

    async def close(self, *, code: int = 1000, message: bytes = b"") -> bool: ...


class State(Enum):
    CATCHING_UP = "catching_up"
    LIVE = "live"
    CLOSING = "closing"


class Connection:
    """Frames to one device, written in order by one task.

    Fan-out never awaits a peer: it puts the frame on this connection's bounded
    queue and moves on. A client that stops reading fills its queue and is
    disconnected; it catches up with `hello last_seq` when it returns.

    `delivered_seq` is the highest inbox seq sent as a `message` frame. While
    the connection replays from the store it is CATCHING_UP: live messages are
    held (up to the queue's size) and released, without repeats, once the
    replay has reached the present.

    With `hold_until_ready` (a socket that has just said hello) the first
    frame is the one given to `send_ready`: frames pushed before it are held,
    within the same limits as the queue, and follow it in order.
    """

    def __init__(
        self,
        socket: FrameSocket,
        *,
        connection_id: str,
        user_id: int,
        device_id: int,
        queue_size: int,
        budget: OutgoingBudget | None = None,
        hold_until_ready: bool = False,
    ) -> None:
        self.id = connection_id
        self.socket = socket
        self.user_id = user_id
        self.device_id = device_id
        self.state = State.CATCHING_UP
        self.delivered_seq = 0
        self._queue: asyncio.Queue[tuple[str, int]] = asyncio.Queue(queue_size)
        self._queue_size = queue_size
        # Bytes as well as frames: one frame may be 400 KB (100,000 emoji).
        self._budget = budget or OutgoingBudget(per_connection=2**62, total=2**62)
        self.queued_bytes = 0
        self._drained = asyncio.Event()
        self._held: list[tuple[int, str]] = []
        self._held_bytes = 0
        # Frames pushed before `ready` was queued, with their sizes; None once it was.
        self._before_ready: list[tuple[str, int]] | None = [] if hold_until_ready else None
        # Seqs of this connection's own sends above delivered_seq.
        self._own: set[int] = set()
        # Called when a live message shows a gap; the session fills it from the store.
        self.on_gap: Callable[[], None] | None = None
        self._held_overflowed = False
        self._room = asyncio.Event()
        self._room.set()
        # Set when nothing will drain the queue any more (closed, or the writer stopped).
        self._gone = asyncio.Event()
        self._writer = asyncio.create_task(self._write(), name=f"ws-writer:{self.id}")
        self.close_code: int | None = None
        self._closer: asyncio.Task[bool] | None = None

    # -- frames that are not inbox messages ----------------------------------------

    def push(self, frame: str) -> None:
        """Queue a frame without waiting; a client over its budget is disconnected (1013)."""
        if self.state is State.CLOSING:
            return
        size = frame_bytes(frame)
        early = self._before_ready
        # Room for `ready` is kept: it and the frames held for it fill the queue at most.
        if early is not None and len(early) >= self._queue_size - 1:
            self._too_slow()
            return
        if not self._admit(size):
            self._too_slow()
            return
        if early is not None:
            early.append((frame, size))
        elif not self._enqueue(frame, size):
            return
        self.queued_bytes += size

    def send_ready(self, frame: str) -> None:
        """Queue `ready`, then the frames pushed while it was being prepared, in order."""
        early, self._before_ready = self._before_ready or [], None
        if self.state is State.CLOSING:
            return
        size = frame_bytes(frame)
        if not self._admit(size):
            self._too_slow()
            return
        if not self._enqueue(frame, size):
            return
        self.queued_bytes += size
        for held, held_size in early:  # their bytes were counted when they were pushed
            if not self._enqueue(held, held_size):
                return

    def _enqueue(self, frame: str, size: int) -> bool:
        """Queue a frame whose bytes are reserved; a full queue is a slow consumer (False)."""
        try:
            self._queue.put_nowait((frame, size))
        except asyncio.QueueFull:
            self._budget.release(self, size)
            self._too_slow()
            return False
        if self._queue.qsize() * 4 >= self._queue_size * 3:
            self._room.clear()
        return True

    def _admit(self, size: int) -> bool:
        """Room for `size` more bytes here and in the server's total (freed if need be)."""
        if self.queued_bytes and self.queued_bytes + size > self._budget.per_connection:
            return False
        if self._budget.reserve(self, size):
            return True
        # The server holds all it may: the connection holding most makes room.
        largest = self._budget.largest()
        if largest is not None:
            log.warning("outgoing_budget_full", closing=getattr(largest, "id", None))
            largest.close(CLOSE_SLOW_CONSUMER, "server busy: reconnect and sync")
        return not self.is_closing and self._budget.reserve(self, size)

    def _too_slow(self) -> None:
        log.warning("slow_consumer_disconnected", connection=self.id, user_id=self.user_id)
        self.close(CLOSE_SLOW_CONSUMER, "too slow: reconnect and sync")

    async def room_for_answers(self) -> None:
        """Wait while the queue is three-quarters full, until the writer has drained it.

        A client that reads its answers only slowly is slowed down; one that
        does not read them at all within `STALL_SECONDS` is a slow consumer.
        """
        if self._room.is_set():
            return
        try:
            await asyncio.wait_for(self._room.wait(), timeout=STALL_SECONDS)
        except TimeoutError:
            log.warning("slow_consumer_disconnected", connection=self.id, user_id=self.user_id)
            self.close(CLOSE_SLOW_CONSUMER, "too slow: reconnect and sync")

    async def put(self, frame: str) -> None:
        """Queue a frame, waiting for room: for replies the client asked for (replay).

        Waits while the queue is full or holds the connection's byte budget;
        a client that leaves it so for `STALL_SECONDS` is disconnected (1013).
        Returns without queueing once the connection closes or its writer
        stops, since nobody would make room any more.
        """
        size = frame_bytes(frame)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STALL_SECONDS
        while not self.is_closing:
            fits = not self.queued_bytes or self.queued_bytes + size <= self._budget.per_connection
            if fits and not self._queue.full() and self._admit(size):
                self._queue.put_nowait((frame, size))
                self.queued_bytes += size
                return
            if self.is_closing:  # _admit may have closed it to make room
                return
            self._drained.clear()
            drained = asyncio.ensure_future(self._drained.wait())
            gone = asyncio.ensure_future(self._gone.wait())
            try:
                await asyncio.wait(
                    (drained, gone),
                    timeout=max(0.0, deadline - loop.time()),
                    return_when=asyncio.FIRST_COMPLETED,
                )
            finally:
                drained.cancel()
                gone.cancel()
            if loop.time() >= deadline and not self.is_closing:
                self._too_slow()

    # -- inbox messages -------------------------------------------------------------

    def deliver(self, seq: int, frame: str) -> None:
        """A live message for this device: sent once, in seq order, or held while catching up.

        A seq beyond the next one means entries went missing on the way (a bus
        between nodes can drop or reorder them): the message is held and
        `on_gap` asks for the store to fill the gap, in order.
        """
        if self.state is State.LIVE:
            if seq <= self.delivered_seq:
                return
            if seq in self._own:
                self.own(seq)
            elif seq == self.delivered_seq + 1 or self.on_gap is None:
                self.delivered_seq = seq
                self._pass_own()
                self.push(frame)
            else:
                self.state = State.CATCHING_UP
                self._held.append((seq, frame))
                self.on_gap()
        elif self.state is State.CATCHING_UP:
            size = len(frame)
            if len(self._held) < self._queue_size and self._held_bytes + size <= (
                self._budget.per_connection
            ):
                self._held.append((seq, frame))
                self._held_bytes += size
            else:
                self._held.clear()
                self._held_bytes = 0
                self._held_overflowed = True

    def own(self, seq: int) -> None:
        """A seq of this connection's own send: it got an ack, not a `message` frame."""
        if seq <= self.delivered_seq:
            return
        self._own.add(seq)
        self._pass_own()

    def _pass_own(self) -> None:
        while self.delivered_seq + 1 in self._own:
            self.delivered_seq += 1
            self._own.discard(self.delivered_seq)

    def start_catching_up(self, since: int) -> None:
        self.state = State.CATCHING_UP
        self.delivered_seq = since
        self._held.clear()
        self._held_bytes = 0
        self._held_overflowed = False

    def skip_to(self, seq: int) -> None:
        """Go live without replaying: only messages after `seq` will be sent."""
        self.delivered_seq = max(self.delivered_seq, seq)
        self._held_overflowed = False
        self.go_live()

    async def replayed(self, seq: int, frame: str) -> None:
        if seq <= self.delivered_seq:
            # An ack recorded while replaying (`own`) moved the cursor over this seq.
            return
        self.delivered_seq = seq
        if seq in self._own:  # acknowledged on this connection already
            self._own.discard(seq)
            return
        await self.put(frame)

    def go_live(self) -> bool:
        """Release held messages newer than the replay; False if some were lost (replay again)."""
        if self.state is State.CLOSING:
            return True
        if self._held_overflowed:
            self._held_overflowed = False
            return False
        held, self._held = self._held, []
        self._held_bytes = 0
        self.state = State.LIVE
        for seq, frame in held:
            self.deliver(seq, frame)
        return True

    # -- lifetime ---------------------------------------------------------------------

    def close(self, code: int, reason: str = "") -> None:
        """Close soon, from any context; frames already queued are dropped."""
        if self.state is State.CLOSING:
            return
        self.state = State.CLOSING
        self.close_code = code
        self._drop_queued()
        self._room.set()
        self._gone.set()
        self._writer.cancel()
        self._closer = asyncio.create_task(self.socket.close(code=code, message=reason.encode()))

    @property
    def is_closing(self) -> bool:
        return self.state is State.CLOSING

    def _drop_queued(self) -> None:
        """What was queued will never be sent: the server stops holding it."""
        self._budget.forget(self)
        self.queued_bytes = 0
        self._held.clear()
        self._held_bytes = 0
        if self._before_ready is not None:
            self._before_ready.clear()
        while not self._queue.empty():
            self._queue.get_nowait()

    @property
    def closing(self) -> asyncio.Task[bool] | None:
        """The closing handshake started by `close`, if any."""
        return self._closer

    async def finish(self) -> None:
        """After the socket is closed: stop the writer."""
        self.state = State.CLOSING
        self._drop_queued()
        self._room.set()
        self._gone.set()
        self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer

    async def _write(self) -> None:
        try:
            while True:
                frame, size = await self._queue.get()
                if not self._room.is_set() and self._queue.qsize() * 4 <= self._queue_size:
                    self._room.set()
                try:
                    await self.socket.send_str(frame)
                except UnicodeEncodeError:
                    # Every text we echo is checked on the way in; if one slips
                    # through, drop that frame rather than the connection.
                    log.error("unsendable_frame", connection=self.id)
                finally:
                    self.queued_bytes -= size
                    self._budget.release(self, size)
                    self._drained.set()
        except (ConnectionError, RuntimeError):
            # The peer went away; the read loop notices and cleans up.
            self._gone.set()
            return
