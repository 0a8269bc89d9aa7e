"""What the operators module knows: how people may sign up, invites, and the audit log."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

RegistrationPolicy = Literal["open", "invite", "closed"]
"""Who may sign up over HTTP: anyone, holders of an invite code, or nobody (the CLI still may)."""

AuditAction = Literal[
    "deactivate",
    "reactivate",
    "grant_admin",
    "revoke_admin",
    "delete_message",
    "invite_create",
    "invite_revoke",
]

TargetKind = Literal["user", "message", "invite"]


class Invite(BaseModel):
    """A code that lets `uses_left` more people sign up while registration is by invite."""

    model_config = ConfigDict(frozen=True)

    code: str
    uses_left: int
    expires_at: int | None
    """When it stops working (ms); None: never."""
    created_at: int
    created_by: int | None
    """The admin who made it; None when an operator made it at the command line."""

    def usable(self, now_ms: int) -> bool:
        return self.uses_left > 0 and (self.expires_at is None or now_ms < self.expires_at)


class AuditTarget(BaseModel):
    """What an action was done to: a user (`id` its user id), a message (`id` its message id,
    with its channel), or an invite (`id` its code)."""

    model_config = ConfigDict(frozen=True)

    kind: TargetKind
    id: int | str
    channel_id: int | None = None

    @classmethod
    def user(cls, user_id: int) -> AuditTarget:
        return cls(kind="user", id=user_id)

    @classmethod
    def message(cls, channel_id: int, message_id: int) -> AuditTarget:
        return cls(kind="message", id=message_id, channel_id=channel_id)

    @classmethod
    def invite(cls, code: str) -> AuditTarget:
        return cls(kind="invite", id=code)


class AuditEntry(BaseModel):
    """An action to record; the log gives it its `event_id`."""

    model_config = ConfigDict(frozen=True)

    at: int
    actor_id: int | None
    """The admin who acted; None for an operator at the command line."""
    action: AuditAction
    target: AuditTarget
    reason: str | None = None
    """Why, when the actor said (a deactivation's reason)."""


class AuditEvent(AuditEntry):
    """A recorded action; event ids ascend in the order the actions were recorded."""

    event_id: int
