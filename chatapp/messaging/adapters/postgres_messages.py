"""The message store on PostgreSQL, for cluster mode: many nodes, one truth.

Each node has one writer that takes every send queued while its previous
transaction was committing and stores them in one transaction (group
commit): nobody is answered before that commit. Ids stay contiguous across
nodes because they come from counter rows updated inside the transaction:
a channel's `last_message_id` and a user's `max_seq` rows are locked until
commit, so two nodes' batches touching one channel or one inbox take turns,
and commit in id order. Every transaction takes its locks in one order
(`postgres_batch`), so two batches never wait on each other in a cycle.

A batch of a few sends alone is one statement instead (`postgres_sends`),
committed as PostgreSQL answers it: the same rules, one round trip.

Edits, deletions and reactions go through the same writer, in order with
the sends; a change that the message's state refuses is answered so, and
does not fail the rest of its batch.

Text is stored as UTF-8 bytes: PostgreSQL's TEXT cannot hold U+0000, which a
message may contain.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Sequence
from typing import Any, Final

import asyncpg
import structlog

from chatapp.messaging.adapters import postgres_scans
from chatapp.messaging.adapters.postgres_batch import (
    Answer,
    Change,
    Item,
    Send,
    duplicate_of,
    store_batch,
)
from chatapp.messaging.adapters.postgres_rows import (
    MESSAGE_FIELDS,
    REACTIONS,
    SELECT_MESSAGES,
    message_from_row,
    update_kind,
)
from chatapp.messaging.adapters.postgres_sends import store_sends
from chatapp.messaging.models import (
    AcceptedMessage,
    ChangeOutcome,
    Deletion,
    Edit,
    InboxEntry,
    InboxPage,
    InboxRecord,
    MessageChange,
    MessagePage,
    MessagePreview,
    SendRecord,
    StoredMessage,
)
from chatapp.messaging.preview import cut_utf8, head_bytes
from chatapp.messaging.store import MessageStoreError

MAX_BATCH_SENDS: Final = 512
"""The most sends and changes one transaction stores."""
ONE_STATEMENT_MOST: Final = 8
"""The most sends a batch of sends alone may hold to be stored by one statement
(`postgres_sends`). Measured on PostgreSQL 15: up to here the statement costs PostgreSQL
no more CPU than the transaction's seven statements and answers in about 60% of their time;
past it, its sorts and joins cost more per send than the round trips it saves."""
# BIGINT is signed: ids above this cannot be stored (the protocol's ids stay below 2**53).
ID_LIMIT: Final = 2**63
# How often a batch is tried again when another node stored the same
# client_msg_id at the same moment, or PostgreSQL broke a lock wait.
_RETRIES: Final = 3

_log = structlog.get_logger(__name__)


class PostgresMessageStore:
    """`MessageStore` on a PostgreSQL pool (tables from `migrations/postgresql/002_*`, `007_*`)."""

    def __init__(self, pool: asyncpg.Pool, *, pending_pushes: bool = False) -> None:
        """`pending_pushes`: every new message gets a `push_pending` row in its transaction
        (`postgres_batch`), for a node whose notifier takes them off."""
        self._pool = pool
        self._pending_pushes = pending_pushes
        self._queue: asyncio.Queue[Item | None] = asyncio.Queue()
        self._closed = False
        self._writer = asyncio.create_task(self._run_writer(), name="message-store-writer")

    # -- writes ------------------------------------------------------------------------

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
        # Checked here, not left to the database: one bad value would fail the whole batch.
        ids = [("channel_id", channel_id), ("sender_id", sender_id)]
        ids += [("member_ids", member) for member in member_ids]
        ids += [("mentions", mention) for mention in mentions]
        if reply_to is not None:
            ids.append(("reply_to", reply_to))
        for name, value in ids:
            _check_id(name, value)
        if not client_msg_id or not client_msg_id.isascii():
            raise ValueError(f"client_msg_id must be non-empty ASCII, got {client_msg_id!r}")
        text.encode("utf-8")  # a lone surrogate is this caller's error, raised here
        draft = StoredMessage(
            channel_id=channel_id,
            message_id=0,
            sender_id=sender_id,
            text=text,
            created_at=created_at,
            client_msg_id=client_msg_id,
            reply_to=reply_to,
            mentions=list(mentions),
        )
        send = Send(
            draft=draft,
            member_ids=tuple(dict.fromkeys((*member_ids, sender_id))),
            future=asyncio.get_running_loop().create_future(),
        )
        self._queue.put_nowait(send)
        return send.future

    async def change(self, change: MessageChange, *, member_ids: Sequence[int]) -> ChangeOutcome:
        """See `MessageStore.change`."""
        return await self.submit_change(change, member_ids=member_ids)

    def submit_change(
        self, change: MessageChange, *, member_ids: Sequence[int]
    ) -> asyncio.Future[ChangeOutcome]:
        """See `MessageStore.submit_change`: the members get entries as given, deduplicated."""
        self._ensure_open()
        _check_change(change)
        for member in member_ids:
            _check_id("member_ids", member)
        queued = Change(
            change=change,
            member_ids=tuple(dict.fromkeys(member_ids)),
            future=asyncio.get_running_loop().create_future(),
        )
        self._queue.put_nowait(queued)
        return queued.future

    async def _run_writer(self) -> None:
        while True:
            first = await self._queue.get()
            if first is None:
                return
            items = [first]
            while len(items) < MAX_BATCH_SENDS and not self._queue.empty():
                queued = self._queue.get_nowait()
                if queued is None:
                    self._queue.put_nowait(None)  # finish this batch, then stop
                    break
                items.append(queued)
            await self._write_batch(items)

    async def _write_batch(self, items: list[Item]) -> None:
        for attempt in range(_RETRIES + 1):
            try:
                answers = await self._store(items)
            except (asyncpg.UniqueViolationError, asyncpg.DeadlockDetectedError) as race:
                if attempt < _RETRIES:
                    _log.info("message_batch_retried", items=len(items), race=type(race).__name__)
                    continue
                _fail(items, MessageStoreError(f"the batch kept racing another node: {race}"))
                return
            except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError) as error:
                _log.warning("message_batch_failed", items=len(items), error=str(error))
                _fail(items, MessageStoreError(f"the messages could not be stored: {error}"))
                return
            for item, answer in zip(items, answers, strict=True):
                item.settle(answer)
            return

    async def _store(self, items: list[Item]) -> Sequence[Answer]:
        """One attempt at the batch: a few sends alone are one statement, committed as it
        answers (`postgres_sends`); any other batch is a transaction of several
        (`postgres_batch`)."""
        async with self._pool.acquire() as connection:
            sends = [item for item in items if isinstance(item, Send)]
            if len(sends) == len(items) <= ONE_STATEMENT_MOST:
                return await store_sends(connection, sends, pending_pushes=self._pending_pushes)
            async with connection.transaction():
                return await store_batch(connection, items, pending_pushes=self._pending_pushes)

    # -- reads -------------------------------------------------------------------------

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
        _check_id("channel_id", channel_id)
        if limit <= 0:
            return MessagePage(messages=[], has_more=False)
        lower = after if after is not None else -1
        upper = before if before is not None else ID_LIMIT - 1
        # Without `after` the page hugs the upper end, so it is read downwards.
        order = "DESC" if after is None else "ASC"
        rows = await self._fetch(
            f"{SELECT_MESSAGES}{REACTIONS} WHERE m.channel_id = $1"
            " AND m.message_id > $2 AND m.message_id < $3"
            f" ORDER BY m.message_id {order} LIMIT $4",
            channel_id,
            lower,
            upper,
            limit + 1,
        )
        has_more = len(rows) > limit
        messages = [message_from_row(row) for row in rows[:limit]]
        if after is None:
            messages.reverse()
        return MessagePage(messages=messages, has_more=has_more)

    async def inbox(self, user_id: int, *, since: int, limit: int) -> InboxPage:
        """See `MessageStore.inbox`."""
        self._ensure_open()
        _check_id("user_id", user_id)
        _check_id("since", since)
        if limit <= 0:
            return InboxPage(entries=[], has_more=False)
        rows = await self._fetch(
            f"SELECT i.seq, i.update_kind, {MESSAGE_FIELDS} FROM inbox AS i JOIN messages AS m"
            " ON m.channel_id = i.channel_id AND m.message_id = i.message_id"
            f"{REACTIONS} WHERE i.user_id = $1 AND i.seq > $2 ORDER BY i.seq LIMIT $3",
            user_id,
            since,
            limit + 1,
        )
        entries = [
            InboxEntry(
                seq=row["seq"],
                message=message_from_row(row),
                update=update_kind(row["update_kind"]),
            )
            for row in rows[:limit]
        ]
        return InboxPage(entries=entries, has_more=len(rows) > limit)

    async def last_message_id(self, channel_id: int) -> int:
        """See `MessageStore.last_message_id`."""
        _check_id("channel_id", channel_id)
        return await self._counter(
            "SELECT last_message_id FROM channel_counters WHERE channel_id = $1", channel_id
        )

    async def max_seq(self, user_id: int) -> int:
        """See `MessageStore.max_seq`."""
        _check_id("user_id", user_id)
        return await self._counter("SELECT max_seq FROM inbox_counters WHERE user_id = $1", user_id)

    async def messages_stored(self) -> int:
        """See `MessageStore.messages_stored`: the channels' counters added up.

        Messages are never removed (a deletion keeps a placeholder), so the ids
        handed out are the messages held; one row per channel is read, not the
        messages table.
        """
        rows = await self._fetch(
            "SELECT COALESCE(SUM(last_message_id), 0)::BIGINT FROM channel_counters"
        )
        return int(rows[0][0])

    async def last_message_ids(self, channel_ids: Sequence[int]) -> dict[int, int]:
        """See `MessageStore.last_message_ids`: one query."""
        for channel_id in channel_ids:
            _check_id("channel_id", channel_id)
        rows = await self._fetch(
            "SELECT channel_id, last_message_id FROM channel_counters"
            " WHERE channel_id = ANY($1::bigint[])",
            list(dict.fromkeys(channel_ids)),
        )
        found = {row["channel_id"]: int(row["last_message_id"]) for row in rows}
        return {channel_id: found.get(channel_id, 0) for channel_id in channel_ids}

    async def last_messages(
        self, channel_ids: Sequence[int], *, max_chars: int
    ) -> dict[int, MessagePreview]:
        """See `MessageStore.last_messages`: one query, each text's first bytes only.

        The body is UTF-8 in a BYTEA (see the module), so `substring` takes
        its first `head_bytes(max_chars)` bytes (PostgreSQL detoasts just
        that slice) and `cut_utf8` cuts them on a code point, as LevelDB's
        codec does.
        """
        self._ensure_open()
        for channel_id in channel_ids:
            _check_id("channel_id", channel_id)
        head = head_bytes(max_chars)
        rows = await self._fetch(
            "SELECT m.channel_id, m.message_id, m.sender_id, m.created_at,"
            " m.edited_at IS NOT NULL AS edited, m.deleted_by IS NOT NULL AS deleted,"
            " substring(m.body FROM 1 FOR $2) AS head, octet_length(m.body) AS size"
            " FROM unnest($1::bigint[]) AS c(channel_id)"
            " CROSS JOIN LATERAL (SELECT * FROM messages AS last"
            "   WHERE last.channel_id = c.channel_id ORDER BY last.message_id DESC LIMIT 1) AS m",
            list(dict.fromkeys(channel_ids)),
            head,
        )
        return {row["channel_id"]: _preview(row, max_chars) for row in rows}

    async def original(self, sender_id: int, client_msg_id: str) -> AcceptedMessage | None:
        """See `MessageStore.original`."""
        self._ensure_open()
        _check_id("sender_id", sender_id)
        rows = await self._fetch(
            f"SELECT s.seq, {MESSAGE_FIELDS} FROM sends AS s JOIN messages AS m"
            " ON m.channel_id = s.channel_id AND m.message_id = s.message_id"
            f"{REACTIONS} WHERE s.sender_id = $1 AND s.client_msg_id = $2",
            sender_id,
            client_msg_id,
        )
        return duplicate_of(rows[0]) if rows else None

    async def get(self, channel_id: int, message_id: int) -> StoredMessage | None:
        """See `MessageStore.get`."""
        self._ensure_open()
        _check_id("channel_id", channel_id)
        _check_id("message_id", message_id)
        rows = await self._fetch(
            f"{SELECT_MESSAGES}{REACTIONS} WHERE m.channel_id = $1 AND m.message_id = $2",
            channel_id,
            message_id,
        )
        return message_from_row(rows[0]) if rows else None

    # -- lifetime ----------------------------------------------------------------------

    async def scan_messages(
        self, *, after: tuple[int, int] = (0, 0), limit: int
    ) -> list[StoredMessage]:
        """See `MessageStore.scan_messages`."""
        return await postgres_scans.scan_messages(self._fetch, after=after, limit=limit)

    async def scan_inbox(self, *, after: tuple[int, int] = (0, 0), limit: int) -> list[InboxRecord]:
        """See `MessageStore.scan_inbox`."""
        return await postgres_scans.scan_inbox(self._fetch, after=after, limit=limit)

    async def scan_sends(
        self, *, after: tuple[int, str] | None = None, limit: int
    ) -> list[SendRecord]:
        """See `MessageStore.scan_sends`."""
        return await postgres_scans.scan_sends(self._fetch, after=after, limit=limit)

    async def close(self) -> None:
        """See `MessageStore.close`; the pool is the composition root's to close."""
        if self._closed:
            return
        self._closed = True
        self._queue.put_nowait(None)
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer

    def _ensure_open(self) -> None:
        if self._closed:
            raise MessageStoreError("the message store is closed")

    async def _fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        self._ensure_open()
        try:
            rows: list[asyncpg.Record] = await self._pool.fetch(sql, *args)
        except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError) as error:
            raise MessageStoreError(f"the message store could not be read: {error}") from error
        return rows

    async def _counter(self, sql: str, key: int) -> int:
        rows = await self._fetch(sql, key)
        return int(rows[0][0]) if rows else 0


