"""An `InviteStore` and an `AuditLog` in memory, with the SQL stores' semantics."""

from __future__ import annotations

from chatapp.operators.models import AuditEntry, AuditEvent, Invite
from chatapp.operators.store import OperatorStoreError
from chatapp.testing.fakes.failures import CanFail


class FakeInviteStore(CanFail):
    """`InviteStore` in a dict, in creation order: a claim takes a use only from a usable
    invite (one that has uses left and has not expired), as the SQL stores' single UPDATE
    does. `failing`/`fail_next` raise `OperatorStoreError`."""

    error = OperatorStoreError

    def __init__(self) -> None:
        super().__init__()
        self._invites: dict[str, Invite] = {}

    async def create_invite(self, invite: Invite) -> None:
        self._fail_if_told("create_invite")
        if invite.code in self._invites:
            raise OperatorStoreError("IntegrityError: UNIQUE constraint failed: invites.code")
        self._invites[invite.code] = invite

    async def list_invites(self) -> list[Invite]:
        self._fail_if_told("list_invites")
        return list(self._invites.values())

    async def delete_invite(self, code: str) -> bool:
        self._fail_if_told("delete_invite")
        return self._invites.pop(code, None) is not None

    async def claim_invite(self, code: str, *, now_ms: int) -> bool:
        self._fail_if_told("claim_invite")
        invite = self._invites.get(code)
        if invite is None or not invite.usable(now_ms):
            return False
        self._invites[code] = invite.model_copy(update={"uses_left": invite.uses_left - 1})
        return True

    async def release_invite(self, code: str) -> None:
        self._fail_if_told("release_invite")
        invite = self._invites.get(code)
        if invite is not None:
            self._invites[code] = invite.model_copy(update={"uses_left": invite.uses_left + 1})


class FakeAuditLog(CanFail):
    """`AuditLog` in a list; event ids count from 1. `failing`/`fail_next` raise
    `OperatorStoreError`."""

    error = OperatorStoreError

    def __init__(self) -> None:
        super().__init__()
        self.recorded: list[AuditEvent] = []

    async def append(self, entry: AuditEntry) -> AuditEvent:
        self._fail_if_told("append")
        event = AuditEvent(event_id=len(self.recorded) + 1, **entry.model_dump())
        self.recorded.append(event)
        return event

    async def events(self, *, after: int, limit: int) -> list[AuditEvent]:
        self._fail_if_told("events")
        return [event for event in self.recorded if event.event_id > after][:limit]
