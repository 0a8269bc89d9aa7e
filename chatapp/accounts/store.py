"""The contract of the user store; SQLite is one implementation."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from chatapp.accounts.models import Account, Credentials, Device, GroupAdds, Role, User
from chatapp.errors import StoreFailed


class UsernameTaken(Exception):
    """Another user already has this username."""


class UserStoreError(StoreFailed):
    """The user store could not read or write; nothing of the call was changed."""


class UserStore(Protocol):
    """Persistent users and devices. Usernames arrive already normalised."""

    async def create_user(
        self,
        *,
        username: str,
        display_name: str,
        password_hash: str,
        created_at: int,
        role: Role = "member",
    ) -> User:
        """Insert a user; raise UsernameTaken if the name exists (atomically, under races)."""
        ...

    async def get_user(self, user_id: int) -> User | None: ...

    async def existing_user_ids(self, user_ids: Iterable[int]) -> set[int]:
        """The subset of these ids that belong to users, leaving out accounts their owners
        deleted: nobody can add, befriend or open a chat with those any more."""
        ...

    async def get_users(self, user_ids: Iterable[int]) -> list[User]:
        """The users with these ids, in the order asked; unknown ids are left out."""
        ...

    async def get_credentials(self, username: str) -> Credentials | None: ...

    async def set_password_hash(self, user_id: int, password_hash: str) -> None: ...

    async def update_profile(
        self,
        user_id: int,
        *,
        display_name: str | None,
        about: str | None,
        share_read_receipts: bool | None = None,
        group_adds: GroupAdds | None = None,
    ) -> User | None:
        """Change the given fields (None leaves one as it is); return the new profile."""
        ...

    async def receipt_sharers(self, user_ids: Iterable[int]) -> set[int]:
        """The subset of these ids whose users share their read receipts."""
        ...

    async def only_friends_add(self, user_ids: Iterable[int]) -> set[int]:
        """The subset of these ids whose users let only their friends add them to groups."""
        ...

    async def set_role(self, user_id: int, role: Role) -> User | None:
        """Give the user this role; the user as it now is, None when there is no such user."""
        ...

    async def find_users(self, username_prefix: str, *, limit: int) -> list[User]:
        """Users whose name starts with the prefix; an exact match comes first. Deleted
        accounts are not found."""
        ...

    async def deactivate_user(self, user_id: int, *, at: int, reason: str | None) -> bool:
        """Mark an active user deactivated; False when it already was (the first reason stays)
        or there is no such user."""
        ...

    async def reactivate_user(self, user_id: int) -> bool:
        """Clear a user's deactivation; False when it was not deactivated, or the account
        was deleted (a deletion is for good)."""
        ...

    async def delete_user(
        self, user_id: int, *, at: int, display_name: str, erase_messages: bool
    ) -> bool:
        """Mark the account deleted by its owner, in one write: `deleted_at`, deactivated
        (the first deactivation's time stays), the profile emptied (this display name, `about`
        empty), the role back to member, and the deletion unfinished (with whether its
        messages go too) until `deletion_finished`. The row stays, and so does its username.
        False when it was deleted already or there is no such user."""
        ...

    async def unfinished_deletions(self) -> list[tuple[int, bool]]:
        """The deleted accounts whose deletion is not finished, by user id, each with whether
        its messages are to be erased (an account not deleted is never one, whatever an
        import said)."""
        ...

    async def erase_on_deletion(self, user_id: int) -> None:
        """A deleted account's messages are to be erased too (a second deletion request,
        made at the same time as the first, asked for it): its deletion is unfinished
        again, now erasing."""
        ...

    async def deletion_finished(self, user_id: int, *, erase_messages: bool) -> None:
        """The work of a deletion that erased the messages, or kept them, is done. The
        deletion is no longer unfinished, unless it was meanwhile asked to do more than
        that work did (to erase, after a run that kept)."""
        ...

    async def list_accounts(self, username_prefix: str, *, after: int, limit: int) -> list[Account]:
        """Accounts whose name starts with the prefix (any, when empty) and whose user id is
        above `after`, by user id."""
        ...

    async def create_device(
        self, *, user_id: int, name: str, token_hash: str, created_at: int
    ) -> Device: ...

    async def device_for_token(self, token_hash: str) -> Device | None:
        """The live (not revoked) device holding this token hash."""
        ...

    async def list_devices(self, user_id: int) -> list[Device]:
        """The user's live devices, oldest first."""
        ...

    async def revoke_device(self, user_id: int, device_id: int, *, revoked_at: int) -> bool:
        """Revoke a live device of this user; False when there is none such."""
        ...

    async def touch_device(self, device_id: int, *, seen_at: int) -> None:
        """Record that the device was used."""
        ...
