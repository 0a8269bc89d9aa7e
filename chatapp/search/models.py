"""The values the search index takes and gives."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Final

MessageKey = tuple[int, int]
"""(channel_id, message_id): how the message store names a message."""

_KEY_LIMIT: Final = 2**63
"""Times and ids in a cursor fit a signed 64-bit integer, as both engines store them."""


@dataclass(frozen=True, slots=True, order=True)
class SortKey:
    """Where a message stands among results: newest first means the greatest first."""

    created_at: int
    channel_id: int
    message_id: int

    @property
    def message(self) -> MessageKey:
        return (self.channel_id, self.message_id)

    def cursor(self) -> str:
        """The opaque `next_before` of a page that ends at this message."""
        raw = f"{self.created_at}.{self.channel_id}.{self.message_id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def from_cursor(cls, cursor: str) -> SortKey:
        """The key a `next_before` names; `ValueError` when it is not one."""
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        except (binascii.Error, UnicodeError, ValueError):
            raise ValueError("not a cursor") from None
        parts = raw.split(".")
        if len(parts) != 3 or not all(part.isdecimal() and part.isascii() for part in parts):
            raise ValueError("not a cursor")
        key = cls(*(int(part) for part in parts))
        # Only the spelling `cursor` gives: no padding, no leading zeros, nothing skipped.
        if max(key.created_at, key.channel_id, key.message_id) >= _KEY_LIMIT or (
            key.cursor() != cursor
        ):
            raise ValueError("not a cursor")
        return key


@dataclass(frozen=True, slots=True)
class Document:
    """A message's words, as the index keeps them."""

    channel_id: int
    message_id: int
    created_at: int
    words: tuple[str, ...]
    digest: bytes
    """`words.text_digest` of the text the words were taken from."""

    @property
    def key(self) -> MessageKey:
        return (self.channel_id, self.message_id)


@dataclass(frozen=True, slots=True)
class Buried:
    """A deleted message: the index keeps that it is gone, and none of its words."""

    channel_id: int
    message_id: int
    created_at: int

    @property
    def key(self) -> MessageKey:
        return (self.channel_id, self.message_id)
