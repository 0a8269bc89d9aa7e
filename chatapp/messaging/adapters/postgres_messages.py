"""The message store on PostgreSQL, for cluster mode: many nodes, one truth.

Each node has one writer that takes every send queued while its previous
transaction was committing and stores them in one transaction (group
commit): nobody is answered before that commit. Ids stay contiguous across
nodes because they come from counter rows updated inside the transaction:
a channel's `last_message_id` and a user's `max_seq` rows are locked until
commit, so two nodes' batches touching one channel or one inbox take turns,
and commit in id order. Every transaction locks channels first and users
second, each in ascending order, so two batches never wait on each other in
a cycle.

Text is stored as UTF-8 bytes: PostgreSQL's TEXT cannot hold U+0000, which a
message may contain.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import asyncpg
import structlog

from chatapp.messaging.adapters import postgres_scans
from chatapp.messaging.models import (
    AcceptedMessage,
    InboxEntry,
    InboxPage,
    InboxRecord,
    MessagePage,
    MessagePreview,
    SendRecord,
    StoredMessage,
)
from chatapp.messaging.preview import cut_utf8, head_bytes
from chatapp.messaging.store import MessageStoreError

MAX_BATCH_SENDS: Final = 512
# BIGINT is signed: ids above this cannot be stored (the protocol's ids stay below 2**53).
ID_LIMIT: Final = 2**63
# How often a batch is tried again when another node stored the same
# client_msg_id at the same moment, or PostgreSQL broke a lock wait.
_RETRIES: Final = 3

_log = structlog.get_logger(__name__)

_MESSAGE_COLUMNS = "m.channel_id, m.message_id, m.sender_id, m.body, m.created_at, m.client_msg_id"


@dataclass(slots=True)
class _Send:
    draft: StoredMessage
    member_ids: tuple[int, ...]
    future: asyncio.Future[AcceptedMessage]


class PostgresMessageStore:
    """`MessageStore` on a PostgreSQL pool (tables from `migrations/postgresql/002_*`)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._queue: asyncio.Queue[_Send | None] = asyncio.Queue()
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
        for name, value in (
            ("channel_id", channel_id),
            ("sender_id", sender_id),
            *(("member_ids", member) for member in member_ids),
        ):
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
        )
        send = _Send(
            draft=draft,
            member_ids=tuple(dict.fromkeys((*member_ids, sender_id))),
            future=asyncio.get_running_loop().create_future(),
        )
        self._queue.put_nowait(send)
        return send.future

    async def _run_writer(self) -> None:
        while True:
            first = await self._queue.get()
            if first is None:
                return
            sends = [first]
            while len(sends) < MAX_BATCH_SENDS and not self._queue.empty():
                queued = self._queue.get_nowait()
                if queued is None:
                    self._queue.put_nowait(None)  # finish this batch, then stop
                    break
                sends.append(queued)
            await self._write_batch(sends)

    async def _write_batch(self, sends: list[_Send]) -> None:
        for attempt in range(_RETRIES + 1):
            try:
                answers = await self._transaction(sends)
            except (asyncpg.UniqueViolationError, asyncpg.DeadlockDetectedError) as race:
                if attempt < _RETRIES:
                    continue
                _fail(sends, MessageStoreError(f"the batch kept racing another node: {race}"))
                return
            except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError) as error:
                _log.warning("message_batch_failed", sends=len(sends), error=str(error))
                _fail(sends, MessageStoreError(f"the messages could not be stored: {error}"))
                return
            for send, answer in zip(sends, answers, strict=True):
                if not send.future.done():
                    send.future.set_result(answer)
            return

    async def _transaction(self, sends: list[_Send]) -> list[AcceptedMessage]:
        """Store the batch in one transaction; one answer per send, in order."""
        async with self._pool.acquire() as connection, connection.transaction():
            originals = await _originals(connection, sends)
            fresh: list[_Send] = []
            first_of: dict[tuple[int, str], int] = {}
            for index, send in enumerate(sends):
                key = (send.draft.sender_id, send.draft.client_msg_id)
                if key not in originals and key not in first_of:
                    first_of[key] = index
                    fresh.append(send)
            stored = await _store_fresh(connection, fresh)
        answers: list[AcceptedMessage] = []
        for index, send in enumerate(sends):
            key = (send.draft.sender_id, send.draft.client_msg_id)
            if key in originals:
                answers.append(originals[key])
            elif first_of[key] == index:
                answers.append(stored[id(send)])
            else:  # the same send twice in one batch: the second is a repeat
                first = stored[id(sends[first_of[key]])]
                answers.append(_as_duplicate(first, send.draft.sender_id))
        return answers

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
            f"SELECT {_MESSAGE_COLUMNS} FROM messages AS m WHERE m.channel_id = $1"
            " AND m.message_id > $2 AND m.message_id < $3"
            f" ORDER BY m.message_id {order} LIMIT $4",
            channel_id,
            lower,
            upper,
            limit + 1,
        )
        has_more = len(rows) > limit
        messages = [_message(row) for row in rows[:limit]]
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
            f"SELECT i.seq, {_MESSAGE_COLUMNS} FROM inbox AS i JOIN messages AS m"
            " ON m.channel_id = i.channel_id AND m.message_id = i.message_id"
            " WHERE i.user_id = $1 AND i.seq > $2 ORDER BY i.seq LIMIT $3",
            user_id,
            since,
            limit + 1,
        )
        entries = [InboxEntry(seq=row["seq"], message=_message(row)) for row in rows[:limit]]
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
            f"SELECT s.seq, {_MESSAGE_COLUMNS} FROM sends AS s JOIN messages AS m"
            " ON m.channel_id = s.channel_id AND m.message_id = s.message_id"
            " WHERE s.sender_id = $1 AND s.client_msg_id = $2",
            sender_id,
            client_msg_id,
        )
        return _duplicate_of(rows[0]) if rows else None

    async def get(self, channel_id: int, message_id: int) -> StoredMessage | None:
        """See `MessageStore.get`."""
        self._ensure_open()
        _check_id("channel_id", channel_id)
        _check_id("message_id", message_id)
        rows = await self._fetch(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages AS m"
            " WHERE m.channel_id = $1 AND m.message_id = $2",
            channel_id,
            message_id,
        )
        return _message(rows[0]) if rows else None

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


