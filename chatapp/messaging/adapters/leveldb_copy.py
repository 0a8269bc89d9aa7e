"""A consistent copy of the message store, written as a new LevelDB while the writer writes on.

Another process cannot open the folder of a running server (LevelDB's lock),
so a backup of a running server is taken inside it, from a LevelDB snapshot:
the snapshot holds exactly the batches that had landed when it was taken, so
every send acknowledged before it (its batch landed before its answer) is in
the copy, and no batch is in it by halves (each is one atomic write).

The snapshot is read in pieces, each on a reader thread under a lease of its
own, with a pause between pieces, so sends and reads take turns with the
copy. Between pieces the database may close (shutdown) or reopen (after a
failed write); plyvel then closes the snapshot with it, the next piece fails,
and the copy is abandoned: take it again. Only present values are read, so
the old text of a deleted message (which may still sit in LevelDB's files
until a compaction) is not in the copy.

Reading never stores into the serving database's block cache, and an error
of the copy's own database (a full backup disk) leaves as `CopyFailed`, not
as a plyvel error a reader would take for damage to the store it serves.
The copy ends with a watermark of its own (its last message, its count of
messages, closed cleanly) and everything fsync'ed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pathlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

import plyvel

from chatapp.messaging.adapters.leveldb_layout import (
    DEDUP,
    INBOX,
    MAX_OPEN_FILES,
    MESSAGE,
    PREFIX_LEN,
    U64,
    error_text,
    id_at_end,
)
from chatapp.messaging.adapters.leveldb_watermark import Watermark, write_watermark
from chatapp.messaging.store import MessageStoreError

PIECE_RECORDS: Final = 4096
PIECE_BYTES: Final = 4 * 1024 * 1024
"""A piece ends at whichever comes first: a few milliseconds of work on the reader thread."""
PIECE_PAUSE_S: Final = 0.005
"""Between two pieces: the loop, the writer and other reads get the GIL and the disk."""

T = TypeVar("T")
Run = Callable[[Callable[[Any], T]], Awaitable[T]]
"""Runs `work(db)` where the database may be used: a reader thread, under a lease."""


class CopyFailed(MessageStoreError):
    """The copy could not be written, or the store changed under it; the store is untouched."""


@dataclass(slots=True)
class CopiedStore:
    """What the copy holds."""

    records: int = 0
    messages: int = 0
    inbox_entries: int = 0
    receipts: int = 0
    last_message_ids: dict[int, int] = field(default_factory=dict)
    """The highest message id of each channel in the copy."""
    last_message: tuple[int, int] | None = None


class SnapshotCopy:
    """Copies one snapshot of a database into a new database in `target`, piece by piece."""

    def __init__(self, target: pathlib.Path) -> None:
        """Make the empty copy; `CopyFailed` when `target` has a database already."""
        self.target = target
        self.copied = CopiedStore()
        self._after: bytes | None = None
        self._snapshot: Any = None
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            self._db: Any = plyvel.DB(
                str(target),
                create_if_missing=True,
                error_if_exists=True,
                paranoid_checks=True,
                max_open_files=MAX_OPEN_FILES,
            )
        except (plyvel.Error, OSError) as exc:
            raise CopyFailed(f"cannot make the copy in {target}: {error_text(exc)}") from None

    def take(self, db: Any) -> None:
        """Fix the copy's point in time: the batches that have landed on `db` by now."""
        self._snapshot = db.snapshot()

    def piece(self, db: Any) -> bool:
        """Copy the next piece of the snapshot; True when the snapshot is copied whole.

        `db` is only leased: the snapshot is read, which is `db`'s as long as
        it has not been closed since `take`.
        """
        del db  # the lease is what matters: it keeps the database open meanwhile
        rows: list[tuple[bytes, bytes]] = []
        size = 0
        where = {} if self._after is None else {"start": self._after, "include_start": False}
        try:
            with self._snapshot.iterator(
                verify_checksums=True, fill_cache=False, **where
            ) as source:
                for key, value in source:
                    rows.append((key, value))
                    size += len(key) + len(value)
                    if len(rows) >= PIECE_RECORDS or size >= PIECE_BYTES:
                        break
        except RuntimeError as exc:  # plyvel: "Database or snapshot is closed"
            raise CopyFailed(
                "the message store closed or reopened during the copy (a write failed, or the"
                " server is stopping); take the backup again"
            ) from exc
        self._write(rows)
        if rows:
            self._after = rows[-1][0]
        return len(rows) < PIECE_RECORDS and size < PIECE_BYTES

    def release(self, db: Any) -> None:
        """Let the serving database forget the snapshot (it pins old versions meanwhile)."""
        del db
        if self._snapshot is not None:
            with contextlib.suppress(RuntimeError):
                self._snapshot.close()
            self._snapshot = None

    def finish(self) -> CopiedStore:
        """Make the copy durable, close it and give it its watermark."""
        try:
            self._db.write_batch(sync=True).write()  # syncs the log and what it holds
            self._db.close()
        except plyvel.Error as exc:
            raise CopyFailed(f"cannot write the copy in {self.target}: {error_text(exc)}") from None
        channel_id, message_id = self.copied.last_message or (0, 0)
        try:
            write_watermark(
                self.target,
                Watermark(channel_id, message_id, self.copied.messages, closed_cleanly=True),
            )
            sync_tree(self.target)
        except OSError as exc:
            raise CopyFailed(f"cannot write the copy in {self.target}: {exc}") from None
        return self.copied

    def abandon(self) -> None:
        """Close the copy's database; what was written stays for the caller to remove."""
        with contextlib.suppress(plyvel.Error, RuntimeError):
            self._db.close()

    def _write(self, rows: list[tuple[bytes, bytes]]) -> None:
        copied = self.copied
        try:
            with self._db.write_batch() as batch:
                for key, value in rows:
                    batch.put(key, value)
        except plyvel.Error as exc:
            raise CopyFailed(f"cannot write the copy in {self.target}: {error_text(exc)}") from None
        for key, _ in rows:
            copied.records += 1
            table = key[:1]
            if table == MESSAGE and len(key) == PREFIX_LEN + U64.size:
                channel_id, message_id = int(U64.unpack_from(key, 1)[0]), id_at_end(key)
                copied.messages += 1
                copied.last_message_ids[channel_id] = message_id  # keys ascend
                copied.last_message = (channel_id, message_id)
            elif table == INBOX:
                copied.inbox_entries += 1
            elif table == DEDUP:
                copied.receipts += 1


