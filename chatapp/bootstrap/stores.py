"""Opening the embedded stores: SQLite for users, LevelDB for messages and presence.

This is where a second set of engines (PostgreSQL, Redis) plugs in: the
modules receive stores by their protocols and never learn which they got.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import aiosqlite

from chatapp.accounts import PushTargetStore, UserStore
from chatapp.accounts.adapters import SqlitePushTargetStore, SqliteUserStore
from chatapp.clock import Clock
from chatapp.messaging import MessageStore, MessageStoreError
from chatapp.messaging.adapters import LevelDBMessageStore
from chatapp.presence import PresenceStore
from chatapp.presence.adapters import LevelDBPresenceStore
from chatapp.services import ReadinessCheck
from chatapp.social import ChannelStore, FriendStore
from chatapp.social.adapters import SqliteChannelStore, SqliteFriendStore
from chatapp.storage import apply_migrations, find_migrations, open_sqlite


@dataclass(frozen=True)
class UserStores:
    users: UserStore
    push_targets: PushTargetStore
    answers: ReadinessCheck


@dataclass(frozen=True)
class Stores:
    accounts: UserStores
    channels: ChannelStore
    friends: FriendStore
    messages: MessageStore
    presence: PresenceStore
    readiness_checks: list[ReadinessCheck]


def users_database(data_dir: Path) -> Path:
    return data_dir / "users.sqlite3"


async def open_user_stores(
    data_dir: Path, clock: Clock, stack: contextlib.AsyncExitStack
) -> UserStores:
    """The accounts module's stores, the schema brought up to date first."""
    connection = await open_sqlite(users_database(data_dir))
    stack.push_async_callback(connection.close)
    await apply_migrations(connection, find_migrations(), now_ms=clock.now_ms())
    return UserStores(
        users=SqliteUserStore(connection),
        push_targets=SqlitePushTargetStore(connection),
        answers=_sqlite_answers(connection),
    )


async def open_stores(data_dir: Path, clock: Clock, stack: contextlib.AsyncExitStack) -> Stores:
    """Every store of a server; `stack` closes them in reverse order."""
    accounts = await open_user_stores(data_dir, clock, stack)
    # Social gets a connection of its own, so that its transactions never take
    # in another module's statements.
    social_connection = await open_sqlite(users_database(data_dir))
    stack.push_async_callback(social_connection.close)
    messages = await LevelDBMessageStore.open(data_dir / "messages")
    stack.push_async_callback(messages.close)
    # Closed by presence itself, after it records who was online.
    presence = await LevelDBPresenceStore.open(data_dir / "presence")
    return Stores(
        accounts=accounts,
        channels=SqliteChannelStore(social_connection),
        friends=SqliteFriendStore(social_connection),
        messages=messages,
        presence=presence,
        readiness_checks=[accounts.answers, message_store_answers(messages)],
    )


def _sqlite_answers(connection: aiosqlite.Connection) -> ReadinessCheck:
    async def answers() -> bool:
        async with connection.execute("SELECT 1") as cursor:
            return await cursor.fetchone() is not None

    return answers


def message_store_answers(store: MessageStore) -> ReadinessCheck:
    async def answers() -> bool:
        try:
            await store.max_seq(1)
        except MessageStoreError:
            return False
        return True

    return answers
