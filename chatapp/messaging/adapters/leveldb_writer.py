"""The single writer of the message store: group-committed, fsync'ed batches.

One task owns every write and every id counter. It takes all sends queued
while the previous batch was being written, assigns their ids, and writes
them as one `sync=True` batch on its own thread; callers are answered only
after that batch is on disk, and the watermark (see `leveldb_watermark`)
notes where it ended.
"""

from __future__ import annotations

import asyncio
import functools
import pathlib
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Final

import plyvel
import structlog

from chatapp.messaging.adapters.leveldb_batch import Counters, PendingSend, WriteBatch, form_batch
from chatapp.messaging.adapters.leveldb_handle import LevelDBHandle
from chatapp.messaging.adapters.leveldb_layout import DamagedStore, error_text, open_db
from chatapp.messaging.adapters.leveldb_watermark import WatermarkFile
from chatapp.messaging.store import MessageStoreError

MAX_BATCH_SENDS: Final = 1024
"""The most sends one write batch takes, so a burst never builds one unbounded batch."""

CLOSED: Final = "the message store is closed"
RECOVERING: Final = "the message store is recovering from a failed write"

_log = structlog.get_logger(__name__)


class GroupCommitWriter:
    """Writes queued sends in order, one batch at a time, and keeps the committed counters."""

    def __init__(
        self,
        database: LevelDBHandle,
        thread: ThreadPoolExecutor,
        path: pathlib.Path,
        watermark: WatermarkFile,
    ) -> None:
        """Write to `database` on `thread` (one worker); `path` is where to reopen it."""
        self._database = database
        self._thread = thread
        self._path = path
        self._watermark = watermark
        # Set when a write failed: the log may end in a torn record, and
        # LevelDB can drop records written after one when it recovers. The
        # next batch reopens the database first, so it recovers now and
        # starts a fresh log.
        self._damaged = False
        self._queue: asyncio.Queue[PendingSend | None] = asyncio.Queue()
        self.committed = Counters()
        """Only the writer fills them: from disk, or after a batch landed."""
        self._batches_written = 0
        self._task = asyncio.create_task(self._run(), name="message-store-writer")

    @property
    def batches_written(self) -> int:
        """How many write batches have landed on disk."""
        return self._batches_written

    @property
    def stopped(self) -> bool:
        """Whether the writer takes no more sends."""
        return self._task.done()

    def enqueue(self, send: PendingSend) -> None:
        """Queue a send behind every send queued before it."""
        self._queue.put_nowait(send)

    async def stop(self) -> None:
        """Write what is queued, then close the database and the writer's thread."""
        self._queue.put_nowait(None)
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
        if self._damaged or self._database.damage is not None:
            return False
        if not self._task.done() or self._task.cancelled():
            return False
        return self._task.exception() is None

    async def _run(self) -> None:
        batch: list[PendingSend] = []
        try:
            stopping = False
            while not stopping:
                batch, stopping = await self._take_batch()
                await self._commit(batch)
        finally:
            # Reached with sends waiting only when the writer is cancelled.
            while not self._queue.empty():
                queued = self._queue.get_nowait()
                if queued is not None:
                    batch.append(queued)
            _fail_sends(batch, "the message store stopped before this send was stored")

    async def _take_batch(self) -> tuple[list[PendingSend], bool]:
        """Everything queued now, in arrival order, up to the cap; and whether to stop."""
        batch: list[PendingSend] = []
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

    async def _commit(self, sends: list[PendingSend]) -> None:
        if not sends:
            return
        loop = asyncio.get_running_loop()
        if self._damaged:
            try:
                await self._reopen()
            except Exception as exc:
                _log.warning("message_store_reopen_failed", error=repr(exc))
                _fail_sends(sends, f"the message store cannot write: {exc!r}", cause=exc)
                return
        try:
            with self._database as db:
                batch = form_batch(db, sends, self.committed)
            if batch.puts:
                await loop.run_in_executor(self._thread, self._write, batch)
        except Exception as exc:
            # The counters were only tentative, so the next batch reuses the
            # same ids and nothing shows a gap.
            _log.warning("message_batch_failed", sends=len(sends), error=repr(exc))
            if isinstance(exc, plyvel.CorruptionError | DamagedStore):
                self._database.report_damage(f"a write failed: {error_text(exc)}")
            self._damaged = True
            _fail_sends(sends, f"the send was not stored: {exc!r}", cause=exc)
            return
        self.committed.advance(batch)
        if batch.puts:
            self._batches_written += 1
        for future, accepted in batch.answers:
            if not future.done():
                future.set_result(accepted)

    async def _reopen(self) -> None:
        """Close and open the database; counters are then read again from disk.

        Reading them again also covers a batch that reached the disk although
        its write reported failure: its ids are taken, never reused.
        """
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self._database.close, RECOVERING)
        db = await loop.run_in_executor(self._thread, open_db, self._path)
        self._database.replace(db)
        self.committed.forget()
        self._damaged = False
        _log.info("message_store_reopened")

    def _write(self, batch: WriteBatch) -> None:
        """Write one batch atomically and fsync it, then note it; runs on the writer's thread."""
        with self._database as db:
            writing = db.write_batch(sync=True)
            for key, value in batch.puts:
                writing.put(key, value)
            writing.write()
        if batch.last_message is not None:
            try:
                self._watermark.note(*batch.last_message, batch.new_messages)
            except OSError as exc:
                # The batch is on disk: failing it would only make its senders
                # retry. A watermark left behind still checks an older batch.
                _log.warning("message_watermark_not_noted", error=repr(exc))


def _fail_sends(
    sends: Iterable[PendingSend], reason: str, cause: BaseException | None = None
) -> None:
    """Fail every send of `sends` not yet answered."""
    for send in sends:
        if not send.future.done():
            # One exception object per caller, so tracebacks do not pile up.
            error = MessageStoreError(reason)
            error.__cause__ = cause
            send.future.set_exception(error)
