"""HTTP bodies of the protocol (see docs/protocol.md). The OpenAPI document is made from these.

Requests are strict: a field of the wrong JSON type is a 400 naming the field,
never silently converted. Unknown fields are ignored so that newer clients keep
working against this server.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class Request(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class Answer(BaseModel):
    model_config = ConfigDict(frozen=True)


class User(Answer):
    """A person's public profile (the protocol's `user` object)."""

    # Read from the accounts module's own User (any object with these attributes). The
    # server always sends `role`: the document marks it required in answers.
    model_config = ConfigDict(
        frozen=True, from_attributes=True, json_schema_serialization_defaults_required=True
    )

    user_id: int
    username: str
    display_name: str
    about: str
    created_at: int
    # Optional here, so this model still reads a server that predates roles (all members).
    role: Literal["member", "admin"] = Field(
        default="member",
        description="`admin` may also use the admin API (`/api/v1/admin/...`); set with"
        " `chatapp create-user NAME --admin`, `chatapp grant-admin NAME` and"
        " `chatapp revoke-admin NAME`",
    )


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


class UsersQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

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
    node_id: str = Field(description="the chosen node's name (its CHATAPP_NODE_ID)")


class HealthAnswer(Answer):
    status: str


# -- channels and messages -------------------------------------------------------

Id = Annotated[int, Field(ge=1, lt=2**53)]
Cursor = Annotated[int, Field(ge=0, lt=2**53)]


class Query(BaseModel):
    """Query strings arrive as text, so numbers are converted; bounds still apply."""

    model_config = ConfigDict(extra="ignore", frozen=True)


PREVIEW_CHARS = 200
"""The most characters (code points, as the text limit counts them) of a channel's preview."""


class LastMessageOut(Answer):
    """The start of a channel's last message, as a channel list shows it."""

    message_id: int
    sender_id: int
    created_at: int
    text: str = Field(
        max_length=PREVIEW_CHARS,
        description=f"the message's first {PREVIEW_CHARS} characters (code points, as the"
        " 100,000-character limit counts them; an emoji is one), or all of it when shorter;"
        " always a prefix of the message's text, nothing added",
    )
    truncated: bool = Field(description="whether the message's text is longer than `text`")


class ChannelOut(Answer):
    channel_id: int
    kind: Literal["direct", "group"]
    name: str
    owner_id: int | None
    members: list[int]
    last_message_id: int
    read_message_id: int
    unread_count: int
    created_at: int
    # Added to version 1. Optional here, so this model still reads a server without it;
    # this server always sends it, so the document marks it required in answers.
    model_config = ConfigDict(frozen=True, json_schema_serialization_defaults_required=True)
    last_message: LastMessageOut | None = Field(
        default=None,
        description="added to version 1: the channel's last message, its text cut to"
        f" {PREVIEW_CHARS} characters; null when the channel has no messages. Every channel"
        " object carries it (GET /channels, GET /channels/{id}, the answers of the channel"
        " calls, `channel` frames)",
    )


class ChannelAnswer(Answer):
    channel: ChannelOut


class ChannelsAnswer(Answer):
    channels: list[ChannelOut]


class DirectRequest(Request):
    user_id: Id


class GroupRequest(Request):
    name: str
    member_ids: list[Id]


class RenameRequest(Request):
    name: str


class AddMemberRequest(Request):
    user_id: Id


class HistoryQuery(Query):
    before: Cursor | None = None
    after: Cursor | None = None
    limit: int = Field(default=50, ge=1, le=200)


class MessageOut(Answer):
    channel_id: int
    message_id: int
    sender_id: int
    text: str
    created_at: int
    client_msg_id: str


class MessagesAnswer(Answer):
    messages: list[MessageOut]
    has_more: bool


class SendRequest(Request):
    client_msg_id: str
    text: str


class SendAnswer(Answer):
    message: MessageOut
    seq: int


class ReadRequest(Request):
    message_id: Cursor


class SyncQuery(Query):
    since: Cursor = 0
    limit: int = Field(default=500, ge=1, le=1000)


class SyncEvent(Answer):
    seq: int
    message: MessageOut


class SyncAnswer(Answer):
    events: list[SyncEvent]
    next_since: int
    has_more: bool


# -- friends and presence --------------------------------------------------------------


class PresenceOut(Answer):
    user_id: int
    status: Literal["online", "offline"]
    last_active_at: int


class FriendOut(Answer):
    user: User
    presence: PresenceOut


class FriendsAnswer(Answer):
    friends: list[FriendOut]


class RequestOut(Answer):
    user: User


class FriendRequestsAnswer(Answer):
    incoming: list[RequestOut]
    outgoing: list[RequestOut]


class FriendRequest(Request):
    user_id: Id


class FriendStatusAnswer(Answer):
    status: Literal["pending", "accepted"]


class ChannelPresenceAnswer(Answer):
    presence: list[PresenceOut]
