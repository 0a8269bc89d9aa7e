"""A WebSocket speaking raw protocol frames: for tests that check the wire itself."""

from __future__ import annotations

import asyncio
import json
from types import TracebackType
from typing import Any, Self

import aiohttp


class RawSocket:
    """One connection; frames are dicts. Use `await RawSocket.open(url, token)`."""

    def __init__(self, session: aiohttp.ClientSession, socket: aiohttp.ClientWebSocketResponse):
        self._session = session
        self.socket = socket
        self.ready: dict[str, Any] = {}

    @classmethod
    async def connect(cls, ws_url: str, **kwargs: Any) -> Self:
        """Open the socket without saying hello."""
        session = aiohttp.ClientSession()
        try:
            socket = await session.ws_connect(ws_url, max_msg_size=0, **kwargs)
        except BaseException:
            await session.close()
            raise
        return cls(session, socket)

    @classmethod
    async def open(
        cls, ws_url: str, token: str, *, last_seq: int | None = None, ref: str | None = None
    ) -> Self:
        """Connect and say hello; `ready` is kept in `.ready`. Replayed frames stay unread."""
        raw = await cls.connect(ws_url)
        hello: dict[str, Any] = {"type": "hello", "token": token}
        if last_seq is not None:
            hello["last_seq"] = last_seq
        if ref is not None:
            hello["ref"] = ref
        await raw.send(hello)
        raw.ready = await raw.expect("ready")
        return raw

    async def send(self, frame: dict[str, Any]) -> None:
        await self.socket.send_str(json.dumps(frame))

    async def receive(self, timeout: float = 5.0) -> dict[str, Any]:
        """The next frame as a dict; raises ConnectionError with the close code when closed."""
        message = await self.socket.receive(timeout=timeout)
        if message.type is aiohttp.WSMsgType.TEXT:
            frame: dict[str, Any] = json.loads(message.data)
            return frame
        raise ConnectionError(f"closed: {self.socket.close_code}")

    async def expect(self, kind: str, timeout: float = 5.0) -> dict[str, Any]:
        """The next frame, which must be of this type."""
        frame = await self.receive(timeout)
        if frame.get("type") != kind:
            raise AssertionError(f"expected a {kind!r} frame, got {frame}")
        return frame

    async def until(self, kind: str, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Frames up to and including the first of this type."""
        frames: list[dict[str, Any]] = []
        async with asyncio.timeout(timeout):
            while not frames or frames[-1].get("type") != kind:
                frames.append(await self.receive(timeout))
        return frames

    async def silent(self, seconds: float = 0.2) -> bool:
        """True when nothing arrives for `seconds` (to check that a frame was not sent)."""
        try:
            frame = await self.receive(seconds)
        except TimeoutError:
            return True
        raise AssertionError(f"expected silence, got {frame}")

    async def closed_with(self, timeout: float = 5.0) -> int | None:
        """Read until the server closes; its close code."""
        async with asyncio.timeout(timeout):
            while True:
                message = await self.socket.receive()
                if message.type is aiohttp.WSMsgType.CLOSE:
                    # The code the server sent. The socket's own close_code may
                    # already say 1006: the server does not wait for our reply
                    # once its handler has ended.
                    code: int = message.data
                    return code
                if message.type in (
                    aiohttp.WSMsgType.CLOSE,
                    aiohttp.WSMsgType.CLOSED,
                    aiohttp.WSMsgType.CLOSING,
                    aiohttp.WSMsgType.ERROR,
                ):
                    return self.socket.close_code

    async def close(self) -> None:
        await self.socket.close()
        await self._session.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()
