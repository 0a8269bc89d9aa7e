"""Friendships: requests, acceptance, removal, and the cached friend lists presence needs."""

from __future__ import annotations

from typing import Literal

from chatapp.bus import Bus
from chatapp.clock import Clock
from chatapp.errors import BadRequest, Forbidden, NotFound
from chatapp.social.consent import Consent
from chatapp.social.events import FriendshipChanged
from chatapp.social.friend_store import Friendship, FriendStore
from chatapp.social.service import UserDirectory


class Friends:
    """Who is friends with whom. Accepted friends decide who sees whose presence.

    Two users of whom one blocks the other cannot be friends, nor ask to be.
    """

    def __init__(
        self, store: FriendStore, users: UserDirectory, bus: Bus, clock: Clock, *, consent: Consent
    ) -> None:
        self._store = store
        self._consent = consent
        self._users = users
        self._bus = bus
        self._clock = clock
        # Presence fan-out asks this on every status change.
        self._accepted: dict[int, frozenset[int]] = {}

    async def request(self, caller_id: int, other_id: int) -> Literal["pending", "accepted"]:
        """Ask `other_id` to be friends; asking back is accepting."""
        if other_id == caller_id:
            raise BadRequest("user_id: you cannot befriend yourself")
        if not await self._users.existing_user_ids([other_id]):
            raise NotFound("not_found", f"no user {other_id}")
        await self._consent.refuse_if_blocked(caller_id, other_id)
        before = await self._store.get(caller_id, other_id)
        after = await self._store.request(caller_id, other_id, at=self._clock.now_ms())
        try:
            # A block made meanwhile may have ended the pair's friendship before this request
            # was written: the request must not outlive it.
            await self._consent.refuse_if_blocked(caller_id, other_id)
        except Forbidden:
            await self.end(caller_id, other_id)
            raise
        if before is None or before.status != after.status:
            self._forget(caller_id, other_id)
            self._bus.publish(
                FriendshipChanged(
                    user_ids=(after.user_low, after.user_high),
                    status=after.status,
                    requested_by=after.requested_by,
                )
            )
        return after.status

    async def remove(self, caller_id: int, other_id: int) -> None:
        """Remove a friend, withdraw a request, or decline one."""
        if not await self.end(caller_id, other_id):
            raise NotFound("not_found", f"no friendship or request with user {other_id}")

    async def end(self, caller_id: int, other_id: int) -> bool:
        """Remove whatever there is between the two (a friendship, a request either way);
        False when there was nothing."""
        if not await self._store.remove(caller_id, other_id):
            return False
        self._forget(caller_id, other_id)
        low, high = sorted((caller_id, other_id))
        self._bus.publish(
            FriendshipChanged(user_ids=(low, high), status="removed", requested_by=caller_id)
        )
        return True

    async def end_every(self, user_id: int) -> int:
        """End every friendship and pending request of the user (an account being deleted);
        each other side is told as for a removal. How many there were."""
        ended = 0
        for friendship in await self._store.of_user(user_id):
            if await self.end(user_id, friendship.other(user_id)):
                ended += 1
        return ended

    async def friendship_changed(self, event: FriendshipChanged) -> None:
        """From the bus: a friendship changed, perhaps on another node; re-read both lists."""
        self._forget(*event.user_ids)

    async def friends_of(self, user_id: int) -> frozenset[int]:
        """Accepted friends only."""
        cached = self._accepted.get(user_id)
        if cached is None:
            cached = frozenset(
                f.other(user_id)
                for f in await self._store.of_user(user_id)
                if f.status == "accepted"
            )
            self._accepted[user_id] = cached
        return cached

    async def requests_of(self, user_id: int) -> tuple[list[int], list[int]]:
        """(incoming, outgoing) pending requests, oldest first."""
        incoming: list[int] = []
        outgoing: list[int] = []
        for friendship in await self._store.of_user(user_id):
            if friendship.status == "pending":
                mine = friendship.requested_by == user_id
                (outgoing if mine else incoming).append(friendship.other(user_id))
        return incoming, outgoing

    async def are_friends(self, user_a: int, user_b: int) -> bool:
        return user_b in await self.friends_of(user_a)

    def _forget(self, *user_ids: int) -> None:
        for user_id in user_ids:
            self._accepted.pop(user_id, None)


__all__ = ["Friends", "Friendship"]
