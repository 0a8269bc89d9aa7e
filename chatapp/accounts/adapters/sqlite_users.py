"""UserStore on SQLite."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

import aiosqlite

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
from chatapp.storage.sqlite import raises


@raises(UserStoreError)
class SqliteUserStore:
    """Users and devices in the `users` and `devices` tables."""

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._db = connection

    async def create_user(
        self,
        *,
        username: str,
        display_name: str,
        password_hash: str,
        created_at: int,
        role: Role = "member",
    ) -> User:
        try:
            cursor = await self._db.execute(
                "INSERT INTO users (username, display_name, password_hash, created_at, role)"
                " VALUES (?, ?, ?, ?, ?)",
                (username, display_name, password_hash, created_at, role),
            )
        except sqlite3.IntegrityError as exc:
            raise UsernameTaken(username) from exc
        user_id = cursor.lastrowid
        assert user_id is not None
        return User(
            user_id=user_id,
            username=username,
            display_name=display_name,
            about="",
            created_at=created_at,
            role=role,
        )

    async def get_user(self, user_id: int) -> User | None:
        row = await self._one(f"SELECT {USER_COLUMNS} FROM users WHERE user_id = ?", (user_id,))
        return user_from(row) if row else None

    async def existing_user_ids(self, user_ids: Iterable[int]) -> set[int]:
        wanted = list(set(user_ids))
        if not wanted:
            return set()
        marks = ",".join("?" * len(wanted))
        rows = await self._db.execute_fetchall(
            f"SELECT user_id FROM users WHERE user_id IN ({marks}) AND deleted_at IS NULL", wanted
        )
        return {row["user_id"] for row in rows}

    async def get_users(self, user_ids: Iterable[int]) -> list[User]:
        wanted = list(dict.fromkeys(user_ids))
        if not wanted:
            return []
        marks = ",".join("?" * len(wanted))
        rows = await self._db.execute_fetchall(
            f"SELECT {USER_COLUMNS} FROM users WHERE user_id IN ({marks})", wanted
        )
        found = {row["user_id"]: user_from(row) for row in rows}
        return [found[user_id] for user_id in wanted if user_id in found]

    async def get_credentials(self, username: str) -> Credentials | None:
        row = await self._one(
            f"SELECT {CREDENTIALS_COLUMNS} FROM users WHERE username = ?",
            (username,),
        )
        if row is None:
            return None
        return Credentials(
            user=user_from(row),
            password_hash=row["password_hash"],
            deactivated=bool(row["deactivated"]),
            deleted=bool(row["deleted"]),
        )

    async def set_password_hash(self, user_id: int, password_hash: str) -> None:
        await self._db.execute(
            "UPDATE users SET password_hash = ? WHERE user_id = ?", (password_hash, user_id)
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
        await self._db.execute(
            "UPDATE users SET display_name = COALESCE(?, display_name), about = COALESCE(?, about),"
            " share_read_receipts = COALESCE(?, share_read_receipts),"
            " group_adds = COALESCE(?, group_adds)"
            " WHERE user_id = ?",
            (display_name, about, share_read_receipts, group_adds, user_id),
        )
        return await self.get_user(user_id)

    async def receipt_sharers(self, user_ids: Iterable[int]) -> set[int]:
        wanted = list(set(user_ids))
        if not wanted:
            return set()
        marks = ",".join("?" * len(wanted))
        rows = await self._db.execute_fetchall(
            f"SELECT user_id FROM users WHERE user_id IN ({marks}) AND share_read_receipts = 1",
            wanted,
        )
        return {row["user_id"] for row in rows}

    async def only_friends_add(self, user_ids: Iterable[int]) -> set[int]:
        wanted = list(set(user_ids))
        if not wanted:
            return set()
        marks = ",".join("?" * len(wanted))
        rows = await self._db.execute_fetchall(
            f"SELECT user_id FROM users WHERE user_id IN ({marks}) AND group_adds = 'friends'",
            wanted,
        )
        return {row["user_id"] for row in rows}

    async def set_role(self, user_id: int, role: Role) -> User | None:
        # Not on an account its owner deleted, even one deleted since the caller looked.
        await self._db.execute(
            "UPDATE users SET role = ? WHERE user_id = ? AND deleted_at IS NULL", (role, user_id)
        )
        return await self.get_user(user_id)

    async def find_users(self, username_prefix: str, *, limit: int) -> list[User]:
        # Escape LIKE's wildcards: `_` is legal in usernames and must match itself.
        pattern = (
            username_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        )
        rows = await self._db.execute_fetchall(
            f"SELECT {USER_COLUMNS} FROM users WHERE username LIKE ? ESCAPE '\\'"
            " AND deleted_at IS NULL ORDER BY username != ?, username LIMIT ?",
            (pattern, username_prefix, limit),
        )
        return [user_from(row) for row in rows]

    async def deactivate_user(self, user_id: int, *, at: int, reason: str | None) -> bool:
        cursor = await self._db.execute(
            "UPDATE users SET deactivated_at = ?, deactivation_reason = ?"
            " WHERE user_id = ? AND deactivated_at IS NULL",
            (at, reason, user_id),
        )
        return cursor.rowcount == 1

    async def reactivate_user(self, user_id: int) -> bool:
        cursor = await self._db.execute(
            "UPDATE users SET deactivated_at = NULL, deactivation_reason = NULL"
            " WHERE user_id = ? AND deactivated_at IS NOT NULL AND deleted_at IS NULL",
            (user_id,),
        )
        return cursor.rowcount == 1

    async def delete_user(
        self, user_id: int, *, at: int, display_name: str, erase_messages: bool
    ) -> bool:
        cursor = await self._db.execute(
            "UPDATE users SET deleted_at = ?, deactivated_at = COALESCE(deactivated_at, ?),"
            " display_name = ?, about = '', role = 'member', deletion_unfinished = ?"
            " WHERE user_id = ? AND deleted_at IS NULL",
            (at, at, display_name, unfinished_mark(erase_messages), user_id),
        )
        return cursor.rowcount == 1

    async def unfinished_deletions(self) -> list[tuple[int, bool]]:
        rows = await self._db.execute_fetchall(
            "SELECT user_id, deletion_unfinished FROM users"
            " WHERE deletion_unfinished IS NOT NULL AND deleted_at IS NOT NULL ORDER BY user_id"
        )
        return [(row[0], row[1] == ERASE) for row in rows]

    async def erase_on_deletion(self, user_id: int) -> None:
        await self._db.execute(
            "UPDATE users SET deletion_unfinished = ? WHERE user_id = ? AND deleted_at IS NOT NULL",
            (ERASE, user_id),
        )

    async def deletion_finished(self, user_id: int, *, erase_messages: bool) -> None:
        await self._db.execute(
            "UPDATE users SET deletion_unfinished = NULL"
            " WHERE user_id = ? AND deletion_unfinished = ?",
            (user_id, unfinished_mark(erase_messages)),
        )

    async def list_accounts(self, username_prefix: str, *, after: int, limit: int) -> list[Account]:
        rows = await self._db.execute_fetchall(
            f"SELECT {ACCOUNT_COLUMNS} FROM users WHERE username LIKE ? ESCAPE '\\'"
            " AND user_id > ? ORDER BY user_id LIMIT ?",
            (_prefix_pattern(username_prefix), after, limit),
        )
        return [account_from(row) for row in rows]

    async def create_device(
        self, *, user_id: int, name: str, token_hash: str, created_at: int
    ) -> Device:
        cursor = await self._db.execute(
            "INSERT INTO devices (user_id, name, token_hash, created_at, last_seen_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (user_id, name, token_hash, created_at, created_at),
        )
        device_id = cursor.lastrowid
        assert device_id is not None
        return Device(
            device_id=device_id,
            user_id=user_id,
            name=name,
            created_at=created_at,
            last_seen_at=created_at,
        )

    async def device_for_token(self, token_hash: str) -> Device | None:
        row = await self._one(
            f"SELECT {DEVICE_COLUMNS} FROM devices WHERE token_hash = ? AND revoked_at IS NULL",
            (token_hash,),
        )
        return device_from(row) if row else None

    async def list_devices(self, user_id: int) -> list[Device]:
        rows = await self._db.execute_fetchall(
            f"SELECT {DEVICE_COLUMNS} FROM devices"
            " WHERE user_id = ? AND revoked_at IS NULL ORDER BY device_id",
            (user_id,),
        )
        return [device_from(row) for row in rows]

    async def revoke_device(self, user_id: int, device_id: int, *, revoked_at: int) -> bool:
        cursor = await self._db.execute(
            "UPDATE devices SET revoked_at = ?"
            " WHERE device_id = ? AND user_id = ? AND revoked_at IS NULL",
            (revoked_at, device_id, user_id),
        )
        return cursor.rowcount == 1

    async def touch_device(self, device_id: int, *, seen_at: int) -> None:
        await self._db.execute(
            "UPDATE devices SET last_seen_at = ? WHERE device_id = ?", (seen_at, device_id)
        )

    async def _one(self, sql: str, params: tuple[Any, ...]) -> Any:
        rows = await self._db.execute_fetchall(sql, params)
        return next(iter(rows), None)


def _prefix_pattern(prefix: str) -> str:
    """`LIKE` matching names that start with `prefix`: `_` is legal in names and matches itself."""
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
