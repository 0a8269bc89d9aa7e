"""HTTP bodies of the protocol (see docs/protocol.md). The OpenAPI document is made from these.

Requests are strict: a field of the wrong JSON type is a 400 naming the field,
never silently converted. Unknown fields are ignored so that newer clients keep
working against this server.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
)


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


class OwnUser(User):
    """The caller's own user object (`/me`): the public profile and the caller's settings."""

    # Optional here, so this model still reads a server that predates receipts.
    share_read_receipts: bool = Field(
        default=True,
        description="added to version 1: whether the other members of the user's channels"
        " see how far the user has read (`receipt` frames, GET /channels/{id}/receipts);"
        " reciprocal, so a user who does not share sees no one else's either. Shown only"
        " to the user themself; set with PATCH /me",
    )
    group_adds: Literal["everyone", "friends"] = Field(
        default="everyone",
        description="added to version 1: who may add the user to a group (at its creation or"
        " later): everyone, or only the user's friends. Shown only to the user themself; set"
        " with PATCH /me",
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
    invite_code: str | None = Field(
        default=None,
        description="added to version 1: needed while the server's registration is by"
        " invite (403 `invite_required` without a usable one); ignored while it is open",
    )


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


class OwnUserAnswer(Answer):
    user: OwnUser


class ProfilePatch(Request):
    display_name: str | None = None
    about: str | None = None
    share_read_receipts: bool | None = Field(
        default=None,
        description="added to version 1: false stops sharing read receipts (and seeing"
        " others'), true shares them again; absent or null leaves the setting as it is",
    )
    group_adds: Literal["everyone", "friends"] | None = Field(
        default=None,
        description="added to version 1: `friends` lets only the user's friends add them to"
        " a group (403 `forbidden` for anyone else), `everyone` lets anyone; absent or null"
        " leaves the setting as it is",
    )


class BlocksAnswer(Answer):
    users: list[User] = Field(
        description="added to version 1: the users the caller blocks, by user id"
    )


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
    model_config = ConfigDict(frozen=True, json_schema_serialization_defaults_required=True)
    edited: bool = Field(default=False, description="added: whether the message was edited")
    deleted: bool = Field(
        default=False, description='added: whether the message was deleted (then `text` is "")'
    )


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
    notification_level: Literal["all", "mentions", "none"] = Field(
        default="all",
        description="added to version 1: the caller's own choice of which of the channel's"
        " messages are pushed to their devices: every one, those that mention the caller"
        " (in a direct channel every message counts as one), or none. Set with"
        " PUT /channels/{id}/notifications; unread counts do not depend on it",
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


class NotificationsRequest(Request):
    level: Literal["all", "mentions", "none"] = Field(
        description="which of the channel's messages are pushed to the caller: `all`,"
        " `mentions` (only those that mention the caller; every message of a direct channel),"
        " `none`"
    )


class HistoryQuery(Query):
    before: Cursor | None = None
    after: Cursor | None = None
    limit: int = Field(default=50, ge=1, le=200)


class ReactionOut(Answer):
    emoji: str
    user_ids: list[int] = Field(description="who reacted with it, in the order they did")


class MessageOut(Answer):
    channel_id: int
    message_id: int
    sender_id: int
    text: str = Field(description='"" for a deleted message')
    created_at: int
    client_msg_id: str
    # Added to version 1. Defaults here, so this model still reads a server without them;
    # this server always sends them, so the document marks them required in answers.
    model_config = ConfigDict(frozen=True, json_schema_serialization_defaults_required=True)
    edited_at: int | None = Field(
        default=None, description="added to version 1: when the text was last edited"
    )
    deleted: bool = Field(
        default=False,
        description="added to version 1: a deleted message keeps its id; its text is gone",
    )
    reply_to: int | None = Field(
        default=None,
        description="added to version 1: the message of the same channel this one quotes",
    )
    mentions: list[int] = Field(
        default_factory=list,
        description="added to version 1: members named as @username, each once, in order",
    )
    reactions: list[ReactionOut] = Field(
        default_factory=list,
        description="added to version 1: in the order of each emoji's first reaction",
    )


class MessagesAnswer(Answer):
    messages: list[MessageOut]
    has_more: bool


class SendRequest(Request):
    client_msg_id: str
    text: str
    reply_to: Id | None = Field(
        default=None, description="added to version 1: the message_id this one quotes"
    )


class EditRequest(Request):
    text: str


class MessageAnswer(Answer):
    message: MessageOut


class _WithoutAbsent(Answer):
    """Fields that are None are left out, not sent as null: they belong to another kind."""

    # Not annotated with its return type: pydantic would describe the answer by that type
    # instead of by the model's fields.
    @model_serializer(mode="wrap")
    def _without_absent(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]
        data = handler(self)
        if not isinstance(data, dict):
            return data
        return {name: value for name, value in data.items() if value is not None}


class UpdateOut(_WithoutAbsent):
    """What changed about a message: `kind` says which of the other fields it carries."""

    kind: Literal["edited", "deleted", "reactions"]
    channel_id: int
    message_id: int
    text: str | None = Field(default=None, description="kind edited")
    edited_at: int | None = Field(default=None, description="kind edited")
    mentions: list[int] | None = Field(default=None, description="kind edited")
    deleted_by: int | None = Field(
        default=None,
        description="kind deleted: who deleted it; 0 for the server (message_retention_days)",
    )
    reactions: list[ReactionOut] | None = Field(
        default=None, description="kind reactions: the message's whole current list"
    )


class SendAnswer(Answer):
    message: MessageOut
    seq: int


class ReadRequest(Request):
    message_id: Cursor


class ReceiptOut(Answer):
    user_id: int
    read_message_id: int = Field(description="the member's read marker; 0 when nothing is read")


class ReceiptsAnswer(Answer):
    receipts: list[ReceiptOut] = Field(
        description="added to version 1: every member who shares read receipts, the caller"
        " included, by user id; only the caller's own when the caller does not share"
    )


class SyncQuery(Query):
    since: Cursor = 0
    limit: int = Field(default=500, ge=1, le=1000)


class SyncEvent(_WithoutAbsent):
    """One inbox entry: `message` for a message, `update` (added to version 1) for a change."""

    seq: int
    message: MessageOut | None = None
    update: UpdateOut | None = None


class SyncAnswer(Answer):
    events: list[SyncEvent]
    next_since: int
    has_more: bool


# -- search (added to version 1) -------------------------------------------------------


class SearchQuery(Query):
    # Lengths are the search's own refusal (422 bad_query), not a 400: checked there.
    q: str = Field(
        description="words, all required, case-insensitive; the last also as a prefix;"
        ' "quoted phrases" as phrases',
        json_schema_extra={"minLength": 1, "maxLength": 200},
    )
    channel_id: Id | None = Field(default=None, description="only this channel's messages")
    before: str | None = Field(default=None, description="the `next_before` of the last page")
    limit: int = Field(default=20, ge=1, le=100)


class SearchResult(Answer):
    message: MessageOut


class SearchAnswer(Answer):
    results: list[SearchResult] = Field(
        description="newest first: by created_at, then channel_id, then message_id"
    )
    has_more: bool
    next_before: str | None = Field(
        description="the `before` of the next page; null on the last page"
    )


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
