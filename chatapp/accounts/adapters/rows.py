"""Rows of the users and devices tables as models: the same columns on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from chatapp.accounts.models import Device, User

USER_COLUMNS = "user_id, username, display_name, about, created_at, role"
DEVICE_COLUMNS = "device_id, user_id, name, created_at, last_seen_at"


def user_from(row: Any) -> User:
    """A row with USER_COLUMNS (an aiosqlite.Row or an asyncpg.Record) as a User."""
    return User(
        user_id=row["user_id"],
        username=row["username"],
        display_name=row["display_name"],
        about=row["about"],
        created_at=row["created_at"],
        role=row["role"],
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