async def copy_store(
    run: Run[Any],
    target: pathlib.Path,
    *,
    pause: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> CopiedStore:
    """Copy the database that `run` reaches into a new store in `target` (see the module)."""
    copy = await asyncio.to_thread(SnapshotCopy, target)
    try:
        await run(copy.take)
        try:
            while not await run(copy.piece):
                await pause(PIECE_PAUSE_S)
        finally:
            with contextlib.suppress(MessageStoreError):
                await run(copy.release)
        return await asyncio.to_thread(copy.finish)
    except BaseException:
        await asyncio.to_thread(copy.abandon)
        raise


def copy_stopped_store(db: Any, target: pathlib.Path) -> CopiedStore:
    """Copy a database this process has open and nothing else writes to, in one go."""
    copy = SnapshotCopy(target)
    try:
        copy.take(db)
        try:
            while not copy.piece(db):
                pass
        except plyvel.Error as exc:
            reason = error_text(exc)
            raise MessageStoreError(f"the message store could not be read: {reason}") from None
        finally:
            copy.release(db)
        return copy.finish()
    except BaseException:
        copy.abandon()
        raise


def sync_tree(folder: pathlib.Path) -> None:
    """fsync every file of `folder` and the folder itself."""
    for path in folder.iterdir():
        if path.is_file():
            descriptor = os.open(path, os.O_RDONLY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
