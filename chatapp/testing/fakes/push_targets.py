"""A `PushTargetStore` in memory that, like SQLite's, serves live devices only."""

from __future__ import annotations

import copy
from collections.abc import Iterable

from pydantic import JsonValue

from chatapp.accounts.push_targets import PushTarget
from chatapp.accounts.store import UserStoreError
from chatapp.testing.fakes.failures import CanFail
from chatapp.testing.fakes.users import FakeUserStore


class FakePushTargetStore(CanFail):
    """One target per device, set only for a live device of the user.

    It reads the devices from the `FakeUserStore` it is given, as the SQLite
    store joins the `devices` table: a device revoked after its target was
    set is left out of `targets_of` even if nobody removed the target.
    `failing`/`fail_next` (see `CanFail`) raise `UserStoreError`.
    """

    error = UserStoreError

    def __init__(self, users: FakeUserStore) -> None:
        super().__init__()
        self._users = users
        self._targets: dict[int, PushTarget] = {}

    async def set_target(
        self, *, user_id: int, device_id: int, provider: str, target: JsonValue, updated_at: int
    ) -> bool:
        self._fail_if_told("set_target")
        if not self._users.is_live_device(user_id, device_id):
            return False
        # A copy, as a round trip through JSON would give: later changes to the
        # caller's object do not reach the store.
        self._targets[device_id] = PushTarget(
            user_id=user_id, device_id=device_id, provider=provider, target=copy.deepcopy(target)
        )
        return True

    async def remove_target(self, device_id: int) -> None:
        self._fail_if_told("remove_target")
        self._targets.pop(device_id, None)

    async def targets_of(self, user_ids: Iterable[int]) -> list[PushTarget]:
        self._fail_if_told("targets_of")
        wanted = set(user_ids)
        return [
            target
            for device_id, target in sorted(self._targets.items())
            if target.user_id in wanted and self._users.is_live_device(target.user_id, device_id)
        ]
