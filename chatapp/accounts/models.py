"""What the accounts module knows about people and their devices."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

Role = Literal["member", "admin"]
"""What a user may do on this server: an admin may also use the admin API."""

GroupAdds = Literal["everyone", "friends"]
"""Who may add a user to a group: anyone, or only the user's friends."""


class User(BaseModel):
    """A person's profile: the protocol's `user` object, and the user's own settings.

    The HTTP edge shows others only the protocol's public fields
    (`chatapp.protocol.http.User`); `share_read_receipts` and `group_adds` are shown to
    the user alone.
    """

    model_config = ConfigDict(frozen=True)

    user_id: int
    username: str
    display_name: str
    about: str
    created_at: int
    role: Role = "member"
    share_read_receipts: bool = True
    """Whether the other members of the user's channels may see how far the user has read
    (and so, reciprocally, whether the user sees how far they have)."""
    group_adds: GroupAdds = "everyone"
    """Who may add the user to a group (when it is made, or later)."""

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
    deactivated: bool = False
    """An operator deactivated the account: a right password is refused (403 `deactivated`)."""
    deleted: bool = False
    """The owner deleted the account: logins are refused as for an unknown username."""


class Account(BaseModel):
    """A user as operators see it: the profile, its deactivation, when a device last called."""

    model_config = ConfigDict(frozen=True)

    user: User
    deactivated_at: int | None = None
    deactivation_reason: str | None = None
    deleted_at: int | None = None
    """When the owner deleted the account (it is deactivated too, for good); None otherwise."""
    last_seen_at: int | None = None
    """The latest `last_seen_at` of any of the user's devices, revoked ones too; None when the
    user never logged in."""

    @property
    def deactivated(self) -> bool:
        return self.deactivated_at is not None

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None


class Caller(BaseModel):
    """Who is making a request: the result of checking a token."""

    model_config = ConfigDict(frozen=True)

    user_id: int
    device_id: int


DELETED_DISPLAY_NAME = "Deleted user"
"""What a deleted account's profile shows instead of its display name."""


class LoginResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    token: str
    device: Device
    user: User
