"""Rows of the users and devices tables as models: the same columns on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from chatapp.accounts.models import Account, Device, User

USER_COLUMNS = (
    "user_id, username, display_name, about, created_at, role, share_read_receipts, group_adds"
)
DEVICE_COLUMNS = "device_id, user_id, name, created_at, last_seen_at"
ACCOUNT_COLUMNS = (
    f"{USER_COLUMNS}, deactivated_at, deactivation_reason, deleted_at,"
    " (SELECT MAX(d.last_seen_at) FROM devices AS d WHERE d.user_id = users.user_id)"
    " AS last_seen_at"
)
"""Of `FROM users`: a user, its deactivation and deletion, the last call of any of its devices."""


ERASE = "erase"
KEEP = "keep"
"""`deletion_unfinished`: whether an unfinished deletion erases the user's messages."""


def unfinished_mark(erase_messages: bool) -> str:
    """What `deletion_unfinished` holds for a deletion just begun."""
    return ERASE if erase_messages else KEEP


def user_from(row: Any) -> User:
    """A row with USER_COLUMNS (an aiosqlite.Row or an asyncpg.Record) as a User."""
    return User(
        user_id=row["user_id"],
        username=row["username"],
        display_name=row["display_name"],
        about=row["about"],
        created_at=row["created_at"],
        role=row["role"],
        # SQLite keeps it as 0 or 1, PostgreSQL as a boolean.
        share_read_receipts=bool(row["share_read_receipts"]),
        group_adds=row["group_adds"],
    )


def account_from(row: Any) -> Account:
    """A row with ACCOUNT_COLUMNS as an Account."""
    return Account(
        user=user_from(row),
        deactivated_at=row["deactivated_at"],
        deactivation_reason=row["deactivation_reason"],
        deleted_at=row["deleted_at"],
        last_seen_at=row["last_seen_at"],
    )


def device_from(row: Any) -> Device:
    """A row with DEVICE_COLUMNS as a Device."""
    return Device(
        device_id=row["device_id"],
        user_id=row["user_id"],
        name=row["name"],
        created_at=row["created_at"],
        last_seen_at=row["last_seen_at"],
    )


CREDENTIALS_COLUMNS = (
    f"{USER_COLUMNS}, password_hash, deactivated_at IS NOT NULL AS deactivated,"
    " deleted_at IS NOT NULL AS deleted"
)
"""Of `FROM users`: what a login checks."""