async def _originals(
    connection: asyncpg.Connection, sends: list[_Send]
) -> dict[tuple[int, str], AcceptedMessage]:
    """The sends of this batch that were stored before, as duplicates."""
    rows = await connection.fetch(
        f"SELECT s.seq, {_MESSAGE_COLUMNS} FROM sends AS s"
        " JOIN unnest($1::bigint[], $2::text[]) AS k(sender_id, client_msg_id)"
        " ON s.sender_id = k.sender_id AND s.client_msg_id = k.client_msg_id"
        " JOIN messages AS m ON m.channel_id = s.channel_id AND m.message_id = s.message_id",
        [send.draft.sender_id for send in sends],
        [send.draft.client_msg_id for send in sends],
    )
    found = (_duplicate_of(row) for row in rows)
    return {(dup.message.sender_id, dup.message.client_msg_id): dup for dup in found}


async def _store_fresh(
    connection: asyncpg.Connection, sends: list[_Send]
) -> dict[int, AcceptedMessage]:
    """Assign ids from the counters and insert messages, inbox entries and send records."""
    if not sends:
        return {}
    next_message_id = await _advance(
        connection,
        "channel_counters",
        "channel_id",
        "last_message_id",
        Counter(send.draft.channel_id for send in sends),
    )
    next_seq = await _advance(
        connection,
        "inbox_counters",
        "user_id",
        "max_seq",
        Counter(member for send in sends for member in send.member_ids),
    )
    stored: dict[int, AcceptedMessage] = {}
    messages: list[tuple[int, int, int, bytes, int, str]] = []
    inbox: list[tuple[int, int, int, int]] = []
    records: list[tuple[int, str, int, int, int]] = []
    for send in sends:
        draft = send.draft
        message_id = next_message_id[draft.channel_id]
        next_message_id[draft.channel_id] += 1
        seqs: dict[int, int] = {}
        for member in send.member_ids:
            seqs[member] = next_seq[member]
            next_seq[member] += 1
            inbox.append((member, seqs[member], draft.channel_id, message_id))
        message = draft.model_copy(update={"message_id": message_id})
        messages.append(
            (
                draft.channel_id,
                message_id,
                draft.sender_id,
                draft.text.encode("utf-8"),
                draft.created_at,
                draft.client_msg_id,
            )
        )
        records.append(
            (
                draft.sender_id,
                draft.client_msg_id,
                draft.channel_id,
                message_id,
                seqs[draft.sender_id],
            )
        )
        stored[id(send)] = AcceptedMessage(
            message=message, seq=seqs[draft.sender_id], inbox_seqs=seqs, duplicate=False
        )
    await connection.copy_records_to_table(
        "messages",
        records=messages,
        columns=("channel_id", "message_id", "sender_id", "body", "created_at", "client_msg_id"),
    )
    await connection.copy_records_to_table(
        "inbox", records=inbox, columns=("user_id", "seq", "channel_id", "message_id")
    )
    # Last, after every counter lock is held: a unique violation here means
    # another node stored the same client_msg_id first; the batch is retried.
    await connection.executemany(
        "INSERT INTO sends (sender_id, client_msg_id, channel_id, message_id, seq)"
        " VALUES ($1, $2, $3, $4, $5)",
        records,
    )
    return stored


