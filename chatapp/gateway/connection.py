"""One live WebSocket: its bounded outgoing queue, its writer, its delivery cursor."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
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
    """What a connection does to its WebSocket (`gateway.wire.WireSocket`)."""

    def write_now(self, data: str) -> bool:
        """Write a text frame without waiting if the socket is keeping up; False if it is not.

        Raises `ConnectionError` when the peer went away and `UnicodeEncodeError`
        for text that is not UTF-8, as `send_str` does.
        """
        ...

    async def send_str(self, data: str) -> None: ...

    async def close(self, *, code: int = 1000, message: bytes = b"") -> bool: ...


class State(Enum):
    CATCHING_UP = "catching_up"
    LIVE = "live"
    CLOSING = "closing"


class Connection:
    """Frames to one device, in order: straight to the socket, or queued while it lags.

    Fan-out never awaits a peer. A frame for a socket that is keeping up is
    written at once; only a socket that lags gets a bounded queue and a task
    that writes it, both dropped again once it has caught up, so an idle
    connection holds neither. A client that stops reading fills its queue and
    is disconnected; it catches up with `hello last_seq` when it returns.

    `delivered_seq` is the highest inbox seq sent as a `message` frame. While
    the connection replays from the store it is CATCHING_UP: live messages are
    held (up to the queue's size) and released, without repeats, once the
    replay has reached the present.

    With `hold_until_ready` (a socket that has just said hello) the first
    frame is the one given to `send_ready`: frames pushed before it are held,
    within the same limits as the queue, and follow it in order.
    """

    # Tens of thousands of these live at once: no per-instance dict.
    __slots__ = (
        "_before_ready",
        "_budget",
        "_closer",
        "_crowded",
        "_gone",
        "_held",
        "_held_bytes",
        "_held_overflowed",
        "_own",
        "_queue",
        "_queue_size",
        "_wakeup",
        "_writer",
        "close_code",
        "delivered_seq",
        "device_id",
        "heard_at",
        "id",
        "on_gap",
        "queued_bytes",
        "socket",
        "state",
        "user_id",
    )

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
        # Frames waiting for a socket that lags, and their writer: None while it keeps up.
        self._queue: deque[tuple[str, int]] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._queue_size = queue_size
        # Bytes as well as frames: one frame may be 400 KB (100,000 emoji).
        self._budget = budget or _UNBOUNDED
        self.queued_bytes = 0
        self._held: list[tuple[int, str]] = []
        self._held_bytes = 0
        self._held_overflowed = False
        # Frames pushed before `ready` was queued, with their sizes; None once it was.
        self._before_ready: list[tuple[str, int]] | None = [] if hold_until_ready else None
        # Seqs of this connection's own sends above delivered_seq (made when there is one).
        self._own: set[int] | None = None
        # Called when a live message shows a gap; the session fills it from the store.
        self.on_gap: Callable[[], None] | None = None
        # The queue is three-quarters full: answers to the client wait (room_for_answers).
        self._crowded = False
        # Nothing will write to the socket any more (closed, or the peer went away).
        self._gone = False
        # Resolved when the writer sent a frame or the connection went: who waits for
        # room waits on it (made by the first that waits).
        self._wakeup: asyncio.Future[None] | None = None
        self.close_code: int | None = None
        self._closer: asyncio.Task[bool] | None = None
        # When the client last sent a frame (the loop's clock), for `gateway.idle`.
        self.heard_at = asyncio.get_running_loop().time()

    # -- frames that are not inbox messages ----------------------------------------

    def push(self, frame: str) -> None:
        """Send a frame without waiting; a client over its budget is disconnected (1013)."""
        if self.state is State.CLOSING:
            return
        if self._before_ready is None and self._queue is None and self._write_now(frame):
            return
        self._hold_or_queue(frame)

    def _hold_or_queue(self, frame: str) -> None:
        """Hold a frame until `ready`, or queue it behind others or for a socket that lags."""
        early = self._before_ready
        size = frame_bytes(frame)
        # Room for `ready` is kept: it and the frames held for it fill the queue at most.
        if early is not None and len(early) >= self._queue_size - 1:
            self._too_slow()
            return
        if not self._admit(size):
            self._too_slow()
            return
        self.queued_bytes += size
        if early is not None:
            early.append((frame, size))
        else:
            self._enqueue(frame, size)

    def send_ready(self, frame: str) -> None:
        """Send `ready`, then the frames pushed while it was being prepared, in order."""
        early, self._before_ready = self._before_ready or [], None
        if self.state is State.CLOSING:
            return
        self.push(frame)
        for held, held_size in early:  # their bytes were counted when they were pushed
            if self.is_closing:  # push may have closed it (a slow consumer)
                return
            if self._queue is None and self._write_now(held):
                self._unhold(held_size)
            else:
                self._enqueue(held, held_size)

    def _write_now(self, frame: str) -> bool:
        """Write straight to a socket that keeps up; False if it lags (queue the frame)."""
        if self._gone:
            return True  # nobody will read it: dropped, as a queued frame would be
        try:
            return self.socket.write_now(frame)
        except UnicodeEncodeError:
            # Every text we echo is checked on the way in; if one slips
            # through, drop that frame rather than the connection.
            log.error("unsendable_frame", connection=self.id)
        except (ConnectionError, RuntimeError):
            # The peer went away; the read loop notices and cleans up.
            self._went_away()
        return True

    def _enqueue(self, frame: str, size: int) -> None:
        """Queue a frame whose bytes are counted; a full queue is a slow consumer."""
        queue = self._queue
        if queue is None:
            queue = self._queue = deque()
            self._writer = asyncio.create_task(self._write(queue), name=f"ws-writer:{self.id}")
        elif len(queue) >= self._queue_size:
            self._unhold(size)
            self._too_slow()
            return
        queue.append((frame, size))
        if len(queue) * 4 >= self._queue_size * 3:
            self._crowded = True

    def _unhold(self, size: int) -> None:
        if self.state is State.CLOSING:  # everything it held was dropped at once
            return
        self.queued_bytes -= size
        self._budget.release(self, size)

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
        if not self._crowded:
            return
        deadline = asyncio.get_running_loop().time() + STALL_SECONDS
        while self._crowded and not self._gone:
            if not await self._wait_for_progress(deadline):
                log.warning("slow_consumer_disconnected", connection=self.id, user_id=self.user_id)
                self.close(CLOSE_SLOW_CONSUMER, "too slow: reconnect and sync")
                return

    async def put(self, frame: str) -> None:
        """Send a frame, waiting for room: for replies the client asked for (replay).

        Waits while the queue is full or holds the connection's byte budget;
        a client that leaves it so for `STALL_SECONDS` is disconnected (1013).
        Returns without sending once the connection closes or its peer is
        gone, since nobody would make room any more.
        """
        if self.state is not State.CLOSING and self._queue is None and self._write_now(frame):
            return
        size = frame_bytes(frame)
        deadline = asyncio.get_running_loop().time() + STALL_SECONDS
        while not self.is_closing and not self._gone:
            queue = self._queue
            if queue is None and self._write_now(frame):
                return
            fits = not self.queued_bytes or self.queued_bytes + size <= self._budget.per_connection
            if fits and (queue is None or len(queue) < self._queue_size) and self._admit(size):
                self.queued_bytes += size
                self._enqueue(frame, size)
                return
            if self.is_closing:  # _admit may have closed it to make room
                return
            if not await self._wait_for_progress(deadline) and not self.is_closing:
                self._too_slow()

    async def _wait_for_progress(self, deadline: float) -> bool:
        """Wait until the writer sends a frame or the connection goes; False at `deadline`."""
        if self._wakeup is None:
            self._wakeup = asyncio.get_running_loop().create_future()
        wakeup = self._wakeup
        timeout = max(0.0, deadline - asyncio.get_running_loop().time())
        done, _ = await asyncio.wait((wakeup,), timeout=timeout)
        return bool(done)

    def _wake(self) -> None:
        wakeup, self._wakeup = self._wakeup, None
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

    def _went_away(self) -> None:
        self._gone = True
        self._crowded = False
        self._wake()

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
            if self._own and seq in self._own:
                self.own(seq)
            elif seq == self.delivered_seq + 1 or self.on_gap is None:
                self.delivered_seq = seq
                if self._own:
                    self._pass_own()
                # `push`, spelled out: this runs once per recipient of every message.
                if (
                    self._before_ready is not None
                    or self._queue is not None
                    or not self._write_now(frame)
                ):
                    self._hold_or_queue(frame)
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
        if self._own is None:
            self._own = set()
        self._own.add(seq)
        self._pass_own()

    def _pass_own(self) -> None:
        own = self._own
        if not own:
            return
        while self.delivered_seq + 1 in own:
            self.delivered_seq += 1
            own.discard(self.delivered_seq)

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
        if self._own and seq in self._own:  # acknowledged on this connection already
            self._own.discard(seq)
            return
        await self.put(frame)

    def release_if_whole(self) -> bool:
        """Go live if the held messages continue `delivered_seq` without a gap (they
        arrived late, out of order); False, changing nothing, while one is still missing."""
        if self.state is not State.CATCHING_UP or self._held_overflowed or not self._held:
            return False
        held = {seq for seq, _ in self._held}
        own = self._own or set()
        expected = self.delivered_seq + 1
        while expected in held or expected in own:
            expected += 1
        if any(seq >= expected for seq in held):
            return False
        self._held.sort(key=lambda entry: entry[0])
        return self.go_live()

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
        self._went_away()
        if self._writer is not None:
            self._writer.cancel()
        self._closer = asyncio.create_task(self.socket.close(code=code, message=reason.encode()))

    @property
    def lagging(self) -> bool:
        """Frames are queued for the socket (and a task writes them): it did not keep up."""
        return self._queue is not None

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
        if self._queue is not None:
            self._queue.clear()

    @property
    def closing(self) -> asyncio.Task[bool] | None:
        """The closing handshake started by `close`, if any."""
        return self._closer

    async def finish(self) -> None:
        """After the socket is closed: stop the writer, if one is running."""
        self.state = State.CLOSING
        self._drop_queued()
        self._went_away()
        writer = self._writer
        if writer is not None:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer

    async def _write(self, queue: deque[tuple[str, int]]) -> None:
        """Send what is queued, in order, waiting for the socket; end once it is empty."""
        try:
            while queue:
                frame, size = queue.popleft()
                if self._crowded and len(queue) * 4 <= self._queue_size:
                    self._crowded = False
                try:
                    await self.socket.send_str(frame)
                except UnicodeEncodeError:
                    # Every text we echo is checked on the way in; if one slips
                    # through, drop that frame rather than the connection.
                    log.error("unsendable_frame", connection=self.id)
                finally:
                    self._unhold(size)
                    self._wake()
        except (ConnectionError, RuntimeError):
            # The peer went away; the read loop notices and cleans up.
            self._went_away()
        finally:
            # Caught up (or gone): later frames go straight to the socket again.
            if self._queue is queue:
                self._queue = None
                self._writer = None


_UNBOUNDED = OutgoingBudget(per_connection=2**62, total=2**62)
