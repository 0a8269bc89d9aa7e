"""A `FrameSocket` that keeps what the server sent, parsed, and how it was closed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any


class FakeSocket:
    """`FrameSocket` for tests of connections and sessions.

    `sent` holds every frame sent, parsed from JSON (a frame that is not a JSON
    object raises `TypeError`: the protocol sends objects only; text that is
    not UTF-8-encodable raises `UnicodeEncodeError`, as aiohttp's). `close_code`
    and `close_message` are None until `close`. After `close`, or while
    `failing` is True, `send_str` raises `ConnectionResetError`, as aiohttp
    does for a peer that went away.

    `write_now` records a frame at once, as a socket that keeps up takes it,
    and answers False while stalled: `stall()` is a client that stopped
    reading, and makes `send_str` (the writer of a lagging connection's queue)
    wait until `resume()`. `wait_for_frames`, `wait_until_stalled` and
    `wait_closed` wait (without sleeping) for the connection to get there.
    """

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.close_code: int | None = None
        self.close_message: bytes | None = None
        self.failing = False
        self.stalled_sends = 0
        """How many `send_str` calls are waiting for `resume` now."""
        self._reading = asyncio.Event()
        self._reading.set()
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []

    def write_now(self, data: str) -> bool:
        if self.close_code is not None or self.failing:
            raise ConnectionResetError("Cannot write to closing transport")
        if not self._reading.is_set():
            return False
        self._record(data)
        return True

    async def send_str(self, data: str) -> None:
        if not self._reading.is_set():
            self.stalled_sends += 1
            self._notify()
            try:
                await self._reading.wait()
            finally:
                self.stalled_sends -= 1
        if self.close_code is not None or self.failing:
            raise ConnectionResetError("Cannot write to closing transport")
        self._record(data)

    def _record(self, data: str) -> None:
        data.encode("utf-8")  # aiohttp encodes here: a lone surrogate raises UnicodeEncodeError
        frame = json.loads(data)
        if not isinstance(frame, dict):
            raise TypeError(f"a frame is a JSON object, not {data[:80]!r}")
        self.sent.append(frame)
        self._notify()

    async def close(self, *, code: int = 1000, message: bytes = b"") -> bool:
        """Close once: True the first time, False when already closed (as aiohttp answers)."""
        if self.close_code is not None:
            return False
        self.close_code = code
        self.close_message = message
        self._notify()
        return True

    # -- for tests -----------------------------------------------------------------

    def stall(self) -> None:
        """Stop reading: `send_str` waits until `resume`."""
        self._reading.clear()

    def resume(self) -> None:
        self._reading.set()

    def types(self) -> list[str]:
        """The `type` of each frame sent, in order."""
        return [str(frame.get("type")) for frame in self.sent]

    def of_type(self, frame_type: str) -> list[dict[str, Any]]:
        return [frame for frame in self.sent if frame.get("type") == frame_type]

    async def wait_for_frames(self, count: int, *, timeout: float = 2.0) -> list[dict[str, Any]]:
        """Wait until at least `count` frames were sent; returns all of them.

        `timeout` bounds a test that would otherwise hang; a passing test never
        waits for it.
        """
        await self._wait_until(lambda: len(self.sent) >= count, timeout, f"{count} frames")
        return self.sent

    async def wait_until_stalled(self, *, timeout: float = 2.0) -> None:
        """Wait until a `send_str` is stuck on the stall: the writer has taken a frame."""
        await self._wait_until(lambda: self.stalled_sends > 0, timeout, "a stalled send")

    async def wait_closed(self, *, timeout: float = 2.0) -> int:
        """Wait until the socket is closed; returns the close code."""
        await self._wait_until(lambda: self.close_code is not None, timeout, "the close")
        assert self.close_code is not None
        return self.close_code

    async def _wait_until(self, done: Callable[[], bool], timeout: float, what: str) -> None:
        if done():
            return
        waiter = asyncio.get_running_loop().create_future()
        entry = (done, waiter)
        self._waiters.append(entry)
        try:
            async with asyncio.timeout(timeout):
                await waiter
        except TimeoutError:
            raise TimeoutError(
                f"waited {timeout} s for {what}; sent {self.types()}, closed {self.close_code}"
            ) from None
        finally:
            if entry in self._waiters:
                self._waiters.remove(entry)

    def _notify(self) -> None:
        """Wake the waits whose condition holds now (frames may be written from sync code)."""
        for done, waiter in list(self._waiters):
            if not waiter.done() and done():
                waiter.set_result(None)
