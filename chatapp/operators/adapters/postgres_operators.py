"""InviteStore and AuditLog on PostgreSQL, for many nodes writing at once."""

from __future__ import annotations

import asyncpg

from chatapp.operators.adapters.rows import (
    AUDIT_COLUMNS,
    INVITE_COLUMNS,
    event_from,
    invite_from,
    target_text,
)
from chatapp.operators.models import AuditEntry, AuditEvent, Invite
from chatapp.operators.store import OperatorStoreError
from chatapp.storage.postgres import raises


@raises(OperatorStoreError)
class PostgresInviteStore:
    """Invites in the `invites` table.

    A claim is one UPDATE whose condition PostgreSQL checks again on the row
    after waiting for another node's lock on it: of claims racing for the
    last use, exactly one finds `uses_left > 0`.
    """

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create_invite(self, invite: Invite) -> None:
        await self._pool.execute(
            f"INSERT INTO invites ({INVITE_COLUMNS}) VALUES ($1, $2, $3, $4, $5)",
            invite.code,
            invite.uses_left,
            invite.expires_at,
            invite.created_at,
            invite.created_by,
        )

    async def list_invites(self) -> list[Invite]:
        rows = await self._pool.fetch(f"SELECT {INVITE_COLUMNS} FROM invites ORDER BY invite_id")
        return [invite_from(row) for row in rows]

    async def delete_invite(self, code: str) -> bool:
        deleted = await self._pool.fetchval(
            "DELETE FROM invites WHERE code = $1 RETURNING true", code
        )
        return deleted is not None

    async def claim_invite(self, code: str, *, now_ms: int) -> bool:
        claimed = await self._pool.fetchval(
            "UPDATE invites SET uses_left = uses_left - 1 WHERE code = $1 AND uses_left > 0"
            " AND (expires_at IS NULL OR expires_at > $2) RETURNING true",
            code,
            now_ms,
        )
        return claimed is not None

    async def release_invite(self, code: str) -> None:
        await self._pool.execute(
            "UPDATE invites SET uses_left = uses_left + 1 WHERE code = $1", code
        )


@raises(OperatorStoreError)
class PostgresAuditLog:
    """Events in the `audit_events` table, ids from its identity sequence."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def append(self, entry: AuditEntry) -> AuditEvent:
        event_id = await self._pool.fetchval(
            "INSERT INTO audit_events (at, actor_id, action, target, reason)"
            " VALUES ($1, $2, $3, $4, $5) RETURNING event_id",
            entry.at,
            entry.actor_id,
            entry.action,
            target_text(entry),
            entry.reason,
        )
        return AuditEvent(event_id=event_id, **entry.model_dump())

    async def events(self, *, after: int, limit: int) -> list[AuditEvent]:
        rows = await self._pool.fetch(
            f"SELECT {AUDIT_COLUMNS} FROM audit_events WHERE event_id > $1"
            " ORDER BY event_id LIMIT $2",
            after,
            limit,
        )
        return [event_from(row) for row in rows]
