"""Blocks: one record per user and user they block. Blocking is one-way."""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol


class BlockStore(Protocol):
    async def block(self, blocker_id: int, blocked_id: int, *, at: int) -> bool:
        """Record that `blocker_id` blocks `blocked_id`; False when it did already."""
        ...

    async def unblock(self, blocker_id: int, blocked_id: int) -> bool:
        """Remove the block; False when there was none."""
        ...

    async def blocked_by(self, blocker_id: int) -> list[int]:
        """The users `blocker_id` blocks, by user id."""
        ...

    async def blockers_among(self, blocked_id: int, user_ids: Collection[int]) -> set[int]:
        """Those of `user_ids` who block `blocked_id`."""
        ...

    async def between(self, user_a: int, user_b: int) -> bool:
        """True when either of the two blocks the other."""
        ...
