"""The message store on LevelDB: the façade that implements `MessageStore`.

It opens and closes the database and checks every call. Behind it,
`leveldb_writer` group-commits the writes and keeps the id counters,
`leveldb_reader` runs reads off the event loop, `leveldb_handle` keeps the
database from closing under a read, and `leveldb_layout` and `leveldb_pages`
say how records are found by key.
"""

from __future__ import annotations

import asyncio
import functools
import pathlib
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final, TypeVar

import structlog

from chatapp.messaging.adapters import leveldb_scans
from chatapp.messaging.adapters.leveldb_batch import prepare_change, prepare_send
from chatapp.messaging.adapters.leveldb_copy import CopiedStore, copy_store
from chatapp.messaging.adapters.leveldb_eraser import Eraser
from chatapp.messaging.adapters.leveldb_handle import LevelDBHandle
from chatapp.messaging.adapters.leveldb_layout import (
    INBOX,
    MESSAGE,
    check_id,
    counter_at,
    open_db,
    read_message,
    read_original,
    read_receipt,
)
from chatapp.messaging.adapters.leveldb_pages import (
    read_history,
    read_inbox,
    read_last_message_ids,
    read_last_messages,
)
from chatapp.messaging.adapters.leveldb_reader import LevelDBReader
from chatapp.messaging.adapters.leveldb_survey import Survey, survey
from chatapp.messaging.adapters.leveldb_verify import verify_piece
from chatapp.messaging.adapters.leveldb_watermark import (
    UNKNOWN,
    Watermark,
    WatermarkFile,
    read_watermark,
)
from chatapp.messaging.adapters.leveldb_writer import (
    CLOSED,
    MAX_BATCH_SENDS,
    RECOVERING,
    GroupCommitWriter,
    Pause,
)
from chatapp.messaging.models import (
    AcceptedMessage,
    ChangeOutcome,
    InboxPage,
    InboxRecord,
    MessageChange,
    MessagePage,
    MessagePreview,
    SendRecord,
    StoredMessage,
)
from chatapp.messaging.store import MessageStoreError

__all__ = ["MAX_BATCH_SENDS", "LevelDBMessageStore"]

# Between two pieces of the background check of every message: with pieces of
# 512, a million messages take a few minutes and leave the loop and the disk to
# the users.
VERIFY_PAUSE_S: Final = 0.05

_log = structlog.get_logger(__name__)

T = TypeVar("T")


