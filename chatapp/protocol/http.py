"""HTTP bodies of the protocol (see docs/protocol.md). The OpenAPI document is made from these.

Requests are strict: a field of the wrong JSON type is a 400 naming the field,
never silently converted. Unknown fields are ignored so that newer clients keep
working against this server.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from chatapp.accounts.models import User


class Request(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class Answer(BaseModel):
    model_config = ConfigDict(frozen=True)


class ErrorDetail(Answer):
    code: str = Field(description="snake_case error code")
    message: str = Field(description="text for a person")


class ErrorBody(Answer):
    error: ErrorDetail


class SignupRequest(Request):
    username: str
    password: str
    display_name: str | None = None


class LoginRequest(Request):
    username: str
    password: str
    device_name: str | None = None


class LoginAnswer(Answer):
    token: str
    device_id: int
    user: User
    ws_url: str


class UserAnswer(Answer):
    user: User


class UsersAnswer(Answer):
    users: list[User]


class UsersQuery(Request):
    model_config = ConfigDict(strict=False, extra="ignore", frozen=True)

    username: str = Field(description="exact name or prefix")


class ProfilePatch(Request):
    display_name: str | None = None
    about: str | None = None


class DeviceInfo(Answer):
    device_id: int
    name: str
    created_at: int
    last_seen_at: int
    current: bool


class DevicesAnswer(Answer):
    devices: list[DeviceInfo]


class DiscoveryAnswer(Answer):
    ws_url: str


class HealthAnswer(Answer):
    status: str
