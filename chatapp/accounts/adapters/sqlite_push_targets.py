"""Push targets on SQLite: the `push_targets` table, next to the `devices` it belongs to."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import aiosqlite
from pydantic import JsonValue

from chatapp.accounts.push_targets import PushTarget
from chatapp.accounts.store import UserStoreError
from chatapp.storage.sqlite import raises


@raises(UserStoreError)
class SqlitePushTargetStore:
    """The `push_targets` table, next to the `devices` it belongs to."""

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._db = connection

    async def set_target(
        self, *, user_id: int, device_id: int, provider: str, target: JsonValue, updated_at: int
    ) -> bool:
        # One statement: the device is checked and the row written atomically,
        # so a device revoked meanwhile never gains a target.
        cursor = await self._db.execute(
            "INSERT INTO push_targets (device_id, user_id, provider, target, updated_at)"
            " SELECT device_id, user_id, ?, ?, ? FROM devices"
            " WHERE device_id = ? AND user_id = ? AND revoked_at IS NULL"
            " ON CONFLICT (device_id) DO UPDATE SET provider = excluded.provider,"
            " target = excluded.target, updated_at = excluded.updated_at",
            (provider, json.dumps(target), updated_at, device_id, user_id),
        )
        return cursor.rowcount == 1

    async def remove_target(self, device_id: int) -> None:
        await self._db.execute("DELETE FROM push_targets WHERE device_id = ?", (device_id,))

    async def targets_of(self, user_ids: Iterable[int]) -> list[PushTarget]:
        wanted = list(set(user_ids))
        if not wanted:
            return []
        marks = ",".join("?" * len(wanted))
        # The join keeps a revoked device silent even if its row outlived it.
        rows = await self._db.execute_fetchall(
            "SELECT p.user_id, p.device_id, p.provider, p.target FROM push_targets AS p"
            " JOIN devices AS d ON d.device_id = p.device_id AND d.revoked_at IS NULL"
            f" WHERE p.user_id IN ({marks}) ORDER BY p.device_id",
            wanted,
        )
        return [_target(row) for row in rows]


def _target(row: Any) -> PushTarget:
    return PushTarget(
        user_id=row["user_id"],
        device_id=row["device_id"],
        provider=row["provider"],
        target=json.loads(row["target"]),
    )
