"""`chatapp check` and `chatapp repair`: a stopped data folder read whole, and mended.

Both take the folder's LevelDB locks first, so neither runs beside a server
(nor a server beside them). `check` changes nothing; `repair` rebuilds what
the records say (see `leveldb_repair`) and, for users and channels that the
message store has records of but SQLite lost, keeps placeholder rows: SQLite
hands out a new id as one above its highest row, so a placeholder is what
keeps a lost id from being handed to someone else. The lost rows themselves
(names, password hashes, devices, memberships) cannot be derived: they are
named as lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import aiosqlite

from chatapp.bootstrap.stores import in_use, users_database
from chatapp.clock import SystemClock
from chatapp.errors import StartupRefused
from chatapp.messaging.adapters.leveldb_audit import Audit, audit_store
from chatapp.messaging.adapters.leveldb_layout import DamagedStore, StoreInUse, open_db
from chatapp.messaging.adapters.leveldb_repair import repair_store
from chatapp.presence.adapters.leveldb_presence import (
    PresenceStoreInUse,
    check_presence,
    repair_presence,
)
from chatapp.storage import apply_migrations, find_migrations, open_sqlite

PLACEHOLDER_PREFIX: Final = "~lost-"
"""Placeholder usernames: `~` is outside the username alphabet, so nobody can sign up as one."""
EXAMPLES: Final = 5


@dataclass
class FolderReport:
    """What a check or a repair found and did, one line each."""

    lines: list[str] = field(default_factory=list)
    whole: bool = True


@dataclass(frozen=True)
class _SqliteIds:
    users: set[int]
    channels: set[int]


async def check_folder(data_dir: Path) -> FolderReport:
    """Read every record of the stopped folder; `StartupRefused` while a server uses it."""
    report = FolderReport()
    presence = await asyncio.to_thread(_presence, check_presence, data_dir)
    if presence:
        report.lines.append(f"presence: {presence}")
    audit: Audit | None = None
    sqlite: _SqliteIds | None = None
    db = await asyncio.to_thread(_open_messages, data_dir, report)
    if db is not None:
        # Held open meanwhile: its lock keeps a server from starting on the folder.
        try:
            audit = await asyncio.to_thread(audit_store, db, data_dir / "messages")
            sqlite = await _check_sqlite(data_dir, report)
        finally:
            db.close()
    else:
        sqlite = await _check_sqlite(data_dir, report)
    if audit is not None:
        report.lines.extend(f"messages: {line}" for line in audit.problems())
        if sqlite is not None:
            report.lines.extend(_lost_rows(audit, sqlite))
    report.whole = not report.lines
    summary = "whole" if report.whole else "DAMAGED"
    counts = "" if audit is None else f" ({_counts(audit)})"
    report.lines.append(f"{data_dir}: {summary}{counts}")
    return report


async def repair_folder(data_dir: Path) -> FolderReport:
    """Repair the stopped folder; what was done and lost, and whether it is whole now."""
    report = FolderReport()
    presence = await asyncio.to_thread(_presence, repair_presence, data_dir)
    if presence:
        report.lines.append(f"presence: {presence}")
    async with _users_database(data_dir) as connection:
        known = await _sqlite_ids(connection)
        folder = data_dir / "messages"
        missing = not folder.exists() or not any(folder.iterdir())
        try:
            done, after = await asyncio.to_thread(
                functools.partial(
                    repair_store,
                    folder,
                    channel_ids=known.channels,
                    user_ids=known.users,
                    assume_lost=missing and bool(known.channels),
                )
            )
        except StoreInUse:
            raise StartupRefused(in_use(data_dir)) from None
        report.lines.extend(f"messages: {line}" for line in done)
        report.lines.extend(await _keep_placeholders(connection, after, known))
    checked = await check_folder(data_dir)
    report.lines.extend(checked.lines)
    report.whole = checked.whole
    return report


def _presence(act: Callable[[Path], str | None], data_dir: Path) -> str | None:
    try:
        return act(data_dir / "presence")
    except PresenceStoreInUse:
        raise StartupRefused(in_use(data_dir)) from None


def _open_messages(data_dir: Path, report: FolderReport) -> Any:
    folder = data_dir / "messages"
    if not folder.exists():
        report.lines.append(f"messages: {folder} is missing")
        return None
    try:
        return open_db(folder)
    except StoreInUse:
        raise StartupRefused(in_use(data_dir)) from None
    except DamagedStore as exc:
        report.lines.append(f"messages: {exc}")
        return None


async def _check_sqlite(data_dir: Path, report: FolderReport) -> _SqliteIds | None:
    path = users_database(data_dir)
    if not path.exists():
        report.lines.append(f"users: {path} is missing")
        return None
    connection = await open_sqlite(path)
    try:
        rows = await connection.execute_fetchall("PRAGMA integrity_check")
        verdict = [str(row[0]) for row in rows]
        if verdict != ["ok"]:
            report.lines.append(f"users: {path} is damaged: {'; '.join(verdict[:EXAMPLES])}")
            return None
        return await _sqlite_ids(connection)
    finally:
        await connection.close()


@contextlib.asynccontextmanager
async def _users_database(data_dir: Path) -> AsyncIterator[aiosqlite.Connection]:
    connection = await open_sqlite(users_database(data_dir))
    try:
        await apply_migrations(connection, find_migrations(), now_ms=SystemClock().now_ms())
        yield connection
    finally:
        await connection.close()


async def _sqlite_ids(connection: aiosqlite.Connection) -> _SqliteIds:
    found: list[set[int]] = []
    for query in ("SELECT user_id FROM users", "SELECT channel_id FROM channels"):
        rows = await connection.execute_fetchall(query)
        found.append({int(row[0]) for row in rows})
    return _SqliteIds(users=found[0], channels=found[1])


def _lost_rows(audit: Audit, sqlite: _SqliteIds) -> list[str]:
    lines: list[str] = []
    for kind, ours, theirs in (
        ("users", audit.user_ids, sqlite.users),
        ("channels", audit.channel_ids, sqlite.channels),
    ):
        lost = sorted(ours - theirs)
        if not lost:
            continue
        top = max(theirs, default=0)
        reused = [i for i in lost if i > top]
        danger = (
            f"; {len(reused)} of them above its highest id {top}, which SQLite would hand out again"
            if reused
            else ""
        )
        lines.append(
            f"users: users.sqlite3 lost {len(lost)} {kind} that the message store has records"
            f" of (ids {_shown(lost)}){danger}"
        )
    return lines


async def _keep_placeholders(
    connection: aiosqlite.Connection, audit: Audit, known: _SqliteIds
) -> list[str]:
    now = SystemClock().now_ms()
    users = sorted(audit.user_ids - known.users)
    channels = sorted(audit.channel_ids - known.channels)
    await connection.execute("BEGIN IMMEDIATE")
    try:
        await connection.executemany(
            "INSERT INTO users (user_id, username, display_name, about, password_hash,"
            " created_at) VALUES (?, ?, 'Lost account', '', '!', ?)",
            [(user_id, f"{PLACEHOLDER_PREFIX}{user_id}", now) for user_id in users],
        )
        await connection.executemany(
            "INSERT INTO channels (channel_id, kind, name, owner_id, direct_key, created_at)"
            " VALUES (?, 'group', 'Lost channel', NULL, NULL, ?)",
            [(channel_id, now) for channel_id in channels],
        )
    except BaseException:
        await connection.execute("ROLLBACK")
        raise
    await connection.execute("COMMIT")
    lines: list[str] = []
    if users:
        lines.append(
            f"users: {len(users)} users lost by users.sqlite3 (ids {_shown(users)}) are kept as"
            f" placeholders {PLACEHOLDER_PREFIX}<id> that cannot log in, so their ids are never"
            " handed out again; their names, passwords, devices and friendships are lost"
        )
    if channels:
        lines.append(
            f"users: {len(channels)} channels lost by users.sqlite3 (ids {_shown(channels)}) are"
            " kept as placeholder channels without members; who was in them is lost"
        )
    return lines


def _counts(audit: Audit) -> str:
    return (
        f"{audit.messages} messages, {audit.inbox_entries} inbox entries, "
        f"{audit.receipts} idempotency records"
    )


def _shown(ids: list[int]) -> str:
    shown = ", ".join(str(i) for i in ids[:EXAMPLES])
    return shown + (", …" if len(ids) > EXAMPLES else "")
