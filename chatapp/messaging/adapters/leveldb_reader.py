"""Where the message store's reads run, and what guards them.

Range reads and message reads run on a small pool of reader threads, so that
a page of a thousand long messages never stalls the event loop; the point
reads of the send path run inline (`LevelDBMessageStore` says why). Either
way a read holds a lease on the database, so closing it waits for the read,
and a plyvel error leaves as `MessageStoreError`. A read that finds damage
(a failed checksum, a record that does not decode or points at nothing) is
also reported to the handle, so that readiness fails from then on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final, TypeVar

import plyvel

from chatapp.messaging.adapters.leveldb_handle import LevelDBHandle
from chatapp.messaging.adapters.leveldb_layout import DamagedStore, error_text, out_of_resources
from chatapp.messaging.store import MessageStoreError

READER_THREADS: Final = 2
"""Reads running at once: enough to overlap two pages, few enough to leave the loop a core."""

T = TypeVar("T")


class LevelDBReader:
    """Runs reads of one database on its own threads or on the caller's."""

    def __init__(self, database: LevelDBHandle) -> None:
        self._database = database
        self._threads = ThreadPoolExecutor(
            max_workers=READER_THREADS, thread_name_prefix="message-store-read"
        )

    async def off_loop(self, read: Callable[[Any], T]) -> T:
        """`read(db)` on a reader thread; the loop runs on meanwhile."""
        loop = asyncio.get_running_loop()
        try:
            pending = loop.run_in_executor(self._threads, self.inline, read)
        except RuntimeError as exc:  # the threads were shut down by close()
            raise MessageStoreError("the message store is closed") from exc
        return await pending

    def inline(self, read: Callable[[Any], T]) -> T:
        """`read(db)` on this thread, under a lease."""
        try:
            with self._database as db:
                return read(db)
        except plyvel.Error as exc:
            # Out of open files, a table cannot be opened now: not damage.
            if not out_of_resources(exc):
                self._database.report_damage(f"a read failed: {error_text(exc)}")
            raise MessageStoreError(f"the message store could not read: {exc!r}") from exc
        except DamagedStore as exc:
            self._database.report_damage(str(exc))
            raise

    def shutdown(self) -> None:
        """Let the threads end once their queue is empty; this does not wait.

        Reads still queued run and find the database closed. Cancelling them
        instead would hand their callers a `CancelledError`, which reads as
        their own task being cancelled, not as a closed store.
        """
        self._threads.shutdown(wait=False)
