"""Making users, channels and device tokens on the target: the chat server or the echo relay."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import aiohttp

from chatapp.client import ChatClient
from chatapp.testing.server import DEFAULT_PASSWORD

T = TypeVar("T")
A = TypeVar("A")

# Signups and logins in flight at once: enough to keep the server's hashing
# threads busy without queueing thousands of requests.
SETUP_CONCURRENCY = 32


@dataclass(frozen=True)
class Target:
    """Where the generator points: `kind` is "chat" or "echo"; one entry per node.

    Link `i` connects to node `i % nodes`, and the backend's HTTP calls go
    to the nodes in turn, so a cluster's connections and writes are spread
    evenly and a pair's two users sit on different nodes. `services` says
    where a cluster's PostgreSQL and Redis are, for their counters (see
    `bench.loadgen.services`); None for one process.
    """

    kind: str
    urls: list[str]
    ws_urls: list[str]
    pids: list[int]
    services: dict[str, Any] | None = None
    bystander_pids: list[int] = field(default_factory=list)
    """Cluster nodes with no connection of the generator's (`--bystanders`)."""

    @property
    def nodes(self) -> int:
        return len(self.ws_urls)

    @property
    def pid(self) -> int:
        """The first node's process (the only one, except in cluster mode)."""
        return self.pids[0]

    def node_for(self, link_index: int) -> int:
        return link_index % self.nodes

    def ws_url_for(self, node: int) -> str:
        return self.ws_urls[node % self.nodes]


@dataclass
class Account:
    user_id: int
    username: str
    token: str
    """The token of the login that created the account's channels (its first device)."""


class Backend(Protocol):
    """What a scenario needs before it connects: accounts, channels, and device tokens."""

    async def accounts(self, count: int, prefix: str) -> list[Account]:
        """`count` new users, each logged in once."""
        ...

    async def direct(self, first: Account, second: Account) -> int:
        """The direct channel of two users; its id."""
        ...

    async def group(self, owner: Account, members: Sequence[Account]) -> int:
        """A group owned by `owner` with `members`; its id."""
        ...

    async def device_tokens(self, account: Account, count: int) -> list[str]:
        """Tokens for `count` devices of the account: the first login's, then new logins."""
        ...

    async def close(self) -> None: ...


async def bounded(call: Callable[[A], Awaitable[T]], items: Sequence[A], limit: int) -> list[T]:
    """`call(item)` for every item, at most `limit` in flight; the answers in order."""
    gate = asyncio.Semaphore(limit)

    async def one(item: A) -> T:
        async with gate:
            return await call(item)

    return await asyncio.gather(*(one(item) for item in items))


class ChatBackend:
    """The real thing, through the project's HTTP client; each call goes to the next node."""

    def __init__(self, urls: Sequence[str]) -> None:
        self._urls = itertools.cycle(urls)
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=SETUP_CONCURRENCY)
        )

    def _client(self, token: str | None = None) -> ChatClient:
        return ChatClient(next(self._urls), token=token, session=self._session)

    async def accounts(self, count: int, prefix: str) -> list[Account]:
        async def make(index: int) -> Account:
            client = self._client()
            username = f"{prefix}{index}"
            user = await client.signup(username, DEFAULT_PASSWORD)
            login = await client.login(username, DEFAULT_PASSWORD, device_name="bench 0")
            return Account(user.user_id, username, login.token)

        return await bounded(make, range(count), SETUP_CONCURRENCY)

    async def direct(self, first: Account, second: Account) -> int:
        channel = await self._client(first.token).open_direct(second.user_id)
        return channel.channel_id

    async def group(self, owner: Account, members: Sequence[Account]) -> int:
        member_ids = [member.user_id for member in members if member.user_id != owner.user_id]
        channel = await self._client(owner.token).create_group("bench", member_ids)
        return channel.channel_id

    async def device_tokens(self, account: Account, count: int) -> list[str]:
        async def login(index: int) -> str:
            answer = await self._client().login(
                account.username, DEFAULT_PASSWORD, device_name=f"bench {index}"
            )
            return answer.token

        extra = await bounded(login, range(1, count), SETUP_CONCURRENCY)
        return [account.token, *extra][:count]

    async def close(self) -> None:
        await self._session.close()


@dataclass
class EchoBackend:
    """The echo relay keeps no accounts: a token names the user and its channels."""

    _channels: dict[int, list[int]] = field(default_factory=dict)
    _user_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _channel_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def accounts(self, count: int, prefix: str) -> list[Account]:
        made = []
        for _ in range(count):
            user_id = next(self._user_ids)
            made.append(Account(user_id, f"{prefix}{user_id}", ""))
        return made

    async def direct(self, first: Account, second: Account) -> int:
        return self._join(first, second)

    async def group(self, owner: Account, members: Sequence[Account]) -> int:
        return self._join(owner, *(member for member in members if member is not owner))

    async def device_tokens(self, account: Account, count: int) -> list[str]:
        channels = ",".join(str(channel) for channel in self._channels.get(account.user_id, []))
        return [f"echo:{account.user_id}:{channels}"] * count

    async def close(self) -> None:
        return None

    def _join(self, *accounts: Account) -> int:
        channel_id = next(self._channel_ids)
        for account in accounts:
            self._channels.setdefault(account.user_id, []).append(channel_id)
        return channel_id


def backend_for(target: Target) -> Backend:
    if target.kind == "chat":
        return ChatBackend(target.urls)
    if target.kind == "echo":
        return EchoBackend()
    raise ValueError(f"unknown target kind {target.kind!r}")
