"""The two engines the store tests run on: nodes on one SQLite file or one PostgreSQL schema.

`Database.node()` opens one server's stores the way the composition root
builds them; a second call is a second node (or process) on the same data.
The fixtures that build these are in this folder's `conftest.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import asyncpg

from chatapp.accounts import PushTargetStore, UserStore
from chatapp.accounts.adapters import SqlitePushTargetStore, SqliteUserStore
from chatapp.accounts.adapters.postgres_push_targets import PostgresPushTargetStore
from chatapp.accounts.adapters.postgres_users import PostgresUserStore
from chatapp.social import BlockStore, ChannelStore, FriendStore
from chatapp.social.adapters import SqliteBlockStore, SqliteChannelStore, SqliteFriendStore
from chatapp.social.adapters.postgres_blocks import PostgresBlockStore
from chatapp.social.adapters.postgres_channels import PostgresChannelStore
from chatapp.social.adapters.postgres_friends import PostgresFriendStore
from chatapp.social.block_batch import BatchedBlockLookups
from chatapp.storage import apply_migrations, find_migrations, open_sqlite
from chatapp.storage.postgres import apply_postgres_migrations, open_postgres
from chatapp.testing.cluster_services import fresh_name, postgres_url


@dataclass
class Node:
    """One server's stores on a shared database."""

    users: UserStore
    push_targets: PushTargetStore
    channels: ChannelStore
    friends: FriendStore
    blocks: BlockStore
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def close(self) -> None:
        """Close the node's connections; its stores fail from then on. Safe to repeat."""
        closers, self.closers = self.closers, []
        for close in closers:
            await close()


class Database(Protocol):
    """An empty, migrated database on one engine."""

    @property
    def engine(self) -> str:
        """ "sqlite" or "postgresql"."""
        ...

    async def node(self) -> Node:
        """Another server's stores on the same data."""
        ...

    async def racers(self) -> tuple[Node, Node]:
        """Two nodes to race calls from, as the engine is deployed."""
        ...


@dataclass
class SqliteDatabase:
    """One SQLite file; each node has the accounts and the social connection bootstrap opens."""

    path: Path
    engine: str = "sqlite"
    nodes: list[Node] = field(default_factory=list)

    @classmethod
    async def create(cls, path: Path) -> SqliteDatabase:
        connection = await open_sqlite(path)
        try:
            await apply_migrations(connection, find_migrations(), now_ms=1)
        finally:
            await connection.close()
        return cls(path)

    async def node(self) -> Node:
        accounts = await open_sqlite(self.path)
        social = await open_sqlite(self.path)
        writes = asyncio.Lock()
        opened = Node(
            users=SqliteUserStore(accounts),
            push_targets=SqlitePushTargetStore(accounts),
            channels=SqliteChannelStore(social, write_lock=writes),
            friends=SqliteFriendStore(social, write_lock=writes),
            blocks=SqliteBlockStore(social, write_lock=writes),
            closers=[accounts.close, social.close],
        )
        self.nodes.append(opened)
        return opened

    async def racers(self) -> tuple[Node, Node]:
        """One server's stores twice: embedded mode is one process, racing with itself."""
        node = await self.node()
        return node, node


@dataclass
class PostgresDatabase:
    """One PostgreSQL schema; each node has a pool of its own, shared by its stores."""

    url: str
    engine: str = "postgresql"
    nodes: list[Node] = field(default_factory=list)

    @classmethod
    async def create(cls, url: str) -> PostgresDatabase:
        pool = await open_postgres(url, max_size=1)
        try:
            await apply_postgres_migrations(pool, now_ms=1)
        finally:
            await pool.close()
        return cls(url)

    async def node(self) -> Node:
        pool = await open_postgres(self.url, max_size=4)
        opened = Node(
            users=PostgresUserStore(pool),
            push_targets=PostgresPushTargetStore(pool),
            channels=PostgresChannelStore(pool),
            friends=PostgresFriendStore(pool),
            # As cluster mode has it: `between` asked together, one query.
            blocks=BatchedBlockLookups(PostgresBlockStore(pool)),
            closers=[pool.close],
        )
        self.nodes.append(opened)
        return opened

    async def racers(self) -> tuple[Node, Node]:
        """Two nodes, each with its own pool: what cluster mode runs."""
        return await self.node(), await self.node()


def with_search_path(url: str, schema: str) -> str:
    """`url` with `search_path=schema` added to its query."""
    return f"{url}{'&' if urlsplit(url).query else '?'}search_path={schema}"


@contextlib.asynccontextmanager
async def fresh_schema() -> AsyncIterator[str]:
    """A URL whose search_path is a new, empty schema; the schema is dropped afterwards."""
    url = postgres_url()
    schema = fresh_name("chatapp_test")
    admin = await asyncpg.connect(url)
    try:
        await admin.execute(f"CREATE SCHEMA {schema}")
        yield with_search_path(url, schema)
    finally:
        await admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await admin.close()
