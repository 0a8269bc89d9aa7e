"""What search reads of the message store, and how a stored message becomes a document."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from chatapp.messaging.models import MessagePage, StoredMessage
from chatapp.search.models import Buried, Document
from chatapp.search.words import text_digest, words_of


class MessageSource(Protocol):
    """The message store's reads the indexer makes (`MessageStore` has them all)."""

    async def get(self, channel_id: int, message_id: int) -> StoredMessage | None:
        """One message, or None when the channel has no such message."""
        ...

    async def history(
        self,
        channel_id: int,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int = 50,
    ) -> MessagePage:
        """With `after` only: the `limit` messages just above it, oldest first."""
        ...

    async def scan_messages(
        self, *, after: tuple[int, int] = (0, 0), limit: int
    ) -> list[StoredMessage]:
        """At most `limit` messages past `(channel_id, message_id)`, in that order."""
        ...

    async def last_message_ids(self, channel_ids: Sequence[int]) -> dict[int, int]:
        """The highest `message_id` of each channel; 0 for one without messages."""
        ...


def document_of(message: StoredMessage) -> Document:
    """The words of a message that is not deleted. Proportional to its text: keep big
    batches off the event loop."""
    return Document(
        channel_id=message.channel_id,
        message_id=message.message_id,
        created_at=message.created_at,
        words=tuple(words_of(message.text)),
        digest=text_digest(message.text),
    )


def documents_of(messages: Iterable[StoredMessage]) -> list[Document]:
    return [document_of(message) for message in messages]


def buried(message: StoredMessage) -> Buried:
    return Buried(message.channel_id, message.message_id, message.created_at)
