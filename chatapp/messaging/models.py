"""The values the message store accepts and returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

UpdateKind = Literal["edited", "deleted", "reactions"]
"""What an `update` inbox entry says changed about its message."""


class Reaction(BaseModel):
    """One emoji on a message and who put it there, in the order they did."""

    model_config = ConfigDict(frozen=True, strict=True)

    emoji: str
    user_ids: list[int]


class StoredMessage(BaseModel):
    """One message as stored: `(channel_id, message_id)` is its key."""

    # Strict, because append validates its arguments through this model: "7"
    # or True where an id belongs is refused instead of coerced.
    model_config = ConfigDict(frozen=True, strict=True)

    channel_id: int
    message_id: int
    sender_id: int
    text: str
    created_at: int
    """Milliseconds since the Unix epoch, UTC."""
    client_msg_id: str
    edited_at: int | None = None
    """When the text was last edited; None when it never was."""
    deleted: bool = False
    """A deleted message keeps its id; its text is "" and its mentions and reactions are empty."""
    reply_to: int | None = None
    """The `message_id` of the message of the same channel that this one quotes."""
    mentions: list[int] = Field(default_factory=list)
    """Members named as `@username` in the text, each once, in order of appearance."""
    reactions: list[Reaction] = Field(default_factory=list)
    """In the order of each emoji's first reaction."""
    deleted_by: int | None = Field(default=None, exclude=True)
    """Who deleted it: the `update` entry says so, the message object does not."""


class AcceptedMessage(NamedTuple):
    """The outcome of `MessageStore.append`: the message is on disk.

    A named tuple, not a model: only stores make one, from a validated
    message, once per send; a model checked `inbox_seqs` again (a microsecond
    per member, 6 µs for a group of 100), and a frozen dataclass sets each
    field through `object.__setattr__` (1.9 µs against 0.4).
    """

    message: StoredMessage
    seq: int
    """The sender's inbox seq for this message."""
    inbox_seqs: dict[int, int]
    """user_id -> that member's inbox seq for this message, the sender included.

    On a duplicate only the sender's entry is known, because the idempotency
    record keeps the sender's seq alone; it is then `{sender_id: seq}`.
    """
    duplicate: bool
    """True when the send had been stored before: the original is returned."""
    message_json: str | None = None
    """The message as JSON, once messaging has encoded it for the bus (see
    `MessageAccepted.message_json`), so that the ack does not encode it again."""


class InboxEntry(BaseModel):
    """One entry of a user's inbox."""

    model_config = ConfigDict(frozen=True)

    seq: int
    message: StoredMessage
    """The message as it is now, also for an update entry."""
    update: UpdateKind | None = None
    """None for the entry that delivered the message; else what changed about it."""


class MessagePage(BaseModel):
    """A page of a channel's history, oldest first."""

    model_config = ConfigDict(frozen=True)

    messages: list[StoredMessage]
    has_more: bool


class InboxPage(BaseModel):
    """A page of a user's inbox, in ascending seq."""

    model_config = ConfigDict(frozen=True)

    entries: list[InboxEntry]
    has_more: bool


class MessagePreview(BaseModel):
    """The start of a channel's last message: what a channel list shows, not the whole text."""

    model_config = ConfigDict(frozen=True)

    channel_id: int
    message_id: int
    sender_id: int
    created_at: int
    text: str
    """The first `max_chars` code points of the text (all of it when shorter)."""
    truncated: bool
    """True when the text has more than `max_chars` code points, so `text` is a prefix."""
    deleted: bool = False
    """A deleted message's preview has the empty text."""
    edited: bool = False


class InboxRecord(BaseModel):
    """One inbox entry as stored: a user's seq and the message it points at."""

    model_config = ConfigDict(frozen=True, strict=True)

    user_id: int
    seq: int
    channel_id: int
    message_id: int
    update: UpdateKind | None = None
    """None for a message entry; else the kind of its update entry."""


class SendRecord(BaseModel):
    """One idempotency record: the send `(sender_id, client_msg_id)` and where it landed."""

    model_config = ConfigDict(frozen=True, strict=True)

    sender_id: int
    client_msg_id: str
    channel_id: int
    message_id: int
    seq: int
    """The sender's inbox seq for the message."""


class ChangeOutcome(BaseModel):
    """The outcome of `MessageStore.change`: the change and its inbox entries are on disk."""

    model_config = ConfigDict(frozen=True)

    message: StoredMessage
    """The message as it is after the change (its reactions included)."""
    update: UpdateKind
    inbox_seqs: dict[int, int]
    """user_id -> that member's inbox seq for the update entry; empty when nothing changed."""

    @property
    def changed(self) -> bool:
        """False for a change that changed nothing, so appended nothing."""
        return bool(self.inbox_seqs)


@dataclass(frozen=True, slots=True)
class Edit:
    """New text for a message; only its sender may ask (checked before the store)."""

    channel_id: int
    message_id: int
    text: str
    mentions: tuple[int, ...]
    edited_at: int


@dataclass(frozen=True, slots=True)
class Deletion:
    """A message deleted by `deleted_by` (whose right to was checked before the store)."""

    channel_id: int
    message_id: int
    deleted_by: int


@dataclass(frozen=True, slots=True)
class ReactionChange:
    """`user_id`'s reaction `emoji` added (`add`) or taken back."""

    channel_id: int
    message_id: int
    user_id: int
    emoji: str
    add: bool


MessageChange = Edit | Deletion | ReactionChange
