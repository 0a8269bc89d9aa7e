"""What admins do to accounts and messages: deactivation, roles, and deletions on the record."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from chatapp.accounts import Account, Accounts, Role, User
from chatapp.errors import Forbidden
from chatapp.operators.audit import AuditTrail
from chatapp.operators.models import AuditAction, AuditTarget


class DeletedMessage(Protocol):
    """What the audit needs of a deleted message (messaging's stored message has it)."""

    @property
    def channel_id(self) -> int: ...

    @property
    def message_id(self) -> int: ...

    @property
    def sender_id(self) -> int: ...


@dataclass(frozen=True)
class AccountPage:
    accounts: list[Account]
    has_more: bool


class Moderation:
    """Every change here is recorded in the audit log when it changed something.

    `actor_id` is the admin who acts over HTTP, None for the operator at the
    command line.
    """

    def __init__(self, accounts: Accounts, audit: AuditTrail) -> None:
        self._accounts = accounts
        self._audit = audit

    async def accounts_page(self, *, query: str, after: int, limit: int) -> AccountPage:
        """Accounts whose username starts with `query`, by user id above `after`."""
        found = await self._accounts.list_accounts(query, after=after, limit=limit + 1)
        return AccountPage(accounts=found[:limit], has_more=len(found) > limit)

    async def deactivate(
        self, user_id: int, *, actor_id: int | None, reason: str | None = None
    ) -> User:
        """Refuse the user's logins and revoke every device now (their sockets close with 4401,
        on every node). An admin cannot deactivate themself: someone must be left to undo it."""
        if actor_id == user_id:
            raise Forbidden("forbidden", "an admin cannot deactivate their own account")
        user, changed = await self._accounts.deactivate(user_id, reason)
        if changed:
            await self._audit.record(
                actor_id, "deactivate", AuditTarget.user(user_id), reason=reason
            )
        return user

    async def reactivate(self, user_id: int, *, actor_id: int | None) -> User:
        """Allow logins again; devices revoked by the deactivation stay revoked."""
        user, changed = await self._accounts.reactivate(user_id)
        if changed:
            await self._audit.record(actor_id, "reactivate", AuditTarget.user(user_id))
        return user

    async def deactivate_named(self, username: str, reason: str | None = None) -> User:
        """`chatapp deactivate NAME`."""
        user = await self._accounts.user_named(username)
        return await self.deactivate(user.user_id, actor_id=None, reason=reason)

    async def reactivate_named(self, username: str) -> User:
        """`chatapp reactivate NAME`."""
        user = await self._accounts.user_named(username)
        return await self.reactivate(user.user_id, actor_id=None)

    async def set_role(self, username: str, role: Role, *, actor_id: int | None = None) -> User:
        """`chatapp grant-admin` / `revoke-admin`: recorded when the role changes."""
        return await self._change_role(await self._accounts.user_named(username), role, actor_id)

    async def set_role_of(self, user_id: int, role: Role, *, actor_id: int) -> User:
        """An admin grants or revokes the admin role over HTTP, recorded as the CLI's is.

        An admin cannot revoke their own role: whoever asks is an admin, so the
        server always keeps one, and someone is left to undo any change. The
        command line, which needs no admin, can.
        """
        before = await self._accounts.get_user(user_id)
        if actor_id == user_id and role != before.role:
            raise Forbidden("forbidden", "an admin cannot revoke their own admin role")
        return await self._change_role(before, role, actor_id)

    async def _change_role(self, before: User, role: Role, actor_id: int | None) -> User:
        user = await self._accounts.set_role(before.username, role)
        if user.role != before.role:
            action: AuditAction = "grant_admin" if user.is_admin else "revoke_admin"
            await self._audit.record(actor_id, action, AuditTarget.user(user.user_id))
        return user

    async def create_user(self, username: str, password: str, role: Role) -> User:
        """`chatapp create-user`; an admin made this way is recorded as a grant."""
        user = await self._accounts.signup(username, password, address="cli", role=role)
        if user.is_admin:
            await self._audit.record(None, "grant_admin", AuditTarget.user(user.user_id))
        return user

    async def message_deleted(self, actor_id: int, message: DeletedMessage) -> None:
        """Record a deletion of someone else's message (by an admin or a group's owner)."""
        if message.sender_id == actor_id:
            return
        target = AuditTarget.message(message.channel_id, message.message_id)
        await self._audit.record(actor_id, "delete_message", target)
