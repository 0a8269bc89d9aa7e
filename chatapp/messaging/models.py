"""The values the message store accepts and returns."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


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


class AcceptedMessage(BaseModel):
    """The outcome of `MessageStore.append`: the message is on disk."""

    model_config = ConfigDict(frozen=True)

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


class InboxEntry(BaseModel):
    """One entry of a user's inbox."""

    model_config = ConfigDict(frozen=True)

    seq: int
    message: StoredMessage


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


class InboxRecord(BaseModel):
    """One inbox entry as stored: a user's seq and the message it points at."""

    model_config = ConfigDict(frozen=True, strict=True)

    user_id: int
    seq: int
    channel_id: int
    message_id: int


class SendRecord(BaseModel):
    """One idempotency record: the send `(sender_id, client_msg_id)` and where it landed."""

    model_config = ConfigDict(frozen=True, strict=True)

    sender_id: int
    client_msg_id: str
    channel_id: int
    message_id: int
    seq: int
    """The sender's inbox seq for the message."""
