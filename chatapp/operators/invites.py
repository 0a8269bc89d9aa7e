"""Invite codes: made and revoked by admins, spent by signups while registration is by invite."""

from __future__ import annotations

import secrets
from typing import Final

import structlog

from chatapp.clock import Clock
from chatapp.errors import BadRequest, Forbidden, NotFound
from chatapp.operators.audit import AuditTrail
from chatapp.operators.models import AuditTarget, Invite
from chatapp.operators.store import InviteStore

log = structlog.get_logger(__name__)

CODE_BYTES: Final = 16
"""128 random bits: a code cannot be guessed, so failed claims need no limit of their own."""
MAX_USES: Final = 10_000
MAX_EXPIRES_IN_S: Final = 10 * 365 * 24 * 3600


def new_code() -> str:
    """A random code that does not begin with `-`, so that `chatapp invite revoke CODE` does not
    read it as an option."""
    while (code := secrets.token_urlsafe(CODE_BYTES)).startswith("-"):
        pass
    return code


def invite_required() -> Forbidden:
    return Forbidden("invite_required", "signing up needs a valid invite code")


class Invites:
    def __init__(self, store: InviteStore, audit: AuditTrail, clock: Clock) -> None:
        self._store = store
        self._audit = audit
        self._clock = clock

    async def create(
        self, *, actor_id: int | None, uses: int = 1, expires_in_s: int | None = None
    ) -> Invite:
        """A new code for `uses` signups, working for `expires_in_s` seconds (None: for ever)."""
        if not 1 <= uses <= MAX_USES:
            raise BadRequest(f"uses: must be 1 to {MAX_USES:,}")
        if expires_in_s is not None and not 1 <= expires_in_s <= MAX_EXPIRES_IN_S:
            raise BadRequest(f"expires_in_s: must be 1 to {MAX_EXPIRES_IN_S:,}")
        now = self._clock.now_ms()
        invite = Invite(
            code=new_code(),
            uses_left=uses,
            expires_at=None if expires_in_s is None else now + expires_in_s * 1000,
            created_at=now,
            created_by=actor_id,
        )
        await self._store.create_invite(invite)
        await self._audit.record(actor_id, "invite_create", AuditTarget.invite(invite.code))
        return invite

    async def list_invites(self) -> list[Invite]:
        """Every invite not revoked, oldest first (used up and expired ones too)."""
        return await self._store.list_invites()

    async def revoke(self, code: str, *, actor_id: int | None) -> None:
        if not await self._store.delete_invite(code):
            raise NotFound("not_found", "no such invite")
        await self._audit.record(actor_id, "invite_revoke", AuditTarget.invite(code))

    async def claim(self, code: str) -> None:
        """Spend one use of `code`; `invite_required` when it is unknown, used up or expired."""
        if not await self._store.claim_invite(code, now_ms=self._clock.now_ms()):
            log.info("invite_refused")
            raise invite_required()

    async def release(self, code: str) -> None:
        """Give back the use a failed signup claimed."""
        await self._store.release_invite(code)
