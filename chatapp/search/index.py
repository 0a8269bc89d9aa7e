"""The contract of a search index: what search needs from its engine.

The index is derived data: everything in it can be made again from the
message store. It keeps, per message, its words, when it was sent, and a
digest of the text the words came from (or that it was deleted); per channel,
how far every message is in (`indexed_through`); and whether the writer that
last ran stopped with everything written.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from chatapp.errors import StoreFailed
from chatapp.search.models import Buried, Document, MessageKey, SortKey
from chatapp.search.words import WordQuery


class SearchIndexError(StoreFailed):
    """The index could not be read or written now; nothing of that write was kept."""


class IndexChanges(Protocol):
    """Writes made in one transaction of `SearchIndex.changing`."""

    async def add(self, documents: Sequence[Document]) -> None:
        """Index these messages, each unless the index has it already (in any state)."""
        ...

    async def replace(self, documents: Sequence[Document]) -> None:
        """Index these messages as given, over what the index has, unless it has them deleted."""
        ...

    async def bury(self, deleted: Sequence[Buried]) -> None:
        """These messages are deleted: none of their words is found again, ever."""
        ...

    async def drop(self, keys: Sequence[MessageKey]) -> None:
        """The store has no such messages: forget them (and move the channels' marks below)."""
        ...


class SearchIndex(Protocol):
    """Documents, per-channel marks and the writer's run, on one engine."""

    async def begin_run(self) -> bool:
        """Mark this writer as running; True when its previous run ended with nothing left out.

        A new index answers False: nothing has been read into it yet.
        """
        ...

    async def end_run(self, *, complete: bool) -> None:
        """Mark the run as over; `complete` when every change it heard is written."""
        ...

    async def claim_abandoned(self) -> bool:
        """Say this writer is alive, and take over a run another writer left unfinished.

        True when one was taken: some changes may be missing, so the caller
        checks every message. An index with one writer never has one to take.
        """
        ...

    async def marks(self, *, after: int, limit: int) -> list[tuple[int, int]]:
        """`(channel_id, indexed_through)` of the channels known, past `after`, ascending."""
        ...

    async def digests(
        self, after: MessageKey, through: MessageKey, *, limit: int
    ) -> dict[MessageKey, bytes | None]:
        """The first `limit` messages indexed with `after < key <= through`, in key order:
        the digest of their text, None for a deleted one."""
        ...

    def changing(self, channel_ids: Collection[int]) -> AbstractAsyncContextManager[IndexChanges]:
        """One transaction over these channels' messages.

        No other writer changes them until it ends, so a message read from the
        store inside it is still its present state when written. On success
        each channel's `indexed_through` moves up over the messages it has
        now; an exception rolls everything back.
        """
        ...

    async def search(
        self,
        query: WordQuery,
        *,
        channel_ids: Sequence[int],
        before: SortKey | None,
        limit: int,
    ) -> list[SortKey]:
        """At most `limit` messages of these channels the query matches, greatest key first.

        Only keys below `before` when given. Memory stays bounded by `limit`
        however many messages match (deleted ones never do).
        """
        ...

    async def compact(self) -> None:
        """Rewrite what holds the words, so that nothing of a deleted or replaced text is left.

        Slow on a big index: callers run it seldom, when the index is idle.
        """
        ...

    async def clear(self) -> None:
        """Forget every message and mark, as a new index."""
        ...

    async def close(self) -> None:
        """Release the engine; calling it again is harmless."""
        ...