async def _advance(
    connection: asyncpg.Connection, table: str, key: str, column: str, counts: Counter[int]
) -> dict[int, int]:
    """Move each counter up by its count, in ascending key order; the first new id of each."""
    keys = sorted(counts)
    rows = await connection.fetch(
        f"INSERT INTO {table} ({key}, {column})"
        " SELECT k, n FROM unnest($1::bigint[], $2::bigint[]) AS t(k, n) ORDER BY k"
        f" ON CONFLICT ({key}) DO UPDATE SET {column} = {table}.{column} + EXCLUDED.{column}"
        f" RETURNING {key}, {column}",
        keys,
        [counts[k] for k in keys],
    )
    return {row[0]: row[1] - counts[row[0]] + 1 for row in rows}


def _message(row: asyncpg.Record) -> StoredMessage:
    return StoredMessage(
        channel_id=row["channel_id"],
        message_id=row["message_id"],
        sender_id=row["sender_id"],
        text=bytes(row["body"]).decode("utf-8"),
        created_at=row["created_at"],
        client_msg_id=row["client_msg_id"],
    )


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
    )


def _duplicate_of(row: asyncpg.Record) -> AcceptedMessage:
    message = _message(row)
    return AcceptedMessage(
        message=message,
        seq=row["seq"],
        inbox_seqs={message.sender_id: row["seq"]},
        duplicate=True,
    )


def _as_duplicate(accepted: AcceptedMessage, sender_id: int) -> AcceptedMessage:
    return AcceptedMessage(
        message=accepted.message,
        seq=accepted.seq,
        inbox_seqs={sender_id: accepted.seq},
        duplicate=True,
    )


def _fail(sends: Iterable[_Send], error: MessageStoreError) -> None:
    for send in sends:
        if not send.future.done():
            send.future.set_exception(error)


def _check_id(name: str, value: int) -> None:
    if not 0 <= value < ID_LIMIT:
        raise ValueError(f"{name} must be between 0 and 2**63 - 1, got {value}")
