"""A `PresenceStore` in a dict, counting writes."""

from __future__ import annotations

from chatapp.presence.events import Status
from chatapp.presence.store import PresenceStoreError
from chatapp.testing.fakes.failures import CanFail


class FakePresenceStore(CanFail):
    """`PresenceStore` in a dict. `saved` is what is stored, `writes` how many saves landed.

    After `close` every call raises `PresenceStoreError`, as the closed
    LevelDB store does; so do calls while `failing`/`fail_next` (see `CanFail`).
    """

    error = PresenceStoreError

    def __init__(self) -> None:
        super().__init__()
        self.saved: dict[int, tuple[Status, int]] = {}
        self.writes = 0
        self.closed = False

    async def load(self, user_id: int) -> tuple[Status, int] | None:
        self._ensure_open()
        self._fail_if_told("load")
        return self.saved.get(user_id)

    async def save(self, user_id: int, status: Status, last_active_at: int) -> None:
        self._ensure_open()
        self._fail_if_told("save")
        self.saved[user_id] = (status, last_active_at)
        self.writes += 1

    async def close(self) -> None:
        self.closed = True

    def _ensure_open(self) -> None:
        if self.closed:
            raise PresenceStoreError("the presence store is closed")
