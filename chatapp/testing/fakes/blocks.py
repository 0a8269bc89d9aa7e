"""A `BlockStore` in memory: one record per user and user they block."""

from __future__ import annotations

from collections.abc import Collection

from chatapp.social.store import ChannelStoreError
from chatapp.testing.fakes.failures import CanFail


class FakeBlockStore(CanFail):
    """`BlockStore` in a dict: what `SqliteBlockStore` does, without the database.

    Blocking is one-way and blocking again changes nothing; a user cannot block
    themself (`ChannelStoreError`, as SQLite's CHECK would give).
    `failing`/`fail_next` (see `CanFail`) raise `ChannelStoreError`, the error
    social's stores share.
    """

    error = ChannelStoreError

    def __init__(self) -> None:
        super().__init__()
        # (blocker, blocked) -> when
        self._blocks: dict[tuple[int, int], int] = {}
        self.pair_queries: list[list[tuple[int, int]]] = []
        """What each `blocked_pairs` call asked, in order."""

    async def block(self, blocker_id: int, blocked_id: int, *, at: int) -> bool:
        self._fail_if_told("block")
        if blocker_id == blocked_id:
            raise ChannelStoreError(
                "IntegrityError: CHECK constraint failed: blocker_id <> blocked_id"
            )
        if (blocker_id, blocked_id) in self._blocks:
            return False
        self._blocks[blocker_id, blocked_id] = at
        return True

    async def unblock(self, blocker_id: int, blocked_id: int) -> bool:
        self._fail_if_told("unblock")
        return self._blocks.pop((blocker_id, blocked_id), None) is not None

    async def blocked_by(self, blocker_id: int) -> list[int]:
        self._fail_if_told("blocked_by")
        return sorted(blocked for blocker, blocked in self._blocks if blocker == blocker_id)

    async def blockers_among(self, blocked_id: int, user_ids: Collection[int]) -> set[int]:
        self._fail_if_told("blockers_among")
        return {user_id for user_id in user_ids if (user_id, blocked_id) in self._blocks}

    async def between(self, user_a: int, user_b: int) -> bool:
        self._fail_if_told("between")
        return (user_a, user_b) in self._blocks or (user_b, user_a) in self._blocks

    async def blocked_pairs(self, pairs: Collection[tuple[int, int]]) -> set[tuple[int, int]]:
        self._fail_if_told("blocked_pairs")
        self.pair_queries.append(list(pairs))
        return {(a, b) for a, b in pairs if (a, b) in self._blocks or (b, a) in self._blocks}
