"""The indexer: the search index kept up to date from the bus, off the send path.

It hears `MessageAccepted` and `MessageUpdated` and only notes them (in a
buffer with a size limit), so a send never waits for the index. Its own task
writes what was noted in one transaction per batch:

- a new message is added from the event (unless the index has it already);
- an edit is read again from the store inside the transaction, so that the
  text written is the present one whatever order the writes land in;
- a deletion buries the message: its words go, and it is never found again;
- reactions change no word and are not noted.

Nothing is lost for good: when the buffer is full an event is dropped and a
walk (`chatapp.search.walk`) is scheduled that reads what it missed from the
store. At start-up, `begin_run` tells whether the last run ended with all it
heard written: if not (a crash, a kill, dropped events), every message is
checked against the index in the background while searches are answered
from what is there; if so, only what lies past each channel's mark is read.
Searches check each result against the store anyway (see `Search`), so an
index that lags can miss a message, but never shows a deleted or changed one.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Final

import structlog
from pydantic import BaseModel

from chatapp.errors import StoreFailed
from chatapp.messaging.events import MessageAccepted, MessageUpdated
from chatapp.messaging.models import StoredMessage
from chatapp.search.index import SearchIndex
from chatapp.search.models import Buried, MessageKey
from chatapp.search.source import MessageSource, documents_of
from chatapp.search.walk import Span, Walk, behind, everything, write_present

log = structlog.get_logger(__name__)

OBSERVED_EVENTS: Final[tuple[type[BaseModel], ...]] = (MessageAccepted, MessageUpdated)

PENDING_BYTES: Final = 32 * 1024 * 1024
"""Text held for the index at most; past it events are dropped and read from the store later."""
PENDING_MESSAGES: Final = 50_000
BATCH: Final = 1_000
"""Messages written per transaction."""
BATCH_TEXT_BYTES: Final = 2 * 1024 * 1024
"""New text written per transaction at most, so a batch of long messages is a short one."""
CLOSE_BUDGET: Final = 2.0
"""Seconds a stop spends writing what is noted; the rest is read from the store at the
next start, so a backlog of long messages never holds up a restart."""
LINGER: Final = 0.05
"""Seconds to gather a burst of events into one batch."""
KEEP_ALIVE: Final = 10.0
"""Seconds between telling the index this writer lives (and looking for abandoned runs)."""
COMPACT_EVERY: Final = 3600.0
"""Seconds at least between compactions, run when deletions or edits were written."""
LAGGING_CHANNELS: Final = 10_000
"""Channels remembered for a catch-up after dropped messages; past it, a full walk."""
_RETRY_MAX: Final = 5.0


@dataclass
class _Pending:
    """Events noted and not written yet, by message."""

    added: dict[MessageKey, StoredMessage] = field(default_factory=dict)
    edited: dict[MessageKey, int] = field(default_factory=dict)
    deleted: dict[MessageKey, int] = field(default_factory=dict)
    text_bytes: int = 0

    def __len__(self) -> int:
        return len(self.added) + len(self.edited) + len(self.deleted)

    def take(self, count: int, text_bytes: int) -> _Pending:
        """Up to `count` messages of the oldest, and new texts up to about `text_bytes`
        (always at least one message), removed from here."""
        taken = _Pending()
        for key in list(itertools.islice(self.added, count)):
            if taken.added and taken.text_bytes >= text_bytes:
                break
            message = taken.added[key] = self.added.pop(key)
            taken.text_bytes += len(message.text)
        for kind in ("edited", "deleted"):
            source, target = getattr(self, kind), getattr(taken, kind)
            for key in list(itertools.islice(source, max(0, count - len(taken)))):
                target[key] = source.pop(key)
        self.text_bytes -= taken.text_bytes
        return taken

    def channels(self) -> set[int]:
        return {key[0] for key in itertools.chain(self.added, self.edited, self.deleted)}


class Indexer:
    """Keeps `index` up to date with the messages of `source` from the events it observes."""

    def __init__(
        self,
        index: SearchIndex,
        source: MessageSource,
        *,
        pending_bytes: int = PENDING_BYTES,
        pending_messages: int = PENDING_MESSAGES,
        batch: int = BATCH,
        linger: float = LINGER,
        close_budget: float = CLOSE_BUDGET,
    ) -> None:
        self._index = index
        self._source = source
        self._pending = _Pending()
        self._pending_bytes = pending_bytes
        self._pending_messages = pending_messages
        self._batch = batch
        self._linger = linger
        self._close_budget = close_budget
        self._writing = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._walk: Walk | None = None
        self._next_walk: bool | None = None
        """A walk asked for while another runs: True for a full one."""
        self._lagging: set[int] = set()
        self._walk_lagging: set[int] = set()
        """The lagging channels the walk under way reads."""
        self.dropped = 0
        """Events dropped because the buffer was full."""
        self._missing_changes = False
        """Edits or deletions may be missing: until a full walk ends, the run is not complete."""
        self._missing_messages = False
        """New messages may be missing: until a walk ends, the run is not complete."""
        self._drops_at_walk = 0
        self._walk_began = 0.0
        self._changed_since_compact = False
        self._compacted_at = time.monotonic()
        self._alive_at = 0.0

    # -- hearing -------------------------------------------------------------------------

    async def observe(self, event: BaseModel) -> None:
        """Note an event for the next batch; never waits for the index."""
        if isinstance(event, MessageAccepted):
            self._note_added(event.message)
        elif isinstance(event, MessageUpdated) and event.update in ("edited", "deleted"):
            message = event.message
            key = (message.channel_id, message.message_id)
            if self._full(0):
                self._drop(key, full=True)
                return
            if event.update == "edited":
                self._pending.edited[key] = message.created_at
            else:
                self._pending.deleted[key] = message.created_at
            self._wake.set()

    def _note_added(self, message: StoredMessage) -> None:
        key = (message.channel_id, message.message_id)
        if self._full(len(message.text)):
            self._drop(key, full=False)
            return
        self._pending.added[key] = message
        self._pending.text_bytes += len(message.text)
        self._wake.set()

    def _full(self, text_bytes: int) -> bool:
        return (
            len(self._pending) >= self._pending_messages
            or self._pending.text_bytes + text_bytes > self._pending_bytes
        )

    def _drop(self, key: MessageKey, *, full: bool) -> None:
        """An event not kept: a walk will read it from the store instead."""
        if not self.dropped % 1000:
            log.warning("search_events_dropped", dropped=self.dropped + 1)
        self.dropped += 1
        if full or len(self._lagging) >= LAGGING_CHANNELS:
            self._missing_changes = True
            self._ask_walk(full=True)
        else:
            self._missing_messages = True
            self._lagging.add(key[0])
            self._ask_walk(full=False)

    # -- lifetime ------------------------------------------------------------------------

    async def start(self) -> None:
        """Begin the run; catch up in the background (everything after an unclean stop)."""
        clean = await self._index.begin_run()
        self._missing_changes = not clean
        log.debug("search_index_started", clean=clean)
        self._ask_walk(full=not clean)
        self._task = asyncio.create_task(self._run(), name="search-indexer")

    async def close(self) -> None:
        """Write what is noted, stop, and end the run (complete unless something is missing)."""
        if self._task is not None:
            # The flag too: a cancellation can be lost when it meets a wake-up (wait_for).
            self._stopping = True
            self._task.cancel()
            await asyncio.wait([self._task])
            self._task = None
        if self._walk is not None:
            await self._walk.close()
            self._walk = None
        flushed = True
        deadline = time.monotonic() + self._close_budget
        try:
            while self._pending and time.monotonic() < deadline:
                await self._flush()
        except StoreFailed as failure:
            log.warning("search_index_not_flushed", error=str(failure), left=len(self._pending))
            flushed = False
        if self._pending and flushed:
            # Marks only cover what was written, but a channel the index has never seen
            # may be below the highest it knows: only a whole walk is sure to find it.
            log.info("search_index_left_for_next_start", left=len(self._pending))
            flushed = False
        complete = flushed and not (self._missing_changes or self._missing_messages)
        with contextlib.suppress(StoreFailed):
            await self._index.end_run(complete=complete)

    @property
    def backlog(self) -> int:
        """Messages noted and not yet written, the batch being written included."""
        return len(self._pending) + self._writing

    @property
    def walking(self) -> bool:
        return self._walk is not None or self._next_walk is not None

    # -- the task --------------------------------------------------------------------------

    async def _run(self) -> None:
        retry = 0.0
        while not self._stopping:
            if not self._pending and self._walk is None and self._next_walk is None:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(KEEP_ALIVE):
                        await self._wake.wait()
            await asyncio.sleep(self._linger)
            try:
                if self._pending:
                    await self._flush()
                await self._walk_a_step()
                await self._keep_alive()
                await self._compact_when_idle()
                retry = 0.0
            except StoreFailed as failure:
                retry = min(_RETRY_MAX, retry * 2 or 0.1)
                log.warning("search_index_write_failed", error=str(failure), retry_in=retry)
                await asyncio.sleep(retry)
            except Exception:
                log.exception("search_indexer_failed")
                await asyncio.sleep(_RETRY_MAX)

    async def _flush(self) -> None:
        batch = self._pending.take(self._batch, BATCH_TEXT_BYTES)
        self._writing = len(batch)
        try:
            await self._write(batch)
        except BaseException:
            self._put_back(batch)
            raise
        finally:
            self._writing = 0
        if batch.edited or batch.deleted:
            self._changed_since_compact = True

    async def _write(self, batch: _Pending) -> None:
        added = list(batch.added.values())
        documents = await asyncio.to_thread(documents_of, added) if added else []
        async with self._index.changing(batch.channels()) as changes:
            if documents:
                await changes.add(documents)
            if batch.edited:
                await write_present(changes, self._source, list(batch.edited))
            if batch.deleted:
                await changes.bury(
                    [Buried(c, m, created_at) for (c, m), created_at in batch.deleted.items()]
                )

    def _put_back(self, batch: _Pending) -> None:
        """A batch that was not written waits again, newer events for its messages first."""
        for key, message in batch.added.items():
            if key not in self._pending.added:
                self._note_added(message)
        for key, created_at in batch.edited.items():
            self._pending.edited.setdefault(key, created_at)
        for key, created_at in batch.deleted.items():
            self._pending.deleted.setdefault(key, created_at)

    # -- walks -----------------------------------------------------------------------------

    def _ask_walk(self, *, full: bool) -> None:
        if self._walk is None and self._next_walk is None:
            self._next_walk = full
        else:
            self._next_walk = full or bool(self._next_walk)
        self._wake.set()

    async def _walk_a_step(self) -> None:
        if self._walk is None:
            if self._next_walk is None:
                return
            full, self._next_walk = self._next_walk, None
            self._walk = Walk(self._index, self._source, self._spans(full), full=full)
            self._drops_at_walk = self.dropped
            log.debug("search_walk_started", full=full)
            self._walk_began = time.monotonic()
        walk = self._walk
        try:
            if await walk.step():
                return
        except BaseException:
            if walk.broken:
                # Its list of what to read failed half-way: walk again from the start.
                self._walk = None
                self._lagging |= self._walk_lagging
                self._ask_walk(full=walk.full)
            raise
        self._walk = None
        if self.dropped == self._drops_at_walk:
            self._missing_messages = False
            self._missing_changes = self._missing_changes and not walk.full
        # A first start (nothing to check) is not worth a line.
        (log.info if walk.checked else log.debug)(
            "search_walk_done",
            full=walk.full,
            checked=walk.checked,
            written=walk.written,
            seconds=round(time.monotonic() - self._walk_began, 1),
        )

    def _spans(self, full: bool) -> AsyncGenerator[Span, None]:
        self._walk_lagging, self._lagging = self._lagging, set()
        if full:
            return everything()
        return behind(self._index, self._source, channels=self._walk_lagging)

    async def _keep_alive(self) -> None:
        now = time.monotonic()
        if now - self._alive_at < KEEP_ALIVE:
            return
        self._alive_at = now
        if await self._index.claim_abandoned():
            log.info("search_index_run_taken_over")
            self._missing_changes = True
            self._ask_walk(full=True)

    async def _compact_when_idle(self) -> None:
        if self._pending or self._walk is not None or not self._changed_since_compact:
            return
        if time.monotonic() - self._compacted_at < COMPACT_EVERY:
            return
        self._changed_since_compact = False
        self._compacted_at = time.monotonic()
        started = time.monotonic()
        await self._index.compact()
        log.info("search_index_compacted", seconds=round(time.monotonic() - started, 2))
