"""Walks: the index made to agree with the message store over ranges of messages.

A walk reads the store a page at a time, compares each message with what the
index has for it (the digest of its text, or that it is deleted), and writes
only the differences:

- a message the index lacks is added; a deleted one is buried;
- a message whose text differs from what was indexed (an edit the indexer
  never heard of), and a message the index has but the store does not, are
  read again from the store inside the index's transaction, then written as
  they are then.

Which ranges: `everything` after a crash (changes may have been lost anywhere),
and `behind` after a clean stop: each known channel's messages past its mark,
and every channel past the highest one known (as after an import).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Collection, Sequence
from dataclasses import dataclass, field
from typing import Final

from chatapp.messaging.models import StoredMessage
from chatapp.search.index import IndexChanges, SearchIndex
from chatapp.search.models import Buried, Document, MessageKey
from chatapp.search.source import MessageSource, buried, document_of, documents_of
from chatapp.search.words import text_digest

PAGE: Final = 100
"""Messages read from the store per step."""
_MAX_ID: Final = 2**63 - 1
_MARKS_PIECE: Final = 500
_READS_AT_ONCE: Final = 32


@dataclass(frozen=True, slots=True)
class Span:
    """The messages with `after < (channel_id, message_id) <= through`."""

    after: MessageKey
    through: MessageKey

    @property
    def one_channel(self) -> bool:
        return self.after[0] == self.through[0]


async def everything() -> AsyncGenerator[Span, None]:
    yield Span((0, 0), (_MAX_ID, _MAX_ID))


async def behind(
    index: SearchIndex, source: MessageSource, *, channels: Collection[int] = ()
) -> AsyncGenerator[Span, None]:
    """What a clean stop can have left out: the known channels' messages past their marks
    (or, where the store has fewer, the index's messages past the store's last), the
    tails of `channels`, and every channel past the highest one known (channel ids only
    grow, so a channel the index never heard of is past every one it knows, unless its
    events were lost, which makes the run unclean and the walk a whole one)."""
    after = highest = 0
    while marks := await index.marks(after=after, limit=_MARKS_PIECE):
        lasts = await source.last_message_ids([channel_id for channel_id, _ in marks])
        for channel_id, mark in marks:
            last = lasts.get(channel_id, 0)
            if last != mark:
                yield Span((channel_id, min(mark, last)), (channel_id, _MAX_ID))
        after = highest = marks[-1][0]
    for channel_id in sorted(channels):
        known = await index.marks(after=channel_id - 1, limit=1)
        mark = known[0][1] if known and known[0][0] == channel_id else 0
        yield Span((channel_id, mark), (channel_id, _MAX_ID))
    yield Span((highest, _MAX_ID), (_MAX_ID, _MAX_ID))


@dataclass
class _Survey:
    """What one page needs written."""

    added: list[Document] = field(default_factory=list)
    buried: list[Buried] = field(default_factory=list)
    rechecked: list[MessageKey] = field(default_factory=list)
    """Read again under the lock: a text that changed unheard, or a message the store lacks."""

    def __bool__(self) -> bool:
        return bool(self.added or self.buried or self.rechecked)

    def channels(self) -> set[int]:
        keys = [d.key for d in self.added] + [b.key for b in self.buried] + self.rechecked
        return {channel_id for channel_id, _ in keys}


def survey(page: Sequence[StoredMessage], indexed: dict[MessageKey, bytes | None]) -> _Survey:
    """Compare a page of the store with the index over the same range. Hashes every text:
    run it off the event loop."""
    found = _Survey()
    for message in page:
        key = (message.channel_id, message.message_id)
        present = key in indexed
        digest = indexed.get(key)
        if message.deleted:
            if not present or digest is not None:
                found.buried.append(buried(message))
        elif not present:
            found.added.append(document_of(message))
        elif digest is not None and digest != text_digest(message.text):
            found.rechecked.append(key)
    stored = {(message.channel_id, message.message_id) for message in page}
    found.rechecked.extend(key for key in indexed if key not in stored)
    return found


async def write_present(
    changes: IndexChanges, source: MessageSource, keys: Sequence[MessageKey]
) -> None:
    """Write these messages as the store has them now (inside `changes`' transaction)."""
    present: list[StoredMessage | None] = []
    for first in range(0, len(keys), _READS_AT_ONCE):
        piece = keys[first : first + _READS_AT_ONCE]
        present += await asyncio.gather(*(source.get(*key) for key in piece))
    missing = [key for key, message in zip(keys, present, strict=True) if message is None]
    existing = [message for message in present if message is not None]
    deleted = [buried(message) for message in existing if message.deleted]
    kept = [message for message in existing if not message.deleted]
    documents = await asyncio.to_thread(documents_of, kept) if kept else []
    if documents:
        await changes.replace(documents)
    if deleted:
        await changes.bury(deleted)
    if missing:
        await changes.drop(missing)


class Walk:
    """One walk over `spans`, a page per `step`."""

    def __init__(
        self,
        index: SearchIndex,
        source: MessageSource,
        spans: AsyncGenerator[Span, None],
        *,
        full: bool,
    ) -> None:
        self.full = full
        """Whether it checks every message (after a crash or lost events)."""
        self.checked = 0
        """Messages compared so far."""
        self.written = 0
        """Messages written so far (added, buried or read again)."""
        self.broken = False
        """Its spans failed to come (a read for them failed): it cannot go on."""
        self._index = index
        self._source = source
        self._spans = spans
        self._span: Span | None = None
        self._position: MessageKey = (0, 0)

    async def step(self) -> bool:
        """Compare and write one page; False once nothing is left to walk."""
        if self._span is None and not await self._next_span():
            return False
        span = self._span
        assert span is not None
        page, ended = await self._read(span)
        through = span.through if ended else _key(page[-1])
        indexed = await self._index.digests(self._position, through, limit=2 * PAGE)
        if len(indexed) == 2 * PAGE:
            # More indexed messages than the page holds: stop at the last of them.
            through = min(through, max(indexed))
            page = [message for message in page if _key(message) <= through]
            ended = False
        found = await asyncio.to_thread(survey, page, indexed)
        if found:
            await self._write(found)
        self.checked += len(page)
        self.written += len(found.added) + len(found.buried) + len(found.rechecked)
        self._position = through
        if ended or through >= span.through:
            return await self._next_span()
        return True

    async def _next_span(self) -> bool:
        try:
            self._span = await anext(self._spans, None)
        except BaseException:
            # An async generator that raised is finished: the rest of its spans are lost.
            self.broken = True
            raise
        if self._span is None:
            return False
        self._position = self._span.after
        return True

    async def close(self) -> None:
        """Stop early: the rest is not walked."""
        await self._spans.aclose()

    async def _read(self, span: Span) -> tuple[list[StoredMessage], bool]:
        """The next page of the span, and whether it reaches the span's end."""
        if span.one_channel:
            channel_id, after = self._position
            taken = (await self._source.history(channel_id, after=after, limit=PAGE)).messages
        else:
            taken = await self._source.scan_messages(after=self._position, limit=PAGE)
        page = [message for message in taken if _key(message) <= span.through]
        return page, len(page) < PAGE or not page

    async def _write(self, found: _Survey) -> None:
        async with self._index.changing(found.channels()) as changes:
            if found.added:
                await changes.add(found.added)
            if found.buried:
                await changes.bury(found.buried)
            if found.rechecked:
                await write_present(changes, self._source, found.rechecked)


def _key(message: StoredMessage) -> MessageKey:
    return (message.channel_id, message.message_id)
