"""The message store on LevelDB, with group-committed writes.

The keys and how records are read by them are in `leveldb_layout`; this
module owns the single writer, its batches and the counters.
"""

from __future__ import annotations

import asyncio
import functools
import pathlib
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Final

import structlog

from chatapp.messaging.adapters import codec
from chatapp.messaging.adapters.leveldb_layout import (
    INBOX,
    MESSAGE,
    RANGE_END,
    U64,
    check_id,
    dedup_key,
    find_original,
    id_at_end,
    last_id,
    members_with_sender,
    open_db,
    pack_id,
    read_message,
    read_pointed,
)
from chatapp.messaging.models import (
    AcceptedMessage,
    InboxEntry,
    InboxPage,
    MessagePage,
    StoredMessage,
)
from chatapp.messaging.store import MessageStoreError

MAX_BATCH_SENDS: Final = 1024
"""The most sends one write batch takes, so a burst never builds one unbounded batch."""


_log = structlog.get_logger(__name__)


@dataclass(slots=True)
class _Send:
    """One append waiting for the writer."""

    draft: StoredMessage
    """The message with `message_id` 0, until the writer assigns one."""
    member_ids: tuple[int, ...]
    dedup_key: bytes
    value: bytes
    future: asyncio.Future[AcceptedMessage]


@dataclass(slots=True)
class _Batch:
    """What one write batch will store, and the counters it moves if it lands."""

    puts: list[tuple[bytes, bytes]] = field(default_factory=list)
    answers: list[tuple[asyncio.Future[AcceptedMessage], AcceptedMessage]] = field(
        default_factory=list
    )
    last_message_ids: dict[int, int] = field(default_factory=dict)
    max_seqs: dict[int, int] = field(default_factory=dict)


