"""Search: the messages of the caller's channels that a query finds, newest first.

The index says which messages match; the message store says what they are
now. Each result is read from the store, so it is the present message (its
reactions, its edit), and one that is deleted, or whose edited text no longer
matches, is left out, so an index that lags behind can miss a message but
never shows what it should not.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from chatapp.errors import BadRequest, InvalidInput
from chatapp.messaging.models import StoredMessage
from chatapp.search.index import SearchIndex
from chatapp.search.models import SortKey
from chatapp.search.words import (
    QUERY_MAX,
    QueryHasNoWords,
    WordQuery,
    matches,
    parse_query,
    words_of,
)

LIMIT_DEFAULT: Final = 20
LIMIT_MAX: Final = 100
ROUNDS: Final = 4
"""Index reads per page at most, when results read from the store fall out (edited, deleted)."""
_OFF_LOOP_CHARS: Final = 65_536
"""Past this much text to check again, the words are taken on a thread, not the event loop."""


class _HasChannelId(Protocol):
    @property
    def channel_id(self) -> int: ...


class _Joined(Protocol):
    @property
    def channel(self) -> _HasChannelId: ...


class Memberships(Protocol):
    """What search needs from social: which channels the caller is in now."""

    async def require_member(self, caller_id: int, channel_id: int) -> frozenset[int]:
        """The channel's members; NotFound or Forbidden(not_member) otherwise."""
        ...

    async def memberships(self, user_id: int) -> Sequence[_Joined]:
        """Every channel the user is a member of."""
        ...


class MessageReader(Protocol):
    """What search needs from messaging: a message as it is now."""

    async def message(self, channel_id: int, message_id: int) -> StoredMessage | None: ...


@dataclass(frozen=True)
class SearchPage:
    results: list[StoredMessage]
    has_more: bool
    next_before: str | None
    """The `before` of the next page; None on the last."""


class Search:
    def __init__(
        self, index: SearchIndex, memberships: Memberships, messages: MessageReader
    ) -> None:
        self._index = index
        self._memberships = memberships
        self._messages = messages

    async def search(
        self,
        caller_id: int,
        q: str,
        *,
        channel_id: int | None = None,
        before: str | None = None,
        limit: int = LIMIT_DEFAULT,
    ) -> SearchPage:
        query = _parse(q)
        if not 1 <= limit <= LIMIT_MAX:
            raise BadRequest(f"limit: must be 1 to {LIMIT_MAX}")
        cursor = _cursor(before)
        if channel_id is not None:
            await self._memberships.require_member(caller_id, channel_id)
            channel_ids = [channel_id]
        else:
            joined = await self._memberships.memberships(caller_id)
            channel_ids = [membership.channel.channel_id for membership in joined]
        return await self._page(query, channel_ids, cursor, limit)

    async def _page(
        self, query: WordQuery, channel_ids: list[int], cursor: SortKey | None, limit: int
    ) -> SearchPage:
        """`limit` results and one more, to know that there are more; the index is read
        again past what fell out, a few times at most."""
        found: list[tuple[SortKey, StoredMessage]] = []
        exhausted = False
        for _ in range(ROUNDS):
            wanted = limit + 1 - len(found)
            keys = await self._index.search(
                query, channel_ids=channel_ids, before=cursor, limit=wanted
            )
            found += await self._present(query, keys)
            exhausted = len(keys) < wanted
            if keys:
                cursor = keys[-1]
            if exhausted or len(found) > limit:
                break
        page = found[:limit]
        has_more = len(found) > limit or not exhausted
        next_before: str | None = None
        if has_more:
            # Past the page's last result; or, when the rounds ran out first, past all
            # that was read (what fell out is not read again).
            last = page[-1][0] if len(found) > limit else cursor
            assert last is not None  # not exhausted: something was read
            next_before = last.cursor()
        return SearchPage([message for _, message in page], has_more, next_before)

    async def _present(
        self, query: WordQuery, keys: list[SortKey]
    ) -> list[tuple[SortKey, StoredMessage]]:
        """The messages of `keys` as they are now, without those the query no longer finds."""
        messages = await asyncio.gather(
            *(self._messages.message(key.channel_id, key.message_id) for key in keys)
        )
        present = [
            (key, message)
            for key, message in zip(keys, messages, strict=True)
            if message is not None and not message.deleted
        ]
        # Indexed from an older text, perhaps: an edit must match by its own words.
        edited = [message for _, message in present if message.edited_at is not None]
        if not edited:
            return present
        if sum(len(message.text) for message in edited) > _OFF_LOOP_CHARS:
            still = await asyncio.to_thread(_still_matching, query, edited)
        else:
            still = _still_matching(query, edited)
        return [
            (key, message)
            for key, message in present
            if message.edited_at is None or (message.channel_id, message.message_id) in still
        ]


def _still_matching(query: WordQuery, messages: list[StoredMessage]) -> set[tuple[int, int]]:
    return {
        (message.channel_id, message.message_id)
        for message in messages
        if matches(query, words_of(message.text))
    }


def _parse(q: str) -> WordQuery:
    if not 1 <= len(q) <= QUERY_MAX:
        raise InvalidInput("bad_query", f"q: 1 to {QUERY_MAX} characters")
    try:
        return parse_query(q)
    except QueryHasNoWords:
        raise InvalidInput("bad_query", "q: no letter or digit to search for") from None


def _cursor(before: str | None) -> SortKey | None:
    if before is None:
        return None
    try:
        return SortKey.from_cursor(before)
    except ValueError:
        raise BadRequest("before: not a next_before of a search") from None
