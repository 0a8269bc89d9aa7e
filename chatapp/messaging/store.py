"""The contract of a message store: what messaging needs from its storage engine."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

from chatapp.errors import StoreFailed
from chatapp.messaging.models import (
    AcceptedMessage,
    ChangeOutcome,
    InboxPage,
    InboxRecord,
    MessageChange,
    MessagePage,
    MessagePreview,
    SendRecord,
    StoredMessage,
)


class MessageStoreError(StoreFailed):
    """A write could not be made durable; nothing of that batch was written.

    Also raised by a store that is closed, could not be opened, or finds a
    record pointing at a message that is not there.
    """


MAX_REACTION_EMOJI = 20
"""The most different emoji one message carries."""


class ChangeRefused(Exception):
    """A change the message's present state does not allow; nothing was written."""


class MessageMissing(ChangeRefused):
    """The channel has no message with that id."""


class MessageIsDeleted(ChangeRefused):
    """The message is deleted: it cannot be edited or reacted to."""


class TooManyReactions(ChangeRefused):
    """The message carries `MAX_REACTION_EMOJI` different emoji already."""


class MessageStore(Protocol):
    """Durable messages, per-user inboxes and idempotent sends.

    Ids are contiguous: a channel's `message_id`s are 1, 2, 3, … and so are a
    user's inbox `seq`s, with no gaps, in the order the sends were accepted.
    Ids, channel ids and user ids are non-negative integers below 2**64; a
    value outside that range raises `ValueError`.
    """

    async def append(
        self,
        *,
        sender_id: int,
        channel_id: int,
        client_msg_id: str,
        text: str,
        member_ids: Sequence[int],
        created_at: int,
        reply_to: int | None = None,
        mentions: Sequence[int] = (),
    ) -> AcceptedMessage:
        """Store a message and one inbox entry for every member, atomically.

        `member_ids` are the channel's members; duplicates are ignored and the
        sender is added when absent. Returns once the message, its inbox
        entries and its idempotency record are on disk (fsync'ed).

        A repeated `(sender_id, client_msg_id)` stores nothing and returns the
        original with `duplicate=True`, even when its channel or text differ.

        Raises `MessageStoreError` when the write failed (nothing of it was
        stored; the send may be retried) or the store is closed, and
        `ValueError` for an id out of range, a `client_msg_id` that is empty
        or not ASCII, or a text that is not encodable as UTF-8.
        """
        ...

    def submit(
        self,
        *,
        sender_id: int,
        channel_id: int,
        client_msg_id: str,
        text: str,
        member_ids: Sequence[int],
        created_at: int,
        reply_to: int | None = None,
        mentions: Sequence[int] = (),
    ) -> asyncio.Future[AcceptedMessage]:
        """`append` without waiting: the send is queued now, in call order.

        The future completes as `append` would return or raise. Callers that
        must keep several sends in order without a task each use this.
        """
        ...

    async def change(self, change: MessageChange, *, member_ids: Sequence[int]) -> ChangeOutcome:
        """Apply an edit, deletion or reaction, with an update entry for every member.

        The change and its inbox entries (kind `change`'s update) are written
        in one atomic, fsync'ed batch, in order with sends and other changes.
        A change that changes nothing (the same text, a reaction already
        there or not there, deleting what is deleted) writes nothing and
        answers with empty `inbox_seqs`.

        - an edit overwrites the text and sets `edited_at` and `mentions`;
        - a deletion overwrites the text with "", empties mentions and
          reactions, and keeps the message id; the old text is not kept;
        - reactions are kept apart from the message, so reacting never
          rewrites its text.

        Raises `MessageMissing`, `MessageIsDeleted` (edit or reaction),
        `TooManyReactions` (a new emoji on a message with the most), and
        `MessageStoreError` as `append` does. Who may make the change is the
        caller's to check.
        """
        ...

    def submit_change(
        self, change: MessageChange, *, member_ids: Sequence[int]
    ) -> asyncio.Future[ChangeOutcome]:
        """`change` without waiting: queued now, in call order with sends."""
        ...

    async def history(
        self,
        channel_id: int,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int = 50,
    ) -> MessagePage:
        """A page of a channel's messages, oldest first.

        - neither cursor: the newest `limit` messages;
        - `before` only: the `limit` messages just below `before`;
        - `after` only: the `limit` messages just above `after`;
        - both: those between them (both exclusive), starting right after
          `after`.

        `has_more` says whether more messages exist in the direction paged:
        older for `before` only and for neither, newer (and, with both
        cursors, still below `before`) otherwise. `limit <= 0` gives an empty
        page.
        """
        ...

    async def inbox(self, user_id: int, *, since: int, limit: int) -> InboxPage:
        """A user's inbox entries with `seq > since`, ascending, at most `limit`.

        Every entry carries its message as it is now (an update entry too).

        `has_more` says whether entries exist past the page. `limit <= 0`
        gives an empty page.
        """
        ...

    async def last_message_id(self, channel_id: int) -> int:
        """The highest `message_id` of the channel; 0 when it has none."""
        ...

    async def max_seq(self, user_id: int) -> int:
        """The highest inbox `seq` of the user; 0 when the inbox is empty."""
        ...

    async def messages_stored(self) -> int | None:
        """How many messages the store holds (deleted ones, kept as placeholders, included).

        Read from counters the store keeps, never by counting messages, so an
        admin page may ask often. None when the store does not know (one
        written before it kept the count).
        """
        ...

    async def last_message_ids(self, channel_ids: Sequence[int]) -> dict[int, int]:
        """`last_message_id` of each channel (0 for one without messages), in one call.

        For a list of channels: the counters a store keeps in memory are
        answered at once, the others read together, never one await each.
        Callers pass a few dozen channels at a time.
        """
        ...

    async def last_messages(
        self, channel_ids: Sequence[int], *, max_chars: int
    ) -> dict[int, MessagePreview]:
        """The last stored message of each channel, its text cut to `max_chars` code points.

        Keyed by channel id; a channel without messages has no entry. Where
        the engine allows, only the start of each text is decoded, so the
        cost hardly grows with the texts' length. Callers pass a few dozen
        channels at a time: the read is not split further.
        """
        ...

    async def original(self, sender_id: int, client_msg_id: str) -> AcceptedMessage | None:
        """The stored send `(sender_id, client_msg_id)` as a duplicate, or None if never stored.

        Only sends already on disk are found; `append` also catches repeats
        still in flight.
        """
        ...

    async def get(self, channel_id: int, message_id: int) -> StoredMessage | None:
        """One message, or None when the channel has no such message."""
        ...

    async def scan_messages(
        self, *, after: tuple[int, int] = (0, 0), limit: int
    ) -> list[StoredMessage]:
        """At most `limit` messages past `(channel_id, message_id)` = `after`, in that order.

        For a walk over the whole store (an export): each page starts past the
        last one's end, so the walk needs memory for one page only.
        """
        ...

    async def scan_inbox(self, *, after: tuple[int, int] = (0, 0), limit: int) -> list[InboxRecord]:
        """At most `limit` inbox entries past `(user_id, seq)` = `after`, in that order."""
        ...

    async def scan_sends(
        self, *, after: tuple[int, str] | None = None, limit: int
    ) -> list[SendRecord]:
        """At most `limit` idempotency records past `(sender_id, client_msg_id)` = `after`.

        Ordered by sender, then by the bytes of `client_msg_id` (ASCII);
        `after=None` starts at the first.
        """
        ...

    async def close(self) -> None:
        """Stop accepting sends, finish those already accepted, release the files.

        Calling it again is harmless. Every method afterwards raises
        `MessageStoreError`.
        """
        ...