def _preview(row: asyncpg.Record, max_chars: int) -> MessagePreview:
    head = bytes(row["head"])
    text, truncated = cut_utf8(head, whole=len(head) == row["size"], max_chars=max_chars)
    return MessagePreview(
        channel_id=row["channel_id"],
        message_id=row["message_id"],
        sender_id=row["sender_id"],
        created_at=row["created_at"],
        text=text,
        truncated=truncated,
        edited=row["edited"],
        deleted=row["deleted"],
    )


def _check_change(change: MessageChange) -> None:
    """Refuse, before queueing, what would fail the database and so the whole batch."""
    _check_id("channel_id", change.channel_id)
    _check_id("message_id", change.message_id)
    if isinstance(change, Edit):
        change.text.encode("utf-8")
        for mention in change.mentions:
            _check_id("mentions", mention)
        if not -ID_LIMIT <= change.edited_at < ID_LIMIT:
            raise ValueError(f"edited_at must fit a signed 64-bit integer, got {change.edited_at}")
    elif isinstance(change, Deletion):
        _check_id("deleted_by", change.deleted_by)
    else:
        _check_id("user_id", change.user_id)
        change.emoji.encode("utf-8")


def _fail(items: Iterable[Item], error: MessageStoreError) -> None:
    for item in items:
        if not item.future.done():
            item.future.set_exception(error)


def _check_id(name: str, value: int) -> None:
    if not 0 <= value < ID_LIMIT:
        raise ValueError(f"{name} must be between 0 and 2**63 - 1, got {value}")
