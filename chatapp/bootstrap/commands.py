"""What a CLI command needs, built as the server builds it, and its events relayed to the server."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from chatapp.accounts import Accounts
from chatapp.bootstrap.modules import build_accounts, build_operators, password_hasher
from chatapp.bootstrap.stores import UserStores, open_user_stores, users_database
from chatapp.bus import RelayBus
from chatapp.bus.control_socket import relay_to_running_server
from chatapp.clock import Clock, SystemClock
from chatapp.config import Settings
from chatapp.events import event_codec
from chatapp.operators import Operators
from chatapp.storage import apply_migrations, find_migrations, open_sqlite

ResultT = TypeVar("ResultT")


@dataclass(frozen=True)
class CommandOutcome(Generic[ResultT]):
    result: ResultT
    server_told: bool
    """True when a server was running on the data folder and took the command's events."""


async def run_accounts_command(
    settings: Settings, act: Callable[[Accounts], Awaitable[ResultT]]
) -> CommandOutcome[ResultT]:
    """Run one accounts operation on the data (folder or cluster), then tell the running servers.

    Raises ControlUnreachable when a server seems to run on the folder but did
    not take the events; the change itself is on disk by then.
    """

    async def on_accounts(accounts: Accounts, stores: UserStores, clock: Clock) -> ResultT:
        return await act(accounts)

    return await _run_command(settings, on_accounts)


async def run_operators_command(
    settings: Settings, act: Callable[[Operators], Awaitable[ResultT]]
) -> CommandOutcome[ResultT]:
    """As `run_accounts_command`, for the operators' commands (invites, deactivation, roles):
    what they change is in the audit log, with no actor (the command line)."""

    async def on_operators(accounts: Accounts, stores: UserStores, clock: Clock) -> ResultT:
        invites, audit = stores.operators.invites, stores.operators.audit
        return await act(build_operators(settings, invites, audit, accounts=accounts, clock=clock))

    return await _run_command(settings, on_operators)


async def _run_command(
    settings: Settings, act: Callable[[Accounts, UserStores, Clock], Awaitable[ResultT]]
) -> CommandOutcome[ResultT]:
    clock = SystemClock()
    bus = RelayBus()
    async with contextlib.AsyncExitStack() as stack:
        if settings.cluster_mode:
            from chatapp.bootstrap.cluster import open_cluster_user_stores

            stores, _ = await open_cluster_user_stores(settings, clock, stack)
        else:
            stores = await open_user_stores(settings.data_dir, clock, stack)
        accounts = build_accounts(
            settings,
            stores.users,
            stores.push_targets,
            hasher=password_hasher(settings, stack),
            clock=clock,
            bus=bus,
        )
        result = await act(accounts, stores, clock)
    if settings.cluster_mode:
        from chatapp.bootstrap.cluster import publish_to_cluster

        told = await publish_to_cluster(settings, bus.published)
    else:
        told = await relay_to_running_server(settings.data_dir, bus.published, event_codec())
    return CommandOutcome(result, told)


async def migrate(settings: Settings) -> list[int]:
    """Apply the schema migrations not applied yet; returns their numbers."""
    if settings.cluster_mode:
        from chatapp.bootstrap.cluster import migrate_cluster

        return await migrate_cluster(settings)
    database = await open_sqlite(users_database(settings.data_dir))
    try:
        return await apply_migrations(database, find_migrations(), now_ms=SystemClock().now_ms())
    finally:
        await database.close()
