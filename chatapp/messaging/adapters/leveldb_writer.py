"""The single writer of the message store: group-committed, fsync'ed batches.

One task owns every write and every id counter. It takes all sends queued
while the previous batch was being written, assigns their ids, and writes
them as one `sync=True` batch on its own thread (a send that comes alone
while writes are quick, on the event loop's: `_write_here`); callers are answered only
after that batch is on disk, and the watermark (see `leveldb_watermark`)
notes where it ended.

A write that fails makes the writer close the database and open it again
before it writes anything else. Opening can fail too, for as long as the
cause lasts (a process out of open files fails every open): the writer then
tries again, waiting longer each time up to `REOPEN_LONGEST_WAIT`, until the
database opens. Meanwhile every call is refused, so nothing waits on a store
that may take long to come back, and the store is ready again by itself.
"""

from __future__ import annotations

import asyncio
import functools
import pathlib
import time
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

import plyvel
import structlog

from chatapp.messaging.adapters.leveldb_batch import Counters, Pending, WriteBatch, form_batch
from chatapp.messaging.adapters.leveldb_handle import LevelDBHandle
from chatapp.messaging.adapters.leveldb_layout import (
    DamagedStore,
    error_text,
    open_db,
)
from chatapp.messaging.adapters.leveldb_watermark import UNKNOWN, WatermarkFile
from chatapp.messaging.store import MessageStoreError

MAX_BATCH_SENDS: Final = 1024
"""The most sends one write batch takes, so a burst never builds one unbounded batch."""

CLOSED: Final = "the message store is closed"
RECOVERING: Final = "the message store is recovering from a failed write"

REOPEN_FIRST_WAIT: Final = 0.05
REOPEN_LONGEST_WAIT: Final = 1.0
"""Seconds between attempts to reopen: doubling from the first, then this at most.

An attempt that fails costs a few file opens, so one a second is cheap, and a
store whose cause of failure went away answers again within a second.
"""

WRITE_HERE_MOST: Final = 0.002
"""Seconds a write may take for the next lone send to be written on the event loop's thread."""
WRITE_HERE_LEVEL0: Final = 4
"""Level-0 files below which LevelDB compacts without slowing writes (its own trigger)."""

Pause = Callable[[float], Awaitable[None]]
"""Waits so many seconds: `asyncio.sleep`, unless a test moves time itself."""

_log = structlog.get_logger(__name__)