class LevelDBMessageStore:
    """`MessageStore` on one LevelDB folder.

    Writes go through one group-commit writer (see `leveldb_writer`); reads
    that can take milliseconds run on reader threads (see `leveldb_reader`).
    """

    def __init__(
        self,
        database: LevelDBHandle,
        writer: GroupCommitWriter,
        watermark: Watermark | None = None,
        *,
        eraser: Eraser | None = None,
    ) -> None:
        """Use `open`; this takes the opened database and the writer that owns its writes.

        `watermark` is the one found on opening, which `survey` checks.
        """
        self._database = database
        self._writer = writer
        self._watermark = watermark
        self._eraser = eraser
        self.created = False
        """True when `open` found no database and made a new one."""
        self._reader = LevelDBReader(database)
        self._closed = False
        self._fully_closed = asyncio.Event()

    @classmethod
    async def open(
        cls,
        path: pathlib.Path,
        *,
        pause: Pause = asyncio.sleep,
        timer: Callable[[], float] = time.perf_counter,
    ) -> LevelDBMessageStore:
        """Open the store in `path`, creating the folder when missing.

        Nothing is scanned: counters are recovered per channel and per user on
        first use, so opening stays fast however many messages are stored
        (`survey` checks the ends of the ranges). Raises `StoreInUse` when
        another process has the folder open, `DamagedStore` when LevelDB or
        the watermark cannot be read, `OutOfResources` when the system has no
        file (or space) to spare, `MessageStoreError` for anything else.
        `pause` is how the writer waits between attempts to reopen after a
        failed write, and `timer` how it times writes (`leveldb_writer`).
        """
        thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="message-store")
        loop = asyncio.get_running_loop()
        try:
            db, found, start = await loop.run_in_executor(thread, functools.partial(_open, path))
        except MessageStoreError:
            thread.shutdown(wait=False)
            raise
        except Exception as exc:
            thread.shutdown(wait=False)
            raise MessageStoreError(f"could not open the message store in {path}: {exc}") from exc
        database = LevelDBHandle(db)
        eraser = Eraser(database)
        writer = GroupCommitWriter(
            database, thread, path, start, pause=pause, erase=eraser.erase, timer=timer
        )
        store = cls(database, writer, found, eraser=eraser)
        store.created = found is None and start.mark.messages_stored == 0
        return store

    def damage(self) -> str | None:
        """The first damage a read or a write has met since opening, or None.

        Damage is a failed checksum, a record that does not decode, or a
        record pointing at a message that is not there; it stays until the
        folder is repaired, so readiness can refuse traffic meanwhile.
        """
        return self._database.damage

    async def survey(self) -> Survey:
        """Check the ends of every range against the watermark (see `leveldb_survey`)."""
        self._ensure_open()
        check = functools.partial(survey, watermark=self._watermark)
        return await self._reader.off_loop(check)

    async def verify_receipts(
        self, *, pause: Callable[[float], Awaitable[None]] = asyncio.sleep
    ) -> int:
        """Check every message's idempotency record (see `leveldb_verify`); how many were.

        Damage found is reported as a failed read's would be (`damage`), and
        the walk stops there.
        """
        cursor: bytes | None = None
        checked = 0
        while True:
            self._ensure_open()
            cursor, count, problem = await self._reader.off_loop(
                functools.partial(verify_piece, after=cursor)
            )
            checked += count
            if problem is not None:
                self._database.report_damage(problem)
                return checked
            if cursor is None:
                return checked
            await pause(VERIFY_PAUSE_S)

    async def copy_to(self, target: pathlib.Path) -> CopiedStore:
        """A consistent copy of the store as it is now, as a new store in `target`.

        See `leveldb_copy`. The copy's snapshot keeps old versions alive, so
        deletions made meanwhile are erased again once it is released.
        """
        if self._eraser is not None:
            self._eraser.hold_back()
        try:
            return await copy_store(self.run_off_loop, target)
        finally:
            if self._eraser is not None:
                self._eraser.let_go()

    async def run_off_loop(self, work: Callable[[Any], T]) -> T:
        """`work(db)` on a reader thread, under a lease, as every read here runs.

        For the adapters that walk the database beside this one (retention's
        cursors, a backup's snapshot copy); what they write is theirs to keep
        in step with the writer. A plyvel error leaves as `MessageStoreError`.
        """
        self._ensure_open()
        return await self._reader.off_loop(work)

    @property
    def batches_written(self) -> int:
        """How many write batches have landed on disk since the store was opened."""
        return self._writer.batches_written

    async def messages_stored(self) -> int | None:
        """See `MessageStore.messages_stored`: the watermark's count, noted after each batch."""
        self._ensure_open()
        return self._writer.messages_stored

    async def append(
        self,
        *,
        sender_id: int,
        channel_id: int,
        client_msg_id: str,
        text: str,
        member_ids: Sequence[int],
        created_at: int,
        reply_to: int | None = None,
        mentions: Sequence[int] = (),
    ) -> AcceptedMessage:
        """See `MessageStore.append`."""
        return await self.submit(
            sender_id=sender_id,
            channel_id=channel_id,
            client_msg_id=client_msg_id,
            text=text,
            member_ids=member_ids,
            created_at=created_at,
            reply_to=reply_to,
            mentions=mentions,
        )

    def submit(
        self,
        *,
        sender_id: int,
        channel_id: int,
        client_msg_id: str,
        text: str,
        member_ids: Sequence[int],
        created_at: int,
        reply_to: int | None = None,
        mentions: Sequence[int] = (),
    ) -> asyncio.Future[AcceptedMessage]:
        """See `MessageStore.submit`."""
        self._ensure_open()
        send = prepare_send(
            sender_id=sender_id,
            channel_id=channel_id,
            client_msg_id=client_msg_id,
            text=text,
            member_ids=member_ids,
            created_at=created_at,
            reply_to=reply_to,
            mentions=mentions,
        )
        self._writer.enqueue(send)
        return send.future

    async def change(self, change: MessageChange, *, member_ids: Sequence[int]) -> ChangeOutcome:
        """See `MessageStore.change`."""
        return await self.submit_change(change, member_ids=member_ids)

    def submit_change(
        self, change: MessageChange, *, member_ids: Sequence[int]
    ) -> asyncio.Future[ChangeOutcome]:
        """See `MessageStore.submit_change`: queued with the sends, written by the same writer."""
        self._ensure_open()
        pending = prepare_change(change, member_ids)
        self._writer.enqueue(pending)
        return pending.future

    async def history(
        self,
        channel_id: int,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int = 50,
    ) -> MessagePage:
        """See `MessageStore.history`."""
        self._ensure_open()
        read = functools.partial(
            read_history, channel_id=channel_id, before=before, after=after, limit=limit
        )
        return await self._reader.off_loop(read)

    async def inbox(self, user_id: int, *, since: int, limit: int) -> InboxPage:
        """See `MessageStore.inbox`."""
        self._ensure_open()
        read = functools.partial(read_inbox, user_id=user_id, since=since, limit=limit)
        return await self._reader.off_loop(read)

    async def get(self, channel_id: int, message_id: int) -> StoredMessage | None:
        """See `MessageStore.get`."""
        self._ensure_open()
        # Off the loop: a message may be 100,000 characters long.
        read = functools.partial(read_message, channel_id=channel_id, message_id=message_id)
        return await self._reader.off_loop(read)

    async def last_messages(
        self, channel_ids: Sequence[int], *, max_chars: int
    ) -> dict[int, MessagePreview]:
        """See `MessageStore.last_messages`; on a reader thread, like every read of texts.

        The same seeks tell the channels' counters, which are kept (see
        `last_message_ids`): a channel list read after its previews finds
        its counters in memory.
        """
        self._ensure_open()
        for channel_id in channel_ids:
            check_id("channel_id", channel_id)
        counters = self._writer.committed
        read_after = counters.forgotten
        read = functools.partial(
            read_last_messages, channel_ids=tuple(channel_ids), max_chars=max_chars
        )
        previews, on_disk = await self._reader.off_loop(read)
        for channel_id, last in on_disk.items():
            counters.learn_last_message_id(channel_id, last, read_after=read_after)
        return previews

    # Point reads on the event loop: `last_message_id`, `max_seq` and the
    # receipt lookup of `original`, which runs on every send. LevelDB answers
    # them from memory, and a hop to a reader thread costs far more than the
    # read. Measured on the 2-core dev box, 20,000 calls each, per call inline
    # vs through the reader threads (asyncio and uvloop alike): the receipt of
    # a new client_msg_id (the usual send) 3-5 µs vs 65-140 µs; `max_seq` and
    # `last_message_id` read from disk 7-12 µs vs 80-190 µs. Moving them would
    # add about 0.1 ms to every send to spare the loop 10 µs. Only the message
    # of a repeat is read off the loop: one of 100,000 characters took
    # 0.2-0.4 ms to read inline.
    #
    # Every read verifies block checksums. Measured on the same box: a point
    # read served from LevelDB's block cache costs the same either way (the
    # checksum is checked when a block is read from its file, not on a cache
    # hit): receipt lookups 3-8 µs, a counter's last key 17-21 µs, both
    # within noise; a message read that misses the cache, 12 vs 15 µs. A
    # send end to end, 2,000 awaited one by one on a 100,000-message store,
    # 370-570 µs with or without, and 52-120 µs per send in bursts of
    # 1,000, both dominated by the fsync: so the hot path keeps them all.

    async def last_message_id(self, channel_id: int) -> int:
        """See `MessageStore.last_message_id`; a counter read from disk is kept from then on."""
        self._ensure_open()
        check_id("channel_id", channel_id)
        counters = self._writer.committed
        committed = counters.last_message_ids.get(channel_id)
        if committed is not None:
            return committed
        read_after = counters.forgotten
        read = self._reader.inline(
            functools.partial(counter_at, table=MESSAGE, owner_id=channel_id)
        )
        return counters.learn_last_message_id(channel_id, read, read_after=read_after)

    async def last_message_ids(self, channel_ids: Sequence[int]) -> dict[int, int]:
        """See `MessageStore.last_message_ids`: from memory, the others read off the loop.

        A counter not in memory costs a seek that reads its channel's last
        table block, which may hold a message of 400 KB: measured on the
        2-core dev box, about 2 ms per seek for channels whose last message
        is 100,000 emoji, so 2 s for a list of 1,000 if done on the loop. So
        those are read on a reader thread, and kept like the writer's own.
        """
        self._ensure_open()
        counters = self._writer.committed
        found: dict[int, int] = {}
        missing: list[int] = []
        for channel_id in channel_ids:
            check_id("channel_id", channel_id)
            committed = counters.last_message_ids.get(channel_id)
            if committed is None:
                missing.append(channel_id)
            else:
                found[channel_id] = committed
        if missing:
            read_after = counters.forgotten
            read = functools.partial(read_last_message_ids, channel_ids=tuple(missing))
            for channel_id, last in (await self._reader.off_loop(read)).items():
                found[channel_id] = counters.learn_last_message_id(
                    channel_id, last, read_after=read_after
                )
        return found

    async def max_seq(self, user_id: int) -> int:
        """See `MessageStore.max_seq`."""
        self._ensure_open()
        check_id("user_id", user_id)
        committed = self._writer.committed.max_seqs.get(user_id)
        if committed is not None:
            return committed
        return self._reader.inline(functools.partial(counter_at, table=INBOX, owner_id=user_id))

    async def original(self, sender_id: int, client_msg_id: str) -> AcceptedMessage | None:
        """See `MessageStore.original`."""
        self._ensure_open()
        check_id("sender_id", sender_id)
        find = functools.partial(read_receipt, sender_id=sender_id, client_msg_id=client_msg_id)
        receipt = self._reader.inline(find)
        if receipt is None:
            return None
        read = functools.partial(
            read_original, sender_id=sender_id, client_msg_id=client_msg_id, receipt=receipt
        )
        return await self._reader.off_loop(read)

    async def scan_messages(
        self, *, after: tuple[int, int] = (0, 0), limit: int
    ) -> list[StoredMessage]:
        """See `MessageStore.scan_messages`."""
        self._ensure_open()
        scan = functools.partial(leveldb_scans.scan_messages, after=after, limit=limit)
        return await self._reader.off_loop(scan)

    async def scan_inbox(self, *, after: tuple[int, int] = (0, 0), limit: int) -> list[InboxRecord]:
        """See `MessageStore.scan_inbox`."""
        self._ensure_open()
        scan = functools.partial(leveldb_scans.scan_inbox, after=after, limit=limit)
        return await self._reader.off_loop(scan)

    async def scan_sends(
        self, *, after: tuple[int, str] | None = None, limit: int
    ) -> list[SendRecord]:
        """See `MessageStore.scan_sends`."""
        self._ensure_open()
        scan = functools.partial(leveldb_scans.scan_sends, after=after, limit=limit)
        return await self._reader.off_loop(scan)

    async def close(self) -> None:
        """See `MessageStore.close`; reads still running finish before the files are released."""
        if self._closed:
            await self._fully_closed.wait()
            return
        self._closed = True
        try:
            if self._eraser is not None:
                await self._eraser.settled()
            await self._writer.stop()
        finally:
            if self._eraser is not None:
                await self._eraser.close()
            self._reader.shutdown()
            self._fully_closed.set()

    async def erased(self) -> None:
        """Wait until the old texts of the deletions so far are compacted out of the files."""
        if self._eraser is not None:
            await self._eraser.settled()

    def _ensure_open(self) -> None:
        if self._closed:
            raise MessageStoreError(CLOSED)
        if self._writer.stopped:
            raise MessageStoreError("the message store's writer has stopped")
        if not self._database.is_open:
            raise MessageStoreError(RECOVERING)


def _open(path: pathlib.Path) -> tuple[Any, Watermark | None, WatermarkFile]:
    """The database, the watermark found in it (if any) and the watermark file to note in."""
    fresh = not path.exists() or not any(path.iterdir())
    db = open_db(path)
    try:
        found = read_watermark(path)
        # A store older than its watermark starts with nothing to check and an
        # unknown count; `chatapp repair` counts the messages.
        start = found or Watermark(messages_stored=0 if fresh else UNKNOWN)
        if found is None and not fresh:
            _log.warning("message_store_watermark_created", path=str(path))
        return db, found, WatermarkFile(path, start)
    except BaseException:
        db.close()
        raise
