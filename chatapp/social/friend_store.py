"""Friendships: one record per pair of users, pending or accepted."""

from __future__ import annotations

from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict

FriendshipStatus = Literal["pending", "accepted"]


class Friendship(BaseModel):
    model_config = ConfigDict(frozen=True)

    user_low: int
    user_high: int
    requested_by: int
    status: FriendshipStatus

    def other(self, user_id: int) -> int:
        return self.user_high if user_id == self.user_low else self.user_low


class FriendStore(Protocol):
    async def get(self, user_a: int, user_b: int) -> Friendship | None: ...

    async def request(self, requester: int, other: int, *, at: int) -> Friendship:
        """Record a request; accept it if the other side had asked. Returns the pair's state."""
        ...

    async def remove(self, user_a: int, user_b: int) -> bool: ...

    async def of_user(self, user_id: int) -> list[Friendship]:
        """Every friendship and request the user is part of."""
        ...
