"""UserStore on PostgreSQL, for many nodes writing at once."""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg

from chatapp.accounts.adapters.rows import (
    ACCOUNT_COLUMNS,
    CREDENTIALS_COLUMNS,
    DEVICE_COLUMNS,
    ERASE,
    USER_COLUMNS,
    account_from,
    device_from,
    unfinished_mark,
    user_from,
)
from chatapp.accounts.models import Account, Credentials, Device, GroupAdds, Role, User
from chatapp.accounts.store import UsernameTaken, UserStoreError
from chatapp.storage.postgres import raises

# Named in migrations/postgresql/001_users_and_social.sql.
_USERNAME_UNIQUE = "users_username_unique"


@raises(UserStoreError)
class PostgresUserStore:
    """Users and devices in the `users` and `devices` tables.

    Every write is one statement, so nodes racing on a row are ordered by the
    row's lock and each sees the other's committed result.
    """

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create_user(
        self,
        *,
        username: str,
        display_name: str,
        password_hash: str,
        created_at: int,
        role: Role = "member",
    ) -> User:
        # A racing insert of the same name waits on the unique index until the
        # first commits, then fails here: exactly one of them wins.
        try:
            user_id = await self._pool.fetchval(
                "INSERT INTO users (username, display_name, password_hash, created_at, role)"
                " VALUES ($1, $2, $3, $4, $5) RETURNING user_id",
                username,
                display_name,
                password_hash,
                created_at,
                role,
            )
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name != _USERNAME_UNIQUE:
                raise
            raise UsernameTaken(username) from exc
        return User(
            user_id=user_id,
            username=username,
            display_name=display_name,
            about="",
            created_at=created_at,
            role=role,
        )

    async def get_user(self, user_id: int) -> User | None:
        row = await self._pool.fetchrow(
            f"SELECT {USER_COLUMNS} FROM users WHERE user_id = $1", user_id
        )
        return user_from(row) if row else None

    async def existing_user_ids(self, user_ids: Iterable[int]) -> set[int]:
        wanted = list(set(user_ids))
        if not wanted:
            return set()
        rows = await self._pool.fetch(
            "SELECT user_id FROM users WHERE user_id = ANY($1::bigint[]) AND deleted_at IS NULL",
            wanted,
        )
        return {row["user_id"] for row in rows}

    async def get_users(self, user_ids: Iterable[int]) -> list[User]:
        wanted = list(dict.fromkeys(user_ids))
        if not wanted:
            return []
        rows = await self._pool.fetch(
            f"SELECT {USER_COLUMNS} FROM users WHERE user_id = ANY($1::bigint[])", wanted
        )
        found = {row["user_id"]: user_from(row) for row in rows}
        return [found[user_id] for user_id in wanted if user_id in found]

    async def get_credentials(self, username: str) -> Credentials | None:
        row = await self._pool.fetchrow(
            f"SELECT {CREDENTIALS_COLUMNS} FROM users WHERE username = $1",
            username,
        )
        if row is None:
            return None
        return Credentials(
            user=user_from(row),
            password_hash=row["password_hash"],
            deactivated=row["deactivated"],
            deleted=row["deleted"],
        )

    async def set_password_hash(self, user_id: int, password_hash: str) -> None:
        await self._pool.execute(
            "UPDATE users SET password_hash = $2 WHERE user_id = $1", user_id, password_hash
        )

    async def update_profile(
        self,
        user_id: int,
        *,
        display_name: str | None,
        about: str | None,
        share_read_receipts: bool | None = None,
        group_adds: GroupAdds | None = None,
    ) -> User | None:
        # RETURNING answers with the row as this statement left it, not as a
        # later read might find it after another node's change.
        row = await self._pool.fetchrow(
            "UPDATE users SET display_name = COALESCE($2, display_name),"
            " about = COALESCE($3, about),"
            " share_read_receipts = COALESCE($4, share_read_receipts),"
            " group_adds = COALESCE($5, group_adds)"
            f" WHERE user_id = $1 RETURNING {USER_COLUMNS}",
            user_id,
            display_name,
            about,
            share_read_receipts,
            group_adds,
        )
        return user_from(row) if row else None

    async def receipt_sharers(self, user_ids: Iterable[int]) -> set[int]:
        wanted = list(set(user_ids))
        if not wanted:
            return set()
        rows = await self._pool.fetch(
            "SELECT user_id FROM users WHERE user_id = ANY($1::bigint[]) AND share_read_receipts",
            wanted,
        )
        return {row["user_id"] for row in rows}

    async def only_friends_add(self, user_ids: Iterable[int]) -> set[int]:
        wanted = list(set(user_ids))
        if not wanted:
            return set()
        rows = await self._pool.fetch(
            "SELECT user_id FROM users"
            " WHERE user_id = ANY($1::bigint[]) AND group_adds = 'friends'",
            wanted,
        )
        return {row["user_id"] for row in rows}

    async def set_role(self, user_id: int, role: Role) -> User | None:
        # Not on an account its owner deleted, even one deleted since the caller looked.
        await self._pool.execute(
            "UPDATE users SET role = $2 WHERE user_id = $1 AND deleted_at IS NULL", user_id, role
        )
        return await self.get_user(user_id)

    async def find_users(self, username_prefix: str, *, limit: int) -> list[User]:
        # Escape LIKE's wildcards: `_` is legal in usernames and must match itself.
        # The column's "C" collation orders by bytes, as SQLite does, and lets
        # the unique index serve the prefix.
        pattern = (
            username_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        )
        rows = await self._pool.fetch(
            f"SELECT {USER_COLUMNS} FROM users WHERE username LIKE $1 ESCAPE '\\'"
            " AND deleted_at IS NULL ORDER BY username <> $2, username LIMIT $3",
            pattern,
            username_prefix,
            limit,
        )
        return [user_from(row) for row in rows]

    async def deactivate_user(self, user_id: int, *, at: int, reason: str | None) -> bool:
        # The condition is checked again on a row another node just changed: of two racing
        # deactivations one answers True, and the first reason stays.
        changed = await self._pool.fetchval(
            "UPDATE users SET deactivated_at = $2, deactivation_reason = $3"
            " WHERE user_id = $1 AND deactivated_at IS NULL RETURNING true",
            user_id,
            at,
            reason,
        )
        return changed is not None

    async def reactivate_user(self, user_id: int) -> bool:
        changed = await self._pool.fetchval(
            "UPDATE users SET deactivated_at = NULL, deactivation_reason = NULL"
            " WHERE user_id = $1 AND deactivated_at IS NOT NULL AND deleted_at IS NULL"
            " RETURNING true",
            user_id,
        )
        return changed is not None

    async def delete_user(
        self, user_id: int, *, at: int, display_name: str, erase_messages: bool
    ) -> bool:
        # One statement: of two racing deletions (two devices, two nodes) one answers True.
        changed = await self._pool.fetchval(
            "UPDATE users SET deleted_at = $2, deactivated_at = COALESCE(deactivated_at, $2),"
            " display_name = $3, about = '', role = 'member', deletion_unfinished = $4"
            " WHERE user_id = $1 AND deleted_at IS NULL RETURNING true",
            user_id,
            at,
            display_name,
            unfinished_mark(erase_messages),
        )
        return changed is not None

    async def unfinished_deletions(self) -> list[tuple[int, bool]]:
        rows = await self._pool.fetch(
            "SELECT user_id, deletion_unfinished FROM users"
            " WHERE deletion_unfinished IS NOT NULL AND deleted_at IS NOT NULL ORDER BY user_id"
        )
        return [(row[0], row[1] == ERASE) for row in rows]

    async def erase_on_deletion(self, user_id: int) -> None:
        await self._pool.execute(
            "UPDATE users SET deletion_unfinished = $2"
            " WHERE user_id = $1 AND deleted_at IS NOT NULL",
            user_id,
            ERASE,
        )

    async def deletion_finished(self, user_id: int, *, erase_messages: bool) -> None:
        await self._pool.execute(
            "UPDATE users SET deletion_unfinished = NULL"
            " WHERE user_id = $1 AND deletion_unfinished = $2",
            user_id,
            unfinished_mark(erase_messages),
        )

    async def list_accounts(self, username_prefix: str, *, after: int, limit: int) -> list[Account]:
        pattern = (
            username_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        )
        rows = await self._pool.fetch(
            f"SELECT {ACCOUNT_COLUMNS} FROM users WHERE username LIKE $1 ESCAPE '\\'"
            " AND user_id > $2 ORDER BY user_id LIMIT $3",
            pattern,
            after,
            limit,
        )
        return [account_from(row) for row in rows]

    async def create_device(
        self, *, user_id: int, name: str, token_hash: str, created_at: int
    ) -> Device:
        device_id = await self._pool.fetchval(
            "INSERT INTO devices (user_id, name, token_hash, created_at, last_seen_at)"
            " VALUES ($1, $2, $3, $4, $4) RETURNING device_id",
            user_id,
            name,
            token_hash,
            created_at,
        )
        return Device(
            device_id=device_id,
            user_id=user_id,
            name=name,
            created_at=created_at,
            last_seen_at=created_at,
        )

    async def device_for_token(self, token_hash: str) -> Device | None:
        row = await self._pool.fetchrow(
            f"SELECT {DEVICE_COLUMNS} FROM devices WHERE token_hash = $1 AND revoked_at IS NULL",
            token_hash,
        )
        return device_from(row) if row else None

    async def list_devices(self, user_id: int) -> list[Device]:
        rows = await self._pool.fetch(
            f"SELECT {DEVICE_COLUMNS} FROM devices"
            " WHERE user_id = $1 AND revoked_at IS NULL ORDER BY device_id",
            user_id,
        )
        return [device_from(row) for row in rows]

    async def revoke_device(self, user_id: int, device_id: int, *, revoked_at: int) -> bool:
        # The condition is checked again on the row another node may have just
        # revoked, so of two racing revokes only one answers True.
        revoked = await self._pool.fetchval(
            "UPDATE devices SET revoked_at = $3"
            " WHERE user_id = $1 AND device_id = $2 AND revoked_at IS NULL RETURNING true",
            user_id,
            device_id,
            revoked_at,
        )
        return revoked is not None

    async def touch_device(self, device_id: int, *, seen_at: int) -> None:
        # Nodes touch in any order; the latest time wins, not the last write.
        await self._pool.execute(
            "UPDATE devices SET last_seen_at = GREATEST(last_seen_at, $2) WHERE device_id = $1",
            device_id,
            seen_at,
        )
