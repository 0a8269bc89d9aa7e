"""Blocking: a user stops another from reaching them one-to-one and from seeing their presence.

What a block refuses is checked where each action is taken (`Consent`); this
is the list each user keeps. Blocking ends whatever there is between the two
in friendships: a friendship, or a request either way.
"""

from __future__ import annotations

import structlog

from chatapp.clock import Clock
from chatapp.errors import BadRequest, NotFound
from chatapp.social.block_store import BlockStore
from chatapp.social.friends import Friends
from chatapp.social.service import UserDirectory

log = structlog.get_logger(__name__)


class Blocks:
    def __init__(
        self, store: BlockStore, friends: Friends, users: UserDirectory, clock: Clock
    ) -> None:
        self._store = store
        self._friends = friends
        self._users = users
        self._clock = clock

    async def block(self, caller_id: int, user_id: int) -> None:
        """Block `user_id` (again: nothing changes), and end any friendship or request.

        The block is written first: a friend request racing with it either sees
        the block, or is written before the friendship is ended here.
        """
        await self._require_other(caller_id, user_id)
        added = await self._store.block(caller_id, user_id, at=self._clock.now_ms())
        await self._friends.end(caller_id, user_id)
        if added:
            log.info("user_blocked", user_id=caller_id, blocked_id=user_id)

    async def unblock(self, caller_id: int, user_id: int) -> None:
        """Lift a block (one that is not there: nothing changes). Friendship does not come
        back by itself. A block of a user who has since deleted the account can be lifted
        too; without a block, an unknown or deleted user is NotFound."""
        if user_id == caller_id:
            raise BadRequest("user_id: you cannot block yourself")
        if await self._store.unblock(caller_id, user_id):
            log.info("user_unblocked", user_id=caller_id, blocked_id=user_id)
            return
        await self._require_other(caller_id, user_id)

    async def blocked_by(self, caller_id: int) -> list[int]:
        """The users the caller blocks, by user id."""
        return await self._store.blocked_by(caller_id)

    async def _require_other(self, caller_id: int, user_id: int) -> None:
        if user_id == caller_id:
            raise BadRequest("user_id: you cannot block yourself")
        if not await self._users.existing_user_ids([user_id]):
            raise NotFound("not_found", f"no user {user_id}")