class GroupCommitWriter:
    """Writes queued sends and changes in order, one batch at a time, and keeps the
    committed counters."""

    def __init__(
        self,
        database: LevelDBHandle,
        thread: ThreadPoolExecutor,
        path: pathlib.Path,
        watermark: WatermarkFile,
        *,
        pause: Pause = asyncio.sleep,
        erase: Callable[[list[bytes]], None] | None = None,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        """Write to `database` on `thread` (one worker); `path` is where to reopen it.

        `pause` waits between attempts to reopen; `erase` is told the keys
        whose old values a landed batch overwrote to forget (deleted messages);
        `timer` times each write (seconds), for `_write_here`.
        """
        self._timer = timer
        self._erase = erase
        self._database = database
        self._thread = thread
        self._path = path
        self._watermark = watermark
        self._pause = pause
        # Set when a write failed: the log may end in a torn record, LevelDB
        # can drop records written after one when it recovers, and an error
        # of its background work fails every later write. So the database is
        # reopened before the next write: it recovers now and starts a fresh log.
        self._must_reopen = False
        self._stop_asked = asyncio.Event()
        self._queue: asyncio.Queue[Pending | None] = asyncio.Queue()
        self.committed = Counters()
        """Only the writer fills them: from disk, or after a batch landed."""
        self._batches_written = 0
        self._last_write = 0.0
        """Seconds the last write and fsync took (set on whichever thread wrote)."""
        self._task = asyncio.create_task(self._run(), name="message-store-writer")

    @property
    def batches_written(self) -> int:
        """How many write batches have landed on disk."""
        return self._batches_written

    @property
    def messages_stored(self) -> int | None:
        """The watermark's count of stored messages; None when it is unknown.

        Read from the loop while the writer's thread notes: the mark is replaced
        whole, never changed in place, so a read sees one batch's note or the next.
        """
        stored = self._watermark.mark.messages_stored
        return None if stored == UNKNOWN else stored

    @property
    def stopped(self) -> bool:
        """Whether the writer takes no more sends."""
        return self._task.done()

    def enqueue(self, send: Pending) -> None:
        """Queue a send behind every send queued before it."""
        self._queue.put_nowait(send)

    async def stop(self) -> None:
        """Write what is queued, then close the database and the writer's thread."""
        self._queue.put_nowait(None)
        self._stop_asked.set()
        try:
            await self._task
        finally:
            # The same single thread closes the db, so a write still running
            # there (the writer was cancelled mid-batch) finishes first; the
            # handle waits for reads still running on other threads.
            loop = asyncio.get_running_loop()
            closed = False
            try:
                await loop.run_in_executor(self._thread, self._database.close, CLOSED)
                closed = True
            finally:
                # Only a store whose every batch landed and that closed whole
                # may skip the full start-up check next time.
                cleanly = closed and self._finished_whole()
                close_mark = functools.partial(self._watermark.close, cleanly=cleanly)
                await loop.run_in_executor(self._thread, close_mark)
                self._thread.shutdown(wait=False)

    def _finished_whole(self) -> bool:
        if self._must_reopen or self._database.damage is not None:
            return False
        if not self._task.done() or self._task.cancelled():
            return False
        return self._task.exception() is None

    async def _run(self) -> None:
        batch: list[Pending] = []
        try:
            stopping = False
            while not stopping:
                batch, stopping = await self._take_batch()
                await self._commit(batch)
                if self._must_reopen and not stopping:
                    stopping = await self._recover()
        finally:
            # Reached with sends waiting only when the writer is cancelled.
            while not self._queue.empty():
                queued = self._queue.get_nowait()
                if queued is not None:
                    batch.append(queued)
            _fail_sends(batch, "the message store stopped before this send was stored")

    async def _take_batch(self) -> tuple[list[Pending], bool]:
        """Everything queued now, in arrival order, up to the cap; and whether to stop."""
        batch: list[Pending] = []
        send = await self._queue.get()
        while send is not None:
            # A caller that gave up was promised nothing; storing its send would
            # only surprise a retry with another client_msg_id.
            if not send.future.done():
                batch.append(send)
            if len(batch) >= MAX_BATCH_SENDS or self._queue.empty():
                return batch, False
            send = self._queue.get_nowait()
        return batch, True

    async def _commit(self, sends: list[Pending]) -> None:
        if not sends:
            return
        loop = asyncio.get_running_loop()
        try:
            with self._database as db:
                batch = form_batch(db, sends, self.committed)
                here = self._write_here(sends, db)
        except Exception as exc:
            # A read failed; nothing was written, so the database needs no reopening.
            self._fail_batch(sends, exc)
            return
        try:
            if batch.puts and here:
                self._write(batch)
            elif batch.puts:
                await loop.run_in_executor(self._thread, self._write, batch)
        except Exception as exc:
            # Closed before its senders hear of it, so that a retry is refused
            # at once rather than queued behind the reopening.
            self._must_reopen = True
            await loop.run_in_executor(self._thread, self._database.close, RECOVERING)
            self._fail_batch(sends, exc)
            return
        self.committed.advance(batch)
        if batch.puts:
            self._batches_written += 1
        if batch.erased and self._erase is not None:
            self._erase(batch.erased)
        for future, accepted in batch.answers:
            if not future.done():
                future.set_result(accepted)
        for refused, refusal in batch.refusals:
            if not refused.done():
                refused.set_exception(refusal)

    def _write_here(self, sends: list[Pending], db: Any) -> bool:
        """Whether to write on the event loop's thread rather than the writer's.

        A send that arrives alone waits for the two thread switches of a write
        on the writer's thread, and on the server's one core they cost more than
        the write itself (A at 200 msg/s: p50 0.88x, CPU per message 0.85x;
        docs/benchmarks-profile.md). But everything else on the loop (sockets,
        requests, reads) waits while it writes, so only while writes are quick
        and LevelDB is not about to make them slow: the last write took under
        `WRITE_HERE_MOST`, and level 0 holds fewer files than `WRITE_HERE_LEVEL0`
        (from 8, LevelDB slows every write down, and stops them at 12 until its
        compaction catches up). A slow write the rule could not foresee (the
        disk's, or another writer's: the eraser, retention) holds the loop once,
        then sends go to the thread until a write is quick again.
        """
        if len(sends) != 1 or self._last_write >= WRITE_HERE_MOST:
            return False
        level0 = db.get_property(b"leveldb.num-files-at-level0")
        return level0 is not None and int(level0) < WRITE_HERE_LEVEL0

    def _fail_batch(self, sends: list[Pending], exc: Exception) -> None:
        # The counters were only tentative, so the next batch reuses the
        # same ids and nothing shows a gap.
        _log.warning("message_batch_failed", sends=len(sends), error=repr(exc))
        if isinstance(exc, plyvel.CorruptionError | DamagedStore):
            self._database.report_damage(f"a write failed: {error_text(exc)}")
        _fail_sends(sends, f"the send was not stored: {exc!r}", cause=exc)

    async def _recover(self) -> bool:
        """Open the closed database until it opens; True when told to stop meanwhile.

        Counters are then read again from disk. That also covers a batch that
        reached the disk although its write reported failure: its ids are
        taken, never reused, and a retry of one of its sends finds its receipt.
        """
        loop = asyncio.get_running_loop()
        failures = 0
        while not self._refuse_queued():
            try:
                db = await loop.run_in_executor(self._thread, open_db, self._path)
            except Exception as exc:
                failures += 1
                wait = min(REOPEN_LONGEST_WAIT, REOPEN_FIRST_WAIT * 2 ** (failures - 1))
                # Nothing is reported as damage here: running out of files or
                # space is not, and a store LevelDB cannot open again stays
                # closed, so readiness fails; it was not closed whole, so the
                # next start checks it through.
                _log.warning(
                    "message_store_reopen_failed", error=repr(exc), failures=failures, retry_in=wait
                )
                if await self._stopped_within(wait):
                    return True
                continue
            self._database.replace(db)
            self.committed.forget()
            self._must_reopen = False
            _log.info("message_store_reopened", failed_attempts=failures)
            return False
        return True

    def _refuse_queued(self) -> bool:
        """Fail the sends queued before the database closed; True when `stop` was asked.

        Sends made while it is closed are refused before they are queued.
        """
        stopping = False
        while not self._queue.empty():
            queued = self._queue.get_nowait()
            if queued is None:
                stopping = True
            else:
                _fail_sends([queued], RECOVERING)
        return stopping

    async def _stopped_within(self, seconds: float) -> bool:
        """Wait `seconds`, or less when `stop` is asked meanwhile; whether it was."""
        pause = asyncio.ensure_future(self._pause(seconds))
        stop = asyncio.ensure_future(self._stop_asked.wait())
        try:
            await asyncio.wait((pause, stop), return_when=asyncio.FIRST_COMPLETED)
        finally:
            pause.cancel()
            stop.cancel()
        return self._stop_asked.is_set()

    def _write(self, batch: WriteBatch) -> None:
        """Write one batch atomically and fsync it, then note it; runs on the writer's thread
        (or, for a lone send while writes are quick, on the loop's: `_write_here`)."""
        started = self._timer()
        with self._database as db:
            writing = db.write_batch(sync=True)
            for key, value in batch.puts:
                if value is None:
                    writing.delete(key)
                else:
                    writing.put(key, value)
            writing.write()
        self._last_write = self._timer() - started
        if batch.last_message is not None:
            try:
                self._watermark.note(*batch.last_message, batch.new_messages)
            except OSError as exc:
                # The batch is on disk: failing it would only make its senders
                # retry. A watermark left behind still checks an older batch.
                _log.warning("message_watermark_not_noted", error=repr(exc))


def _fail_sends(sends: Iterable[Pending], reason: str, cause: BaseException | None = None) -> None:
    """Fail every send of `sends` not yet answered."""
    for send in sends:
        if not send.future.done():
            # One exception object per caller, so tracebacks do not pile up.
            error = MessageStoreError(reason)
            error.__cause__ = cause
            send.future.set_exception(error)
