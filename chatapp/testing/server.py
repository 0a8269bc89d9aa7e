"""A real server on a free localhost port, in this process, on a data folder of the caller's."""

from __future__ import annotations

import itertools
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from chatapp.bootstrap import build_app
from chatapp.bus import InProcessBus
from chatapp.client import ChatClient
from chatapp.clock import Clock
from chatapp.config import load_settings
from chatapp.presence import LocalPresence
from chatapp.services import SERVICES, Services

# Cheap hashing and loose limits keep test suites fast; pass settings to change them.
TEST_SETTINGS: dict[str, Any] = {
    "password_hash_time_cost": 1,
    "password_hash_memory_kib": 1024,
    "login_attempts_per_username": 1000,
    "login_attempts_per_address": 100_000,
    "signups_per_address": 100_000,
    "group_changes_per_user": 100_000,
    "send_rate_per_second": 1_000_000.0,
    "send_burst": 1_000_000,
    "log_level": "warning",
}
DEFAULT_PASSWORD = "correct horse battery"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


class ServerUsers:
    """Users and devices made through a server's `client()`, whatever runs behind it.

    `RunningServer` (one process) and `ClusterServer` (nodes) share these; each
    says how it makes a client and an admin.
    """

    _names: itertools.count[int]

    def client(self, token: str | None = None) -> ChatClient:
        raise NotImplementedError

    async def make_admin(self, username: str) -> None:
        raise NotImplementedError

    async def user(
        self,
        username: str | None = None,
        password: str = DEFAULT_PASSWORD,
        *,
        device_name: str | None = None,
    ) -> ChatClient:
        """Sign up a new user and return a client logged in as its first device."""
        name = username or f"user{next(self._names)}"
        client = self.client()
        await client.signup(name, password)
        await client.login(name, password, device_name)
        return client

    async def users(self, count: int) -> list[ChatClient]:
        """Several new users, each logged in once."""
        return [await self.user() for _ in range(count)]

    async def device(
        self, username: str, password: str = DEFAULT_PASSWORD, *, device_name: str | None = None
    ) -> ChatClient:
        """Log an existing user in again: another device of the same account."""
        client = self.client()
        await client.login(username, password, device_name)
        return client

    async def admin(self, username: str | None = None) -> ChatClient:
        """A new user, made a server admin, logged in as its first device."""
        client = await self.user(username)
        await self.make_admin((await client.me()).username)
        return client


@dataclass
class RunningServer(ServerUsers):
    url: str
    ws_url: str
    data_dir: Path
    app: web.Application
    _clients: list[ChatClient] = field(default_factory=list)
    _names: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def ws_urls(self) -> list[str]:
        """Where discovery may send a client: this server alone (a cluster lists its nodes)."""
        return [self.ws_url]

    @property
    def services(self) -> Services:
        return self.app[SERVICES]

    async def settle(self) -> None:
        """Wait until every event published so far has been handled by its subscribers."""
        bus = self.services.bus
        if not isinstance(bus, InProcessBus):
            raise TypeError(f"only an in-process bus can be settled, not {type(bus).__name__}")
        await bus.drain()

    async def expire_presence(self) -> int:
        """Expire devices whose heartbeats stopped, as the sweeper would (tests move the clock)."""
        presence = self.services.presence
        if not isinstance(presence, LocalPresence):
            raise TypeError(f"only local presence expires here, not {type(presence).__name__}")
        return await presence.expire_due()

    def client(self, token: str | None = None) -> ChatClient:
        """An HTTP client for this server, closed when the server stops."""
        client = ChatClient(self.url, token=token)
        self._clients.append(client)
        return client

    async def make_admin(self, username: str) -> None:
        """Make the user a server admin, as `chatapp grant-admin` does."""
        await self.services.accounts.set_role(username, "admin")

    async def revoke_admin(self, username: str) -> None:
        """Make an admin a member again, as `chatapp revoke-admin` does."""
        await self.services.accounts.set_role(username, "member")

    async def close_clients(self) -> None:
        for client in self._clients:
            await client.close()


@asynccontextmanager
async def run_server(
    data_dir: Path, *, clock: Clock | None = None, port: int | None = None, **settings: Any
) -> AsyncIterator[RunningServer]:
    """Start the real application on 127.0.0.1 and `port` (a free one by default); stop it on exit.

    Passing the port and data folder of a stopped server starts it again where
    its clients expect it.
    """
    host = "127.0.0.1"
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port or 0))
    port = listener.getsockname()[1]
    config = load_settings(
        environ={},
        overrides={**TEST_SETTINGS, "host": host, "port": port, "data_dir": data_dir, **settings},
    )
    app = build_app(config, clock=clock)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.SockSite(runner, listener).start()
        # The local address, whatever public_url the server tells its clients.
        url = f"http://{host}:{port}"
        server = RunningServer(url=url, ws_url=f"ws://{host}:{port}/ws", data_dir=data_dir, app=app)
        try:
            yield server
        finally:
            await server.close_clients()
    finally:
        await runner.cleanup()
        listener.close()
