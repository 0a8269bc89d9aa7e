"""What the accounts module knows about people and their devices."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

Role = Literal["member", "admin"]
"""What a user may do on this server: an admin may also use the admin API."""


class User(BaseModel):
    """A person's public profile: exactly the protocol's `user` object."""

    model_config = ConfigDict(frozen=True)

    user_id: int
    username: str
    display_name: str
    about: str
    created_at: int
    role: Role = "member"

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class Device(BaseModel):
    """One signed-in client of a user, with its own token."""

    model_config = ConfigDict(frozen=True)

    device_id: int
    user_id: int
    name: str
    created_at: int
    last_seen_at: int


class Credentials(BaseModel):
    """A user and the stored password hash, for checking a login."""

    model_config = ConfigDict(frozen=True)

    user: User
    password_hash: str


class Caller(BaseModel):
    """Who is making a request: the result of checking a token."""

    model_config = ConfigDict(frozen=True)

    user_id: int
    device_id: int


class LoginResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    token: str
    device: Device
    user: User
