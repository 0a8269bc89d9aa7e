"""The contracts of the operators module's stores; SQLite and PostgreSQL implement them."""

from __future__ import annotations

from typing import Protocol

from chatapp.errors import StoreFailed
from chatapp.operators.models import AuditEntry, AuditEvent, Invite


class OperatorStoreError(StoreFailed):
    """An invite or audit store could not read or write; nothing of the call was changed."""


class InviteStore(Protocol):
    """Invite codes and how many uses each has left."""

    async def create_invite(self, invite: Invite) -> None:
        """Store a new invite (its code is new: 128 random bits)."""
        ...

    async def list_invites(self) -> list[Invite]:
        """Every invite not revoked, used up and expired ones included, oldest first."""
        ...

    async def delete_invite(self, code: str) -> bool:
        """Revoke an invite; False when there is no such code."""
        ...

    async def claim_invite(self, code: str, *, now_ms: int) -> bool:
        """Take one use of a usable invite, atomically: of racing claims on its last use,
        exactly one is True. False for an unknown, used-up or expired code."""
        ...

    async def release_invite(self, code: str) -> None:
        """Give back a use claimed for a signup that then failed (nothing if it is gone)."""
        ...


class AuditLog(Protocol):
    """The operators' actions, in the order they were recorded."""

    async def append(self, entry: AuditEntry) -> AuditEvent:
        """Record an action; the event with its new id."""
        ...

    async def events(self, *, after: int, limit: int) -> list[AuditEvent]:
        """Events with an id above `after`, oldest first, at most `limit`."""
        ...
