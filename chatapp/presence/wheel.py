"""A timing wheel: deadlines that move cheaply and expire in proportion to what expires."""

from __future__ import annotations

import heapq
import math
from collections.abc import Hashable
from typing import Generic, TypeVar

KeyT = TypeVar("KeyT", bound=Hashable)


class TimingWheel(Generic[KeyT]):
    """Keys with deadlines, bucketed by `resolution` seconds.

    Moving a deadline (a heartbeat) is O(1): the key changes bucket. Expiring
    pops only buckets whose time has come, so keys that keep being moved
    forward are never looked at: 100,000 live devices cost nothing between
    heartbeats. `examined` counts every key an expiry pass looked at.
    """

    def __init__(self, resolution: float = 1.0) -> None:
        self._resolution = resolution
        self._buckets: dict[int, set[KeyT]] = {}
        self._slot_of: dict[KeyT, int] = {}
        self._slots: list[int] = []  # a heap of bucket numbers, some perhaps emptied
        self.examined = 0

    def schedule(self, key: KeyT, deadline: float) -> None:
        """Set (or move) the key's deadline; it expires at or soon after it."""
        slot = math.ceil(deadline / self._resolution)
        old = self._slot_of.get(key)
        if old == slot:
            return
        if old is not None:
            self._discard(key, old)
        bucket = self._buckets.get(slot)
        if bucket is None:
            bucket = self._buckets[slot] = set()
            heapq.heappush(self._slots, slot)
        bucket.add(key)
        self._slot_of[key] = slot

    def cancel(self, key: KeyT) -> None:
        old = self._slot_of.pop(key, None)
        if old is not None:
            self._buckets[old].discard(key)
            if not self._buckets[old]:
                del self._buckets[old]

    def pop_due(self, now: float) -> list[KeyT]:
        """Remove and return every key whose deadline is at or before `now`."""
        due_slot = math.floor(now / self._resolution)
        expired: list[KeyT] = []
        while self._slots and self._slots[0] <= due_slot:
            slot = heapq.heappop(self._slots)
            bucket = self._buckets.pop(slot, None)
            if not bucket:
                continue
            self.examined += len(bucket)
            for key in bucket:
                del self._slot_of[key]
            expired.extend(bucket)
        return expired

    def __contains__(self, key: object) -> bool:
        return key in self._slot_of

    def __len__(self) -> int:
        return len(self._slot_of)

    def _discard(self, key: KeyT, slot: int) -> None:
        bucket = self._buckets[slot]
        bucket.discard(key)
        if not bucket:
            del self._buckets[slot]
