"""What each user lets others do with them: blocks, and who may add them to groups.

Every check reads the stores when it is made, so a block or a setting changed
on any node (or by any process) counts from the next call on, everywhere.

A refusal because of a block says `blocked` and nothing more: never who in a
list of users blocked, never since when.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Protocol

from chatapp.errors import Forbidden
from chatapp.social.block_store import BlockStore
from chatapp.social.friend_store import FriendStore


class GroupAddSettings(Protocol):
    """Who lets only their friends add them to groups (the accounts module keeps it)."""

    async def only_friends_add(self, user_ids: Iterable[int]) -> set[int]:
        """The subset of these users who let only their friends add them to groups."""
        ...


def blocked(message: str) -> Forbidden:
    return Forbidden("blocked", message)


class Consent:
    def __init__(
        self, blocks: BlockStore, friendships: FriendStore, settings: GroupAddSettings
    ) -> None:
        self._blocks = blocks
        self._friendships = friendships
        self._settings = settings

    async def refuse_if_blocked(self, user_id: int, other_id: int) -> None:
        """403 `blocked` when either of the two blocks the other: between them, nothing
        one-to-one goes (a direct channel, its messages, a friend request)."""
        if user_id != other_id and await self._blocks.between(user_id, other_id):
            raise blocked("a block between you and this user stops this")

    async def refuse_if_any_blocks(self, viewer_id: int, user_ids: Collection[int]) -> None:
        """403 `blocked` when any of `user_ids` blocks `viewer_id` (whose presence the viewer
        asked for, say)."""
        if await self._blocks.blockers_among(viewer_id, set(user_ids) - {viewer_id}):
            raise blocked("a user here has blocked you")

    async def refuse_adds(self, actor_id: int, user_ids: Collection[int]) -> None:
        """May `actor_id` add all of `user_ids` to a group? Refused whole: 403 `blocked` when
        any of them blocks the actor; else 403 `forbidden` when any lets only friends add
        them and is not the actor's friend."""
        others = set(user_ids) - {actor_id}
        if not others:
            return
        if await self._blocks.blockers_among(actor_id, others):
            raise blocked("a user you named has blocked you")
        choosy = await self._settings.only_friends_add(others)
        if not choosy:
            return
        friends = {
            friendship.other(actor_id)
            for friendship in await self._friendships.of_user(actor_id)
            if friendship.status == "accepted"
        }
        if choosy - friends:
            raise Forbidden("forbidden", "a user you named lets only friends add them to groups")
