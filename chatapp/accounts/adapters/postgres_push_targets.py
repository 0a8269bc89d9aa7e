"""Push targets on PostgreSQL: the `push_targets` table, next to the `devices` it belongs to."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import asyncpg
from pydantic import JsonValue

from chatapp.accounts.push_targets import PushTarget
from chatapp.accounts.store import UserStoreError
from chatapp.storage.postgres import raises


@raises(UserStoreError)
class PostgresPushTargetStore:
    """At most one target per device, written only while the device is live."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def set_target(
        self, *, user_id: int, device_id: int, provider: str, target: JsonValue, updated_at: int
    ) -> bool:
        # FOR SHARE holds the device row until this insert commits: a revoke on
        # another node waits for it (and its removal of the target then finds
        # the row), or has committed first and the device is no longer
        # selected. A plain snapshot read could write a revoked device's target.
        stored = await self._pool.fetchval(
            "INSERT INTO push_targets (user_id, device_id, provider, target, updated_at)"
            " SELECT user_id, device_id, $3, $4::json, $5 FROM devices"
            " WHERE user_id = $1 AND device_id = $2 AND revoked_at IS NULL FOR SHARE"
            " ON CONFLICT (user_id, device_id) DO UPDATE SET provider = excluded.provider,"
            " target = excluded.target, updated_at = excluded.updated_at"
            " RETURNING true",
            user_id,
            device_id,
            provider,
            json.dumps(target),
            updated_at,
        )
        return stored is not None

    async def remove_target(self, device_id: int) -> None:
        await self._pool.execute("DELETE FROM push_targets WHERE device_id = $1", device_id)

    async def targets_of(self, user_ids: Iterable[int]) -> list[PushTarget]:
        wanted = list(set(user_ids))
        if not wanted:
            return []
        # The join keeps a revoked device silent even if its row outlived it.
        rows = await self._pool.fetch(
            "SELECT p.user_id, p.device_id, p.provider, p.target FROM push_targets AS p"
            " JOIN devices AS d ON d.user_id = p.user_id AND d.device_id = p.device_id"
            " AND d.revoked_at IS NULL"
            " WHERE p.user_id = ANY($1::bigint[]) ORDER BY p.device_id",
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
