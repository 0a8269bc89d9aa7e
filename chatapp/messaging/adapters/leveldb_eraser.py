"""Making a deleted message's old text leave the store's files, not only its present.

Overwriting a record in LevelDB hides the old value, but the value stays in
the log and in the table files until a compaction merges it away, and
LevelDB's background compactions may take long to reach a quiet key range.
So once a deletion is on disk, the ranges of its records are compacted by
hand, in three steps, because a manual compaction of a range merges each
level into the next only from the level above the deepest one holding the
range, and drops an old version only where a newer one meets it:

1. compact the range: the log (which holds every recent version) becomes a
   table, which may land at the deepest level, old versions and all;
2. write the records' present values again (the deleted message's record,
   the absence of its reactions): deleted is final, so nothing else writes
   them meanwhile;
3. compact again: the new versions land above every table holding the
   range, and each level's merge into the next drops what they shadow.

The compaction runs on a thread of its own, because it can take a while on a
large store and sends must not wait behind it; deletions that land while one
runs are compacted together by the next.

A LevelDB snapshot (a backup's copy reads one) keeps every version it can
see through compactions, so the keys of deletions that land while one is
held (`hold_back`) are compacted again once it is released (`let_go`).

plyvel's `compact_range()` without bounds compacts nothing (it passes empty
keys), so the bounds are explicit.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Final

import structlog

from chatapp.messaging.adapters.leveldb_handle import LevelDBHandle

_log = structlog.get_logger(__name__)

ERASE_THREAD: Final = "message-store-eraser"


class Eraser:
    """Compacts the key ranges of deleted records, one round at a time, in the background."""

    def __init__(self, database: LevelDBHandle) -> None:
        self._database = database
        self._waiting: set[bytes] = set()
        self._holds = 0
        self._held_back: set[bytes] = set()
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=ERASE_THREAD)
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task = asyncio.create_task(self._run(), name=ERASE_THREAD)

    def erase(self, keys: list[bytes]) -> None:
        """Compact `keys` soon: their records were overwritten or deleted by a batch on disk."""
        self._waiting.update(keys)
        if self._holds:
            self._held_back.update(keys)
        self._idle.clear()
        self._wake.set()

    def hold_back(self) -> None:
        """A snapshot is being taken and read: erase what lands meanwhile again after it."""
        self._holds += 1

    def let_go(self) -> None:
        """The snapshot of a `hold_back` is released: compact what it kept alive."""
        self._holds -= 1
        if not self._holds and self._held_back:
            keys, self._held_back = list(self._held_back), set()
            self.erase(keys)

    async def settled(self) -> None:
        """Wait until every key given so far has been compacted (or its round failed)."""
        await self._idle.wait()

    async def close(self) -> None:
        """Stop; a round still running on the thread finishes before the database closes."""
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._thread.shutdown, True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            keys, self._waiting = sorted(self._waiting), set()
            try:
                await loop.run_in_executor(self._thread, self._compact, keys)
            except Exception as exc:
                # The records are overwritten already; their old versions go at
                # LevelDB's next compaction of the range instead.
                _log.warning("message_erase_failed", keys=len(keys), error=repr(exc))
            if not self._waiting:
                self._idle.set()

    def _compact(self, keys: list[bytes]) -> None:
        with self._database as db:
            for key in keys:
                db.compact_range(start=key, stop=key)
            rewriting = db.write_batch(sync=True)
            for key in keys:
                present: bytes | None = db.get(key, verify_checksums=True)
                if present is None:
                    rewriting.delete(key)
                else:
                    rewriting.put(key, present)
            rewriting.write()
            for key in keys:
                db.compact_range(start=key, stop=key)
