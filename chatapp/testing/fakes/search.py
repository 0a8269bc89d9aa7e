"""A `SearchIndex` in memory, with the real indexes' rules for writes, marks and order."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import dataclass

from chatapp.search.index import IndexChanges, SearchIndexError
from chatapp.search.models import Buried, Document, MessageKey, SortKey
from chatapp.search.words import WordQuery, matches
from chatapp.testing.fakes.failures import CanFail


@dataclass(frozen=True, slots=True)
class _Entry:
    created_at: int
    words: tuple[str, ...]
    digest: bytes | None
    """None for a deleted message."""


class FakeSearchIndex(CanFail):
    """`SearchIndex` in dicts: a transaction's writes land together at its end, or not at all.

    `documents` and `channel_marks` are open for tests to look at (and to plant what a crash
    would leave). `clean` is the run's mark; a new index starts unclean, like a new file.
    """

    error = SearchIndexError

    def __init__(self) -> None:
        super().__init__()
        self.documents: dict[MessageKey, _Entry] = {}
        self.channel_marks: dict[int, int] = {}
        self.clean = False
        self.abandoned = 0
        """Runs left unfinished by other writers, for `claim_abandoned` to take."""
        self.compactions = 0

    async def begin_run(self) -> bool:
        self._fail_if_told("begin_run")
        clean, self.clean = self.clean, False
        return clean

    async def end_run(self, *, complete: bool) -> None:
        self._fail_if_told("end_run")
        self.clean = complete

    async def claim_abandoned(self) -> bool:
        self._fail_if_told("claim_abandoned")
        if not self.abandoned:
            return False
        self.abandoned -= 1
        return True

    async def marks(self, *, after: int, limit: int) -> list[tuple[int, int]]:
        self._fail_if_told("marks")
        known = sorted(item for item in self.channel_marks.items() if item[0] > after)
        return known[:limit]

    async def digests(
        self, after: MessageKey, through: MessageKey, *, limit: int
    ) -> dict[MessageKey, bytes | None]:
        self._fail_if_told("digests")
        keys = sorted(key for key in self.documents if after < key <= through)[:limit]
        return {key: self.documents[key].digest for key in keys}

    @contextlib.asynccontextmanager
    async def changing(self, channel_ids: Collection[int]) -> AsyncIterator[IndexChanges]:
        self._fail_if_told("changing")
        changes = _FakeChanges(self)
        yield changes
        self._fail_if_told("commit")
        changes.apply()
        self._advance({*channel_ids, *changes.channels})

    def _advance(self, channel_ids: set[int]) -> None:
        for channel_id in channel_ids:
            mark = self.channel_marks.get(channel_id, 0)
            while (channel_id, mark + 1) in self.documents:
                mark += 1
            if mark or channel_id in self.channel_marks:
                self.channel_marks[channel_id] = mark

    async def search(
        self,
        query: WordQuery,
        *,
        channel_ids: Sequence[int],
        before: SortKey | None,
        limit: int,
    ) -> list[SortKey]:
        self._fail_if_told("search")
        wanted = set(channel_ids)
        found = [
            SortKey(entry.created_at, channel_id, message_id)
            for (channel_id, message_id), entry in self.documents.items()
            if channel_id in wanted and entry.digest is not None and matches(query, entry.words)
        ]
        below = [key for key in found if before is None or key < before]
        return sorted(below, reverse=True)[: max(0, limit)]

    async def compact(self) -> None:
        self._fail_if_told("compact")
        self.compactions += 1

    async def clear(self) -> None:
        self._fail_if_told("clear")
        self.documents.clear()
        self.channel_marks.clear()
        self.clean = False

    async def close(self) -> None:
        """Nothing to release."""


class _FakeChanges:
    def __init__(self, index: FakeSearchIndex) -> None:
        self._index = index
        self._writes: list[tuple[str, object]] = []
        self.channels: set[int] = set()

    async def add(self, documents: Sequence[Document]) -> None:
        self._writes += [("add", document) for document in documents]
        self.channels.update(document.channel_id for document in documents)

    async def replace(self, documents: Sequence[Document]) -> None:
        self._writes += [("replace", document) for document in documents]
        self.channels.update(document.channel_id for document in documents)

    async def bury(self, deleted: Sequence[Buried]) -> None:
        self._writes += [("bury", item) for item in deleted]
        self.channels.update(item.channel_id for item in deleted)

    async def drop(self, keys: Sequence[MessageKey]) -> None:
        self._writes += [("drop", key) for key in keys]
        self.channels.update(channel_id for channel_id, _ in keys)

    def apply(self) -> None:
        documents = self._index.documents
        for kind, item in self._writes:
            if isinstance(item, Document):
                present = documents.get(item.key)
                if present is None or (kind == "replace" and present.digest is not None):
                    documents[item.key] = _Entry(item.created_at, item.words, item.digest)
            elif isinstance(item, Buried):
                documents[item.key] = _Entry(item.created_at, (), None)
            elif isinstance(item, tuple):
                documents.pop(item, None)
                channel_id, message_id = item
                marks = self._index.channel_marks
                if marks.get(channel_id, 0) >= message_id:
                    marks[channel_id] = message_id - 1
