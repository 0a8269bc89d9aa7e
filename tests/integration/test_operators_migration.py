"""Deactivation, invites and the audit log arrive by migration: an older database's users are
active afterwards, with every other field as stored, and the new tables start empty.

Each test builds the schema as it was before (every migration before the
operators one), stores a user and a device there with the SQL of that time,
then migrates and opens the real stores on it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import asyncpg
import pytest

from chatapp.accounts.adapters import SqliteUserStore
from chatapp.accounts.adapters.postgres_users import PostgresUserStore
from chatapp.operators import AuditEntry, AuditTarget, Invite
from chatapp.operators.adapters import SqliteAuditLog, SqliteInviteStore
from chatapp.operators.adapters.postgres_operators import PostgresAuditLog, PostgresInviteStore
from chatapp.storage import apply_migrations, find_migrations, open_sqlite
from chatapp.storage.postgres import (
    apply_postgres_migrations,
    find_postgres_migrations,
    open_postgres,
)
from tests.integration.migration_steps import migrations_before

OPERATORS = "operators"
OLD_USER = (
    "INSERT INTO users (username, display_name, about, password_hash, created_at, role)"
    " VALUES ('alice', 'Alice', 'hi', 'hash', 1000, 'admin')"
)
INVITE = Invite(code="c0de", uses_left=1, expires_at=None, created_at=1, created_by=None)
ENTRY = AuditEntry(at=1, actor_id=None, action="invite_create", target=AuditTarget.invite("c0de"))


async def test_a_sqlite_database_from_before_gets_active_users_and_empty_tables(
    tmp_path: Path,
) -> None:
    """An old users.sqlite3 migrates in place: its user is active (its password is not
    refused), listed with its device's last call, and can be deactivated; invites and audit
    events can be written; uses below zero are refused by the schema."""
    path = tmp_path / "users.sqlite3"
    old = await open_sqlite(path)
    try:
        assert await apply_migrations(
            old, migrations_before(find_migrations(), OPERATORS), now_ms=1
        )
        await old.execute(OLD_USER)
        await old.execute(
            "INSERT INTO devices (user_id, name, token_hash, created_at, last_seen_at)"
            " VALUES (1, 'phone', 'token-hash', 1000, 1500)"
        )
    finally:
        await old.close()

    database = await open_sqlite(path)
    try:
        applied = await apply_migrations(database, find_migrations(), now_ms=2)
        assert applied[0] == len(migrations_before(find_migrations(), OPERATORS)) + 1
        users = SqliteUserStore(database)
        credentials = await users.get_credentials("alice")
        assert credentials is not None
        assert (credentials.user.about, credentials.user.role) == ("hi", "admin")
        assert not credentials.deactivated
        [account] = await users.list_accounts("", after=0, limit=5)
        assert (account.deactivated, account.last_seen_at) == (False, 1500)
        assert await users.deactivate_user(1, at=3, reason="r")
        invites, audit = SqliteInviteStore(database), SqliteAuditLog(database)
        assert await invites.list_invites() == []
        await invites.create_invite(INVITE)
        assert (await audit.append(ENTRY)).event_id == 1
        with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
            await database.execute("UPDATE invites SET uses_left = -1")
    finally:
        await database.close()


async def test_a_postgresql_schema_from_before_gets_active_users_and_empty_tables(
    postgres_schema_url: str,
) -> None:
    """The same on PostgreSQL: the old user is active and listed, the new tables take rows,
    and the schema refuses uses below zero."""
    pool = await open_postgres(postgres_schema_url)
    try:
        earlier = migrations_before(find_postgres_migrations(), OPERATORS)
        assert await apply_postgres_migrations(pool, now_ms=1, migrations=earlier)
        await pool.execute(OLD_USER)
        user_id = await pool.fetchval("SELECT user_id FROM users WHERE username = 'alice'")
        applied = await apply_postgres_migrations(pool, now_ms=2)
        assert applied[0] == len(earlier) + 1
        users = PostgresUserStore(pool)
        credentials = await users.get_credentials("alice")
        assert credentials is not None
        assert (credentials.user.user_id, credentials.deactivated) == (user_id, False)
        [account] = await users.list_accounts("ali", after=0, limit=5)
        assert (account.deactivated_at, account.last_seen_at) == (None, None)
        invites, audit = PostgresInviteStore(pool), PostgresAuditLog(pool)
        await invites.create_invite(INVITE)
        assert await invites.list_invites() == [INVITE]
        event = await audit.append(ENTRY)
        assert await audit.events(after=0, limit=5) == [event]
        with pytest.raises(asyncpg.CheckViolationError):
            await pool.execute("UPDATE invites SET uses_left = -1")
    finally:
        await pool.close()
