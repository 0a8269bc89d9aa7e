"""A TCP relay in front of a server, so tests can break real connections on purpose."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit, urlunsplit

CHUNK_BYTES = 64 * 1024


class _Link:
    """One client connection and the server connection it is relayed to."""

    def __init__(self, client: asyncio.StreamWriter, server: asyncio.StreamWriter) -> None:
        self.client = client
        self.server = server
        self.mute_server = False

    def abort(self) -> None:
        # abort, not close: buffered bytes are thrown away and the peers see a
        # reset, as when a network path or a process dies.
        self.client.transport.abort()
        self.server.transport.abort()


class TcpProxy:
    """Relays 127.0.0.1:`port` to `target_host`:`target_port`, byte for byte.

    `cut()` drops every relayed connection at once; `refuse_new()` turns new
    connections away until `accept_new()`; `mute_server()` silently discards
    what the server sends on the current connections, as a path that lost its
    way back would.
    """

    def __init__(self, target_port: int, target_host: str = "127.0.0.1", *, port: int = 0) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.host = "127.0.0.1"
        self.port = port
        self.accepted = 0
        """Connections relayed to the server so far."""
        self.refusing = False
        self._links: set[_Link] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._listener: asyncio.Server | None = None
        self._reopen: asyncio.TimerHandle | None = None

    async def start(self) -> Self:
        self._listener = await asyncio.start_server(self._relay, self.host, self.port)
        self.port = self._listener.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._reopen is not None:
            self._reopen.cancel()
        if self._listener is not None:
            self._listener.close()
        self.cut()
        if self._listener is not None:
            await self._listener.wait_closed()
            self._listener = None
        await asyncio.gather(*self._handlers, return_exceptions=True)

    def through(self, url: str) -> str:
        """`url` with its host and port replaced by the proxy's."""
        parts = urlsplit(url)
        return urlunsplit(parts._replace(netloc=f"{self.host}:{self.port}"))

    def cut(self, *, refuse_for: float = 0.0) -> int:
        """Drop every current connection; optionally turn new ones away for a while."""
        links = list(self._links)
        for link in links:
            link.abort()
        if refuse_for > 0:
            self.refuse_new()
            self._reopen = asyncio.get_running_loop().call_later(refuse_for, self.accept_new)
        return len(links)

    def refuse_new(self) -> None:
        self.refusing = True

    def accept_new(self) -> None:
        if self._reopen is not None:
            self._reopen.cancel()
            self._reopen = None
        self.refusing = False

    def mute_server(self) -> None:
        """From now on, bytes from the server on the current connections are dropped."""
        for link in self._links:
            link.mute_server = True

    async def _relay(self, client_in: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self._serve(client_in, client)
        finally:
            self._handlers.discard(task)

    async def _serve(self, client_in: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
        if self.refusing:
            client.transport.abort()
            return
        try:
            server_in, server = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            # Nothing listens there (a server restarting): the client sees a
            # reset, as it would without the proxy.
            client.transport.abort()
            return
        if self.refusing:  # turned away while the server connection was being made
            client.transport.abort()
            server.transport.abort()
            return
        link = _Link(client, server)
        self._links.add(link)
        self.accepted += 1
        try:
            await asyncio.gather(
                _pump(client_in, server, lambda: False),
                _pump(server_in, client, lambda: link.mute_server),
            )
        finally:
            self._links.discard(link)
            client.close()
            server.close()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()


async def _pump(
    source: asyncio.StreamReader,
    sink: asyncio.StreamWriter,
    muted: Callable[[], bool],
) -> None:
    """Copy one direction until it ends; the end of one side ends the other, flushed."""
    with contextlib.suppress(OSError):
        while chunk := await source.read(CHUNK_BYTES):
            if muted():
                continue
            sink.write(chunk)
            await sink.drain()
    with contextlib.suppress(OSError):
        sink.close()
