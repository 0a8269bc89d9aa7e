"""Opening the embedded stores: SQLite for users, LevelDB for messages and presence.

This is where a second set of engines (PostgreSQL, Redis) plugs in: the
modules receive stores by their protocols and never learn which they got.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import aiosqlite
import structlog

from chatapp.accounts import PushTargetStore, UserStore
from chatapp.accounts.adapters import SqlitePushTargetStore, SqliteUserStore
from chatapp.bootstrap.background import in_background
from chatapp.bootstrap.integrity import refusal, refuse_unless_consistent
from chatapp.clock import Clock
from chatapp.errors import StartupRefused
from chatapp.messaging import MessageStore, MessageStoreError
from chatapp.messaging.adapters import LevelDBMessageStore
from chatapp.messaging.adapters.leveldb_layout import DamagedStore, StoreInUse
from chatapp.operators import AuditLog, InviteStore
from chatapp.operators.adapters import SqliteAuditLog, SqliteInviteStore
from chatapp.presence import PresenceStore, PresenceStoreError
from chatapp.presence.adapters import LevelDBPresenceStore
from chatapp.presence.adapters.leveldb_presence import (
    PresenceStoreInUse,
    PresenceStoreOutOfResources,
)
from chatapp.services import ReadinessCheck
from chatapp.social import BlockStore, ChannelStore, FriendStore
from chatapp.social.adapters import SqliteBlockStore, SqliteChannelStore, SqliteFriendStore
from chatapp.social.block_cache import RememberedBlocks
from chatapp.storage import apply_migrations, find_migrations, open_sqlite

SQLITE_CONNECTIONS: Final = 2
"""The SQLite connections a server keeps open: the accounts' and social's own."""


log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class OperatorStores:
    invites: InviteStore
    audit: AuditLog


@dataclass(frozen=True)
class UserStores:
    """The accounts module's stores, and the operators' beside them on the same database."""

    users: UserStore
    push_targets: PushTargetStore
    answers: ReadinessCheck
    operators: OperatorStores


@dataclass(frozen=True)
class Stores:
    accounts: UserStores
    channels: ChannelStore
    friends: FriendStore
    blocks: BlockStore
    messages: MessageStore
    presence: PresenceStore
    readiness_checks: list[ReadinessCheck]


def users_database(data_dir: Path) -> Path:
    return data_dir / "users.sqlite3"


async def open_user_stores(
    data_dir: Path, clock: Clock, stack: contextlib.AsyncExitStack
) -> UserStores:
    """The accounts module's stores, the schema brought up to date first.

    Raises `StartupRefused` when the database cannot be opened or migrated.
    """
    path = users_database(data_dir)
    try:
        connection = await open_sqlite(path)
        stack.push_async_callback(connection.close)
        await apply_migrations(connection, find_migrations(), now_ms=clock.now_ms())
    except (sqlite3.Error, OSError) as exc:
        raise StartupRefused(f"cannot open {path}: {exc}") from None
    return UserStores(
        users=SqliteUserStore(connection),
        push_targets=SqlitePushTargetStore(connection),
        answers=_sqlite_answers(connection),
        operators=OperatorStores(
            invites=SqliteInviteStore(connection), audit=SqliteAuditLog(connection)
        ),
    )


async def open_stores(data_dir: Path, clock: Clock, stack: contextlib.AsyncExitStack) -> Stores:
    """Every store of a server; `stack` closes them in reverse order.

    The stores are checked against each other first (`integrity`); a damaged
    or inconsistent folder, or one another server uses, raises `StartupRefused`.
    """
    # The message store first: its lock tells that another server uses the
    # folder before anything else is touched.
    messages = await open_message_store(data_dir)
    stack.push_async_callback(messages.close)
    accounts = await open_user_stores(data_dir, clock, stack)
    # Social gets a connection of its own, so that its transactions never take
    # in another module's statements.
    social_connection = await open_sqlite(users_database(data_dir))
    stack.push_async_callback(social_connection.close)
    try:
        await refuse_unless_consistent(messages, social_connection)
    except StartupRefused:
        if messages.created:
            # The folder made just now would pass as the store next time.
            await messages.close()
            shutil.rmtree(data_dir / "messages", ignore_errors=True)
        raise
    check_every_message(messages, stack)
    # Closed by presence itself, after it records who was online.
    presence = await open_presence_store(data_dir)
    # One lock for the writes of social's stores on their shared connection: a statement
    # sent while another store's transaction is open would join it (and its rollback).
    social_writes = asyncio.Lock()
    return Stores(
        accounts=accounts,
        channels=SqliteChannelStore(social_connection, write_lock=social_writes),
        friends=SqliteFriendStore(social_connection, write_lock=social_writes),
        # This process is the only one that writes blocks: the answers can be kept.
        blocks=RememberedBlocks(SqliteBlockStore(social_connection, write_lock=social_writes)),
        messages=messages,
        presence=presence,
        readiness_checks=[accounts.answers, leveldb_answers(messages)],
    )


def check_every_message(messages: LevelDBMessageStore, stack: contextlib.AsyncExitStack) -> None:
    """Check every message's idempotency record in the background, once per start.

    The start-up check reads only the ends of the ranges, so a big store is
    ready at once; damage this finds turns `/readyz` 503 (`leveldb_verify`).
    """

    async def check() -> None:
        started = time.monotonic()
        try:
            checked = await messages.verify_receipts()
        except MessageStoreError as failure:
            log.warning("message_store_check_stopped", error=str(failure))
            return
        # An empty store (a first start) is not worth a line.
        (log.info if checked else log.debug)(
            "message_store_checked",
            messages=checked,
            seconds=round(time.monotonic() - started, 1),
            damage=messages.damage(),
        )

    in_background(stack, check(), name="message-store-check")


async def open_message_store(data_dir: Path) -> LevelDBMessageStore:
    """The message store of `data_dir`; `StartupRefused` in one line when it cannot open."""
    try:
        return await LevelDBMessageStore.open(data_dir / "messages")
    except StoreInUse:
        raise StartupRefused(in_use(data_dir)) from None
    except DamagedStore as exc:
        raise refusal(f"the message store is damaged: {exc}") from None
    except MessageStoreError as exc:
        raise StartupRefused(f"cannot open the message store: {exc}") from None


async def open_presence_store(data_dir: Path) -> LevelDBPresenceStore:
    """The presence store of `data_dir`; `StartupRefused` in one line when it cannot open."""
    try:
        return await LevelDBPresenceStore.open(data_dir / "presence")
    except PresenceStoreInUse:
        raise StartupRefused(in_use(data_dir)) from None
    except PresenceStoreOutOfResources as exc:
        raise StartupRefused(f"cannot open the presence store: {exc}") from None
    except PresenceStoreError as exc:
        raise refusal(f"the presence store is damaged: {exc}") from None


def in_use(data_dir: Path) -> str:
    return (
        f"the data folder {data_dir} is in use by another chatapp process "
        "(its LevelDB lock is held); stop that server first, or give this one "
        "another --data-dir"
    )


def _sqlite_answers(connection: aiosqlite.Connection) -> ReadinessCheck:
    async def answers() -> bool:
        rows = await connection.execute_fetchall("SELECT 1")
        return next(iter(rows), None) is not None

    return answers


def leveldb_answers(store: LevelDBMessageStore) -> ReadinessCheck:
    """Ready while the store answers and no read or write has met damage in it."""
    reads = message_store_answers(store)

    async def answers() -> bool:
        return store.damage() is None and await reads()

    return answers


def message_store_answers(store: MessageStore) -> ReadinessCheck:
    async def answers() -> bool:
        try:
            await store.max_seq(1)
        except MessageStoreError:
            return False
        return True

    return answers
