"""A `BlockStore` that remembers which pairs are blocked, for a process that is the only writer.

Every send in a direct channel asks whether the pair is blocked. On SQLite
each question is a trip to the connection's thread (about 130 µs alone, and
over 400 µs each when a thousand sends ask at once, measured on the 2-core
dev box), so the embedded server keeps the answers: it is the only process
that writes blocks, and its own writes go through here, so a kept answer is
never stale. A cluster's nodes ask PostgreSQL each time instead, since a
block written by another node must count at once.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection
from typing import Final

from chatapp.social.block_store import BlockStore

KEPT_PAIRS: Final = 65_536
"""Pairs remembered, the least recently asked dropped first: a few MiB at most."""


class RememberedBlocks:
    def __init__(self, store: BlockStore, *, kept: int = KEPT_PAIRS) -> None:
        self._store = store
        self._kept = kept
        self._between: OrderedDict[tuple[int, int], bool] = OrderedDict()
        # Counts writes: an answer read while one was made may predate it, and is not kept.
        self._writes = 0

    async def block(self, blocker_id: int, blocked_id: int, *, at: int) -> bool:
        self._forget(blocker_id, blocked_id)
        try:
            return await self._store.block(blocker_id, blocked_id, at=at)
        finally:
            # Again once written (or failed: a failed write may still have landed).
            self._forget(blocker_id, blocked_id)

    async def unblock(self, blocker_id: int, blocked_id: int) -> bool:
        self._forget(blocker_id, blocked_id)
        try:
            return await self._store.unblock(blocker_id, blocked_id)
        finally:
            self._forget(blocker_id, blocked_id)

    async def blocked_by(self, blocker_id: int) -> list[int]:
        return await self._store.blocked_by(blocker_id)

    async def blockers_among(self, blocked_id: int, user_ids: Collection[int]) -> set[int]:
        return await self._store.blockers_among(blocked_id, user_ids)

    async def between(self, user_a: int, user_b: int) -> bool:
        pair = _pair(user_a, user_b)
        known = self._between.get(pair)
        if known is not None:
            self._between.move_to_end(pair)
            return known
        writes = self._writes
        found = await self._store.between(user_a, user_b)
        if writes == self._writes:
            self._between[pair] = found
            while len(self._between) > self._kept:
                self._between.popitem(last=False)
        return found

    def _forget(self, user_a: int, user_b: int) -> None:
        self._writes += 1
        self._between.pop(_pair(user_a, user_b), None)


def _pair(user_a: int, user_b: int) -> tuple[int, int]:
    low, high = sorted((user_a, user_b))
    return low, high
