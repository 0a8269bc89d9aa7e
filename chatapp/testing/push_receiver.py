"""A push service on 127.0.0.1 for tests: it records every POST and answers as told.

Point a webhook, an ntfy topic or a Web Push endpoint at `receiver.url(...)`,
then read what arrived with `await receiver.next()`. Tell it to fail
(`fail_next(2)`), to answer some status (`status = 410`) or to never answer
(`hang = True`) to see what the server does then.
"""

from __future__ import annotations

import asyncio
import json
import socket
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from aiohttp import web


@dataclass(frozen=True)
class ReceivedPush:
    """One request as it arrived."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class PushReceiver:
    """Use as `async with PushReceiver() as receiver:`."""

    def __init__(self) -> None:
        self.status = 201
        self.hang = False
        self.attempts = 0
        self._failures = 0
        self._failure_status = 503
        self._received: asyncio.Queue[ReceivedPush] = asyncio.Queue()
        self._released = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._base = ""

    def url(self, path: str = "/push") -> str:
        return self._base + path

    def fail_next(self, count: int, status: int = 503) -> None:
        """Answer `status` to the next `count` requests (without recording them)."""
        self._failures = count
        self._failure_status = status

    async def next(self, timeout: float = 5.0) -> ReceivedPush:
        """The next request answered with success, in order of arrival."""
        return await asyncio.wait_for(self._received.get(), timeout)

    async def silent(self, seconds: float = 0.3) -> bool:
        """True when nothing arrives for `seconds`."""
        try:
            arrived = await self.next(seconds)
        except TimeoutError:
            return True
        raise AssertionError(f"expected no push, got {arrived}")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        await web.SockSite(self._runner, listener).start()
        self._base = f"http://127.0.0.1:{port}"

    async def close(self) -> None:
        self._released.set()  # hung requests are answered, so shutdown does not wait
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def _handle(self, request: web.Request) -> web.Response:
        self.attempts += 1
        body = await request.read()
        if self.hang:
            await self._released.wait()
            return web.Response(status=503)
        if self._failures > 0:
            self._failures -= 1
            return web.Response(status=self._failure_status)
        if 200 <= self.status < 300:
            self._received.put_nowait(
                ReceivedPush(
                    path=request.path,
                    query=dict(request.query),
                    headers=dict(request.headers),
                    body=body,
                )
            )
        return web.Response(status=self.status)