class LevelDBMessageStore:
    """`MessageStore` on one LevelDB folder.

    A single writer task owns every write and every id counter. It takes all
    sends queued while the previous batch was being written, assigns their ids,
    and writes them as one `sync=True` batch on a dedicated thread; callers are
    answered only after that batch is on disk.
    """

    def __init__(self, db: Any, executor: ThreadPoolExecutor, path: pathlib.Path) -> None:
        """Use `open`; this takes an opened plyvel DB and the thread that writes to it."""
        self._db: Any = db
        self._path = path
        # Set when a write failed: the log may end in a torn record, and
        # LevelDB can drop records written after one when it recovers. The
        # next batch reopens the database first, so it recovers now and
        # starts a fresh log.
        self._damaged = False
        self._executor = executor
        self._queue: asyncio.Queue[_Send | None] = asyncio.Queue()
        # Committed counters: only the writer fills them, from disk or after a landed batch.
        self._last_message_ids: dict[int, int] = {}
        self._max_seqs: dict[int, int] = {}
        self._batches_written = 0
        self._closed = False
        self._fully_closed = asyncio.Event()
        self._writer = asyncio.create_task(self._run_writer(), name="message-store-writer")

    @classmethod
    async def open(cls, path: pathlib.Path) -> LevelDBMessageStore:
        """Open the store in `path`, creating the folder when missing.

        Nothing is scanned: counters are recovered per channel and per user on
        first use, so opening stays fast however many messages are stored.
        """
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="message-store")
        loop = asyncio.get_running_loop()
        try:
            db = await loop.run_in_executor(executor, functools.partial(open_db, path))
        except Exception as exc:
            executor.shutdown(wait=False)
            raise MessageStoreError(f"could not open the message store in {path}: {exc}") from exc
        return cls(db, executor, path)

    @property
    def batches_written(self) -> int:
        """How many write batches have landed on disk since the store was opened."""
        return self._batches_written

    async def append(
        self,
        *,
        sender_id: int,
        channel_id: int,
        client_msg_id: str,
        text: str,
        member_ids: Sequence[int],
        created_at: int,
    ) -> AcceptedMessage:
        """See `MessageStore.append`."""
        return await self.submit(
            sender_id=sender_id,
            channel_id=channel_id,
            client_msg_id=client_msg_id,
            text=text,
            member_ids=member_ids,
            created_at=created_at,
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
    ) -> asyncio.Future[AcceptedMessage]:
        """See `MessageStore.submit`."""
        self._ensure_open()
        check_id("channel_id", channel_id)
        # A bad argument belongs to this caller, so it is raised here and never
        # reaches the writer, where it would fail everyone else's sends too.
        draft = StoredMessage(
            channel_id=channel_id,
            message_id=0,
            sender_id=sender_id,
            text=text,
            created_at=created_at,
            client_msg_id=client_msg_id,
        )
        send = _Send(
            draft=draft,
            member_ids=members_with_sender(sender_id, member_ids),
            dedup_key=dedup_key(sender_id, client_msg_id),
            value=codec.encode_message(
                sender_id=sender_id,
                created_at=created_at,
                client_msg_id=client_msg_id,
                text=text,
            ),
            future=asyncio.get_running_loop().create_future(),
        )
        self._queue.put_nowait(send)
        return send.future

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
        prefix = MESSAGE + pack_id("channel_id", channel_id)
        start = prefix if after is None else prefix + pack_id("after", after)
        stop = prefix + (RANGE_END if before is None else pack_id("before", before))
        if limit <= 0:
            return MessagePage(messages=[], has_more=False)
        # Without `after` the page hugs the upper end, so it is read downwards.
        downwards = after is None
        with self._db.iterator(
            start=start,
            include_start=after is None,
            stop=stop,
            include_stop=before is None,
            reverse=downwards,
        ) as rows:
            page = list(islice(rows, limit + 1))
        has_more = len(page) > limit
        del page[limit:]
        if downwards:
            page.reverse()
        messages = [
            codec.decode_message(value, channel_id=channel_id, message_id=id_at_end(key))
            for key, value in page
        ]
        return MessagePage(messages=messages, has_more=has_more)

    async def inbox(self, user_id: int, *, since: int, limit: int) -> InboxPage:
        """See `MessageStore.inbox`."""
        self._ensure_open()
        prefix = INBOX + pack_id("user_id", user_id)
        start = prefix + pack_id("since", since)
        if limit <= 0:
            return InboxPage(entries=[], has_more=False)
        with self._db.snapshot() as snapshot:
            with snapshot.iterator(
                start=start, include_start=False, stop=prefix + RANGE_END, include_stop=True
            ) as rows:
                page = list(islice(rows, limit + 1))
            entries = [
                InboxEntry(seq=id_at_end(key), message=read_pointed(snapshot, key, value))
                for key, value in page[:limit]
            ]
        return InboxPage(entries=entries, has_more=len(page) > limit)

    async def last_message_id(self, channel_id: int) -> int:
        """See `MessageStore.last_message_id`."""
        self._ensure_open()
        prefix = MESSAGE + pack_id("channel_id", channel_id)
        committed = self._last_message_ids.get(channel_id)
        return committed if committed is not None else last_id(self._db, prefix)

    async def max_seq(self, user_id: int) -> int:
        """See `MessageStore.max_seq`."""
        self._ensure_open()
        prefix = INBOX + pack_id("user_id", user_id)
        committed = self._max_seqs.get(user_id)
        return committed if committed is not None else last_id(self._db, prefix)

    async def original(self, sender_id: int, client_msg_id: str) -> AcceptedMessage | None:
        """See `MessageStore.original`."""
        self._ensure_open()
        check_id("sender_id", sender_id)
        return find_original(self._db, sender_id, client_msg_id)

    async def get(self, channel_id: int, message_id: int) -> StoredMessage | None:
        """See `MessageStore.get`."""
        self._ensure_open()
        return read_message(self._db, channel_id, message_id)

    async def close(self) -> None:
        """See `MessageStore.close`."""
        if self._closed:
            await self._fully_closed.wait()
            return
        self._closed = True
        self._queue.put_nowait(None)
        try:
            await self._writer
        finally:
            # The same single thread closes the db, so a write still running
            # there (the writer was cancelled mid-batch) finishes first.
            if self._db is not None:
                await asyncio.get_running_loop().run_in_executor(self._executor, self._db.close)
            self._executor.shutdown(wait=False)
            self._fully_closed.set()

    def _ensure_open(self) -> None:
        if self._closed:
            raise MessageStoreError("the message store is closed")
        if self._writer.done():
            raise MessageStoreError("the message store's writer has stopped")
        if self._db is None:
            raise MessageStoreError("the message store is recovering from a failed write")

    async def _run_writer(self) -> None:
        batch: list[_Send] = []
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
            _fail(batch, "the message store stopped before this send was stored")

    async def _take_batch(self) -> tuple[list[_Send], bool]:
        """Everything queued now, in arrival order, up to the cap; and whether to stop."""
        batch: list[_Send] = []
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

    async def _commit(self, sends: list[_Send]) -> None:
        if not sends:
            return
        if self._damaged:
            try:
                await self._reopen()
            except Exception as exc:
                _log.warning("message_store_reopen_failed", error=repr(exc))
                _fail(sends, f"the message store cannot write: {exc!r}", cause=exc)
                return
        try:
            batch = self._form(sends)
            if batch.puts:
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(self._executor, self._write, batch.puts)
        except Exception as exc:
            # The counters were only tentative, so the next batch reuses the
            # same ids and nothing shows a gap.
            _log.warning("message_batch_failed", sends=len(sends), error=repr(exc))
            self._damaged = True
            _fail(sends, f"the send was not stored: {exc!r}", cause=exc)
            return
        self._last_message_ids.update(batch.last_message_ids)
        self._max_seqs.update(batch.max_seqs)
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
        if self._db is not None:
            db, self._db = self._db, None
            await loop.run_in_executor(self._executor, db.close)
        self._db = await loop.run_in_executor(
            self._executor, functools.partial(open_db, self._path)
        )
        self._last_message_ids.clear()
        self._max_seqs.clear()
        self._damaged = False
        _log.info("message_store_reopened")

    def _form(self, sends: Iterable[_Send]) -> _Batch:
        """Assign ids to a batch on tentative counters; nothing is committed here.

        Runs only between writes, so what it reads from disk is exactly what
        earlier batches committed.
        """
        batch = _Batch()
        accepted_here: dict[bytes, AcceptedMessage] = {}
        for send in sends:
            original = accepted_here.get(send.dedup_key)
            if original is None:
                original = self._stored_original(send)
            if original is not None:
                batch.answers.append((send.future, _as_duplicate(original)))
                continue
            accepted = self._assign(send, batch)
            accepted_here[send.dedup_key] = accepted
            batch.answers.append((send.future, accepted))
        return batch

    def _assign(self, send: _Send, batch: _Batch) -> AcceptedMessage:
        channel_id = send.draft.channel_id
        message_id = self._next_id(
            MESSAGE, channel_id, batch.last_message_ids, self._last_message_ids
        )
        batch.puts.append((MESSAGE + U64.pack(channel_id) + U64.pack(message_id), send.value))

        pointer = codec.encode_pointer(channel_id, message_id)
        inbox_seqs: dict[int, int] = {}
        for user_id in send.member_ids:
            seq = self._next_id(INBOX, user_id, batch.max_seqs, self._max_seqs)
            inbox_seqs[user_id] = seq
            batch.puts.append((INBOX + U64.pack(user_id) + U64.pack(seq), pointer))

        seq = inbox_seqs[send.draft.sender_id]
        batch.puts.append((send.dedup_key, codec.encode_receipt(channel_id, message_id, seq)))
        # Plain construction: pydantic-core validates these few fields faster than
        # model_construct or model_copy skip validation in Python.
        draft = send.draft
        message = StoredMessage(
            channel_id=channel_id,
            message_id=message_id,
            sender_id=draft.sender_id,
            text=draft.text,
            created_at=draft.created_at,
            client_msg_id=draft.client_msg_id,
        )
        return AcceptedMessage(message=message, seq=seq, inbox_seqs=inbox_seqs, duplicate=False)

    def _stored_original(self, send: _Send) -> AcceptedMessage | None:
        return find_original(self._db, send.draft.sender_id, send.draft.client_msg_id)

    def _next_id(
        self, table: bytes, owner_id: int, tentative: dict[int, int], committed: dict[int, int]
    ) -> int:
        """Count one more message of a channel, or entry of an inbox, on the tentative counters.

        A counter not yet used since opening is read from the last key of its
        range once, then kept.
        """
        last = tentative.get(owner_id)
        if last is None:
            last = committed.get(owner_id)
        if last is None:
            last = committed[owner_id] = last_id(self._db, table + U64.pack(owner_id))
        tentative[owner_id] = last + 1
        return last + 1

    def _write(self, puts: list[tuple[bytes, bytes]]) -> None:
        """Write one batch atomically and fsync it; runs on the store's thread."""
        batch = self._db.write_batch(sync=True)
        for key, value in puts:
            batch.put(key, value)
        batch.write()


def _as_duplicate(original: AcceptedMessage) -> AcceptedMessage:
    # Only the sender's seq is kept on disk, so a duplicate from this batch
    # answers with the same shape as one found on disk.
    return AcceptedMessage(
        message=original.message,
        seq=original.seq,
        inbox_seqs={original.message.sender_id: original.seq},
        duplicate=True,
    )


def _fail(sends: Iterable[_Send], reason: str, cause: BaseException | None = None) -> None:
    for send in sends:
        if not send.future.done():
            # One exception object per caller, so tracebacks do not pile up.
            error = MessageStoreError(reason)
            error.__cause__ = cause
            send.future.set_exception(error)
