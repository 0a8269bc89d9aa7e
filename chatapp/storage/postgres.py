"""The PostgreSQL pool cluster-mode stores share, and its errors by meaning.

Only the PostgreSQL adapters and this package import asyncpg; the modules
and the edges know their store's error whichever engine is behind it.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import ParamSpec, TypeVar

import asyncpg

from chatapp.errors import StoreFailed
from chatapp.storage.migrations import Migration
from chatapp.storage.postgres_migrations import apply_in_order, find_postgres_migrations

StoreT = TypeVar("StoreT")
P = ParamSpec("P")
R = TypeVar("R")

# What a pool, a connection or the server can raise: the server's refusals,
# asyncpg's own (a closed pool, a bad argument), and the network's (OSError,
# which takes in TimeoutError from `command_timeout`).
ENGINE_ERRORS: tuple[type[Exception], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
)

# The stores rely on READ COMMITTED: a conditional UPDATE or an
# `INSERT ... ON CONFLICT` re-checks the row another node just committed,
# where REPEATABLE READ would fail the statement instead.
_SERVER_SETTINGS = {"default_transaction_isolation": "read committed"}


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Return a connection to the pool as it is.

    asyncpg's default reset sends `RESET ALL`, `CLOSE ALL`, `UNLISTEN *` and
    an advisory unlock on every release: a round trip each time a store
    borrows a connection, which on the send path was one per check. No store
    leaves session state behind (no `SET`, cursor or `LISTEN`); the one
    session-level advisory lock, retention's turn, is unlocked by its holder,
    which closes the connection if it cannot (`postgres_retention`). An open
    transaction is still rolled back by asyncpg before this is called.
    """


async def open_postgres(
    url: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    command_timeout: float = 30.0,
    application_name: str | None = None,
) -> asyncpg.Pool:
    """Open a pool on `url`; its query parameters (`?search_path=...`) become server settings.

    `application_name` is how the pool's connections show in `pg_stat_activity`.

    Raises `StoreFailed` when the server cannot be reached; the message leaves
    the URL out, since it may carry a password.
    """
    try:
        pool = await asyncpg.create_pool(
            url,
            min_size=min_size,
            max_size=max_size,
            command_timeout=command_timeout,
            reset=_keep_session,
            server_settings=(
                {**_SERVER_SETTINGS, "application_name": application_name}
                if application_name is not None
                else _SERVER_SETTINGS
            ),
        )
    except ENGINE_ERRORS as failure:
        raise StoreFailed(
            f"cannot open PostgreSQL: {type(failure).__name__}: {failure}"
        ) from failure
    return pool


async def apply_postgres_migrations(
    pool: asyncpg.Pool, *, now_ms: int, migrations: Sequence[Migration] | None = None
) -> list[int]:
    """Bring the schema up to date (`migrations/postgresql/`, unless given); the versions applied.

    Safe when several nodes start at once (see `postgres_migrations`). Raises
    `StoreFailed` when the database fails or refuses a migration; that
    migration left nothing behind.
    """
    wanted = find_postgres_migrations() if migrations is None else migrations
    try:
        return await apply_in_order(pool, wanted, now_ms=now_ms)
    except ENGINE_ERRORS as failure:
        raise StoreFailed(
            f"schema migration failed: {type(failure).__name__}: {failure}"
        ) from failure


async def postgres_answers(pool: asyncpg.Pool) -> bool:
    """True when the database answers a trivial query: a node's readiness check."""
    try:
        return bool(await pool.fetchval("SELECT 1") == 1)
    except ENGINE_ERRORS:
        return False


def raises(error: type[StoreFailed]) -> Callable[[type[StoreT]], type[StoreT]]:
    """Make every public coroutine method of a store raise `error` instead of asyncpg's.

    The same contract as `chatapp.storage.sqlite.raises`: no engine's
    exception type leaves the adapter.
    """

    def decorate(store: type[StoreT]) -> type[StoreT]:
        for name, method in list(vars(store).items()):
            if not name.startswith("_") and inspect.iscoroutinefunction(method):
                setattr(store, name, _translated(method, error))
        return store

    return decorate


def _translated(
    method: Callable[P, Awaitable[R]], error: type[StoreFailed]
) -> Callable[P, Awaitable[R]]:
    @functools.wraps(method)
    async def call(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await method(*args, **kwargs)
        except ENGINE_ERRORS as failure:
            raise error(f"{type(failure).__name__}: {failure}") from failure

    return call


__all__ = [
    "ENGINE_ERRORS",
    "apply_postgres_migrations",
    "find_postgres_migrations",
    "open_postgres",
    "postgres_answers",
    "raises",
]
