"""InviteStore and AuditLog on SQLite, on the accounts' connection (the same users.sqlite3)."""

from __future__ import annotations

import aiosqlite

from chatapp.operators.adapters.rows import (
    AUDIT_COLUMNS,
    INVITE_COLUMNS,
    event_from,
    invite_from,
    target_text,
)
from chatapp.operators.models import AuditEntry, AuditEvent, Invite
from chatapp.operators.store import OperatorStoreError
from chatapp.storage.sqlite import raises


@raises(OperatorStoreError)
class SqliteInviteStore:
    """Invites in the `invites` table; each write is one statement, so it is atomic."""

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._db = connection

    async def create_invite(self, invite: Invite) -> None:
        await self._db.execute(
            f"INSERT INTO invites ({INVITE_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
            (
                invite.code,
                invite.uses_left,
                invite.expires_at,
                invite.created_at,
                invite.created_by,
            ),
        )

    async def list_invites(self) -> list[Invite]:
        rows = await self._db.execute_fetchall(
            f"SELECT {INVITE_COLUMNS} FROM invites ORDER BY invite_id"
        )
        return [invite_from(row) for row in rows]

    async def delete_invite(self, code: str) -> bool:
        cursor = await self._db.execute("DELETE FROM invites WHERE code = ?", (code,))
        return cursor.rowcount == 1

    async def claim_invite(self, code: str, *, now_ms: int) -> bool:
        cursor = await self._db.execute(
            "UPDATE invites SET uses_left = uses_left - 1 WHERE code = ? AND uses_left > 0"
            " AND (expires_at IS NULL OR expires_at > ?)",
            (code, now_ms),
        )
        return cursor.rowcount == 1

    async def release_invite(self, code: str) -> None:
        await self._db.execute(
            "UPDATE invites SET uses_left = uses_left + 1 WHERE code = ?", (code,)
        )


@raises(OperatorStoreError)
class SqliteAuditLog:
    """Events in the `audit_events` table, ids handed out by SQLite in insertion order."""

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._db = connection

    async def append(self, entry: AuditEntry) -> AuditEvent:
        cursor = await self._db.execute(
            "INSERT INTO audit_events (at, actor_id, action, target, reason)"
            " VALUES (?, ?, ?, ?, ?)",
            (entry.at, entry.actor_id, entry.action, target_text(entry), entry.reason),
        )
        event_id = cursor.lastrowid
        assert event_id is not None
        return AuditEvent(event_id=event_id, **entry.model_dump())

    async def events(self, *, after: int, limit: int) -> list[AuditEvent]:
        rows = await self._db.execute_fetchall(
            f"SELECT {AUDIT_COLUMNS} FROM audit_events WHERE event_id > ?"
            " ORDER BY event_id LIMIT ?",
            (after, limit),
        )
        return [event_from(row) for row in rows]
