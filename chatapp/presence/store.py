"""Where presence keeps status and last_active_at between restarts."""

from __future__ import annotations

from typing import Protocol

from chatapp.errors import StoreFailed
from chatapp.presence.events import Status


class PresenceStore(Protocol):
    """A hint, not a promise: a lost write costs a stale last_active_at, never a message."""

    async def load(self, user_id: int) -> tuple[Status, int] | None:
        """The stored (status, last_active_at), or None if never stored."""
        ...

    async def save(self, user_id: int, status: Status, last_active_at: int) -> None:
        """Record the user's status; raises `PresenceStoreError` when it cannot."""
        ...

    async def close(self) -> None: ...


class PresenceStoreError(StoreFailed):
    """The presence store could not read or write."""
