"""Sockets of one account spread over every node, for tests that revoke the account's access.

A revocation (deactivation, a new password, deleting the account) must close the sockets
wherever they are, so each helper works on sockets opened on all of a cluster's nodes.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator

from chatapp.client import ChatClient
from chatapp.testing import RawSocket, RunningServer


@contextlib.asynccontextmanager
async def sockets_on_every_node(
    server: RunningServer, clients: list[ChatClient]
) -> AsyncIterator[list[RawSocket]]:
    """A socket for each client, the clients spread over every node's WebSocket URL."""
    urls = server.ws_urls
    opened: list[RawSocket] = []
    try:
        for index, client in enumerate(clients):
            socket = await RawSocket.open(urls[index % len(urls)], client.token or "")
            opened.append(socket)
            await socket.until("synced")
        yield opened
    finally:
        for socket in opened:
            await socket.close()


async def all_closed_with_4401_within_a_second(sockets: list[RawSocket]) -> None:
    """Every socket closes with 4401 (revoked), all of them within one second of the call."""
    started = time.monotonic()
    for socket in sockets:
        assert await socket.closed_with(timeout=1.0) == 4401
    assert time.monotonic() - started < 1.0


async def still_open(socket: RawSocket) -> None:
    """The socket still answers a heartbeat: the revocation left it alone."""
    await socket.send({"type": "heartbeat"})
    await socket.until("heartbeat_ack")
