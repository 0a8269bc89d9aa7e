"""Rows of the invites and audit_events tables as models: the same columns on both engines."""

from __future__ import annotations

import json
from typing import Any

from chatapp.operators.models import AuditEntry, AuditEvent, AuditTarget, Invite

INVITE_COLUMNS = "code, uses_left, expires_at, created_at, created_by"
AUDIT_COLUMNS = "event_id, at, actor_id, action, target, reason"


def invite_from(row: Any) -> Invite:
    return Invite(
        code=row["code"],
        uses_left=row["uses_left"],
        expires_at=row["expires_at"],
        created_at=row["created_at"],
        created_by=row["created_by"],
    )


def target_text(entry: AuditEntry) -> str:
    """The target as the `target` column keeps it: JSON, without the fields it lacks."""
    return json.dumps(entry.target.model_dump(exclude_none=True), separators=(",", ":"))


def event_from(row: Any) -> AuditEvent:
    return AuditEvent(
        event_id=row["event_id"],
        at=row["at"],
        actor_id=row["actor_id"],
        action=row["action"],
        target=AuditTarget.model_validate_json(row["target"]),
        reason=row["reason"],
    )
