"""A `FriendStore` in memory: one record per pair, accepted when the other side had asked."""

from __future__ import annotations

from chatapp.social.friend_store import Friendship
from chatapp.social.store import ChannelStoreError
from chatapp.testing.fakes.failures import CanFail


class FakeFriendStore(CanFail):
    """`FriendStore` in a dict: what `SqliteFriendStore` does, without the database.

    A request from one side is pending; a request from the other side accepts
    it; any other repeat changes nothing. A user cannot be paired with
    themself (`ChannelStoreError`, as SQLite's CHECK would give). `of_user`
    lists the oldest request first. `failing`/`fail_next` (see `CanFail`)
    raise `ChannelStoreError`, the error social's stores share.
    """

    error = ChannelStoreError

    def __init__(self) -> None:
        super().__init__()
        # (low, high) -> (the friendship, the time it was first requested)
        self._pairs: dict[tuple[int, int], tuple[Friendship, int]] = {}

    async def get(self, user_a: int, user_b: int) -> Friendship | None:
        self._fail_if_told("get")
        found = self._pairs.get(_pair(user_a, user_b))
        return found[0] if found else None

    async def request(self, requester: int, other: int, *, at: int) -> Friendship:
        self._fail_if_told("request")
        if requester == other:
            raise ChannelStoreError("IntegrityError: CHECK constraint failed: user_low < user_high")
        low, high = pair = _pair(requester, other)
        found = self._pairs.get(pair)
        if found is None:
            asked = Friendship(
                user_low=low, user_high=high, requested_by=requester, status="pending"
            )
            self._pairs[pair] = (asked, at)
            return asked
        friendship, created_at = found
        if friendship.status == "pending" and friendship.requested_by != requester:
            friendship = friendship.model_copy(update={"status": "accepted"})
            self._pairs[pair] = (friendship, created_at)
        return friendship

    async def remove(self, user_a: int, user_b: int) -> bool:
        self._fail_if_told("remove")
        return self._pairs.pop(_pair(user_a, user_b), None) is not None

    async def of_user(self, user_id: int) -> list[Friendship]:
        self._fail_if_told("of_user")
        # sorted() is stable: requests made at the same moment stay in the order made.
        mine = [found for pair, found in self._pairs.items() if user_id in pair]
        return [friendship for friendship, _ in sorted(mine, key=lambda found: found[1])]


def _pair(user_a: int, user_b: int) -> tuple[int, int]:
    low, high = sorted((user_a, user_b))
    return low, high
