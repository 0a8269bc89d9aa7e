"""One group-commit batch of sends and changes, stored in one PostgreSQL transaction.

Locks are taken in one order by every batch, so two nodes' batches never wait
on each other in a cycle: channel counters, then the rows of the messages
changed, then inbox counters, each in ascending key order. Ids and seqs come
from the counter rows, held until commit, so they stay contiguous across
nodes. Within the batch, items take their ids and seqs in the order they
were queued, sends and changes alike.

With `pending_pushes`, every new message also gets its `push_pending` row
(`migrations/postgresql/015_*`) in the same transaction, so that no message
is acknowledged without its push work recorded.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncpg

from chatapp.messaging.adapters.postgres_changes import (
    Key,
    Target,
    Targets,
    lock_targets,
    write_targets,
)
from chatapp.messaging.adapters.postgres_rows import (
    MESSAGE_FIELDS,
    REACTIONS,
    message_from_row,
    update_code,
)
from chatapp.messaging.change_rules import kind_of
from chatapp.messaging.models import (
    AcceptedMessage,
    ChangeOutcome,
    MessageChange,
    StoredMessage,
    UpdateKind,
)
from chatapp.messaging.store import ChangeRefused, MessageStoreError


@dataclass(slots=True)
class Send:
    """A queued send: its message without an id yet, and who gets it."""

    draft: StoredMessage
    member_ids: tuple[int, ...]
    future: asyncio.Future[AcceptedMessage]

    def settle(self, answer: Answer) -> None:
        """Complete the future with the batch's answer, unless the caller gave up."""
        if self.future.done():
            return
        if isinstance(answer, MessageStoreError):
            self.future.set_exception(answer)
        else:
            assert isinstance(answer, AcceptedMessage)
            self.future.set_result(answer)


@dataclass(slots=True)
class Change:
    """A queued change, and who gets its update entry."""

    change: MessageChange
    member_ids: tuple[int, ...]
    future: asyncio.Future[ChangeOutcome]

    def settle(self, answer: Answer) -> None:
        """Complete the future with the batch's answer: a refusal is this caller's alone."""
        assert not isinstance(answer, AcceptedMessage)
        if self.future.done():
            return
        if isinstance(answer, ChangeRefused | MessageStoreError):
            self.future.set_exception(answer)
        else:
            self.future.set_result(answer)


Item = Send | Change
Answer = AcceptedMessage | ChangeOutcome | ChangeRefused | MessageStoreError
"""What one item's future gets: a refused change is answered, the batch still commits; a
repeated send whose original message is missing (`postgres_sends`) fails alone."""


@dataclass(slots=True)
class _Entries:
    """The inbox entries one item appends: one per member, all pointing at one message."""

    key: Key
    member_ids: tuple[int, ...]
    kind: UpdateKind | None
    seqs: dict[int, int] = field(default_factory=dict)


@dataclass(slots=True)
class _Pending:
    """One item's answer as far as the walk knows it; seqs are given out afterwards."""

    item: Item
    message: StoredMessage | None = None
    entries: _Entries | None = None
    answer: Answer | None = None
    """Known already: the original of a repeated send, or a refusal."""
    first: _Pending | None = None
    """For the same send twice in one batch: the first, which this one repeats."""


@dataclass(slots=True)
class _Plan:
    """What the batch writes and answers, worked out before anything is written."""

    pending: list[_Pending] = field(default_factory=list)
    fresh: list[_Pending] = field(default_factory=list)
    """The sends this batch stores, their messages and entries set."""
    entries: list[_Entries] = field(default_factory=list)


async def store_batch(
    connection: asyncpg.Connection, items: Sequence[Item], *, pending_pushes: bool = False
) -> list[Answer]:
    """Store the batch in the open transaction; one answer per item, in order."""
    sends = [item for item in items if isinstance(item, Send)]
    originals = await originals_of(connection, sends)
    fresh = _fresh(sends, originals)
    next_message_id = await advance(
        connection,
        "channel_counters",
        "channel_id",
        "last_message_id",
        Counter(send.draft.channel_id for send in fresh),
    )
    changes = [item.change for item in items if isinstance(item, Change)]
    targets = await lock_targets(connection, ((c.channel_id, c.message_id) for c in changes))
    plan = _plan(items, originals, {id(send) for send in fresh}, next_message_id, targets)
    await _write_messages(connection, plan, targets, pending_pushes=pending_pushes)
    # The inbox counters are the rows every node's batches share (both ends of a
    # conversation): taken as late as they can be, and held for three statements.
    next_seq = await advance(
        connection,
        "inbox_counters",
        "user_id",
        "max_seq",
        Counter(member for entries in plan.entries for member in entries.member_ids),
    )
    for entries in plan.entries:
        for member in entries.member_ids:
            entries.seqs[member] = next_seq[member]
            next_seq[member] += 1
    await _write_entries(connection, plan)
    return [_answer(pending) for pending in plan.pending]


def _fresh(sends: list[Send], originals: dict[tuple[int, str], AcceptedMessage]) -> list[Send]:
    """The sends this batch stores: not stored before, and each the first of its key."""
    seen: set[tuple[int, str]] = set()
    fresh: list[Send] = []
    for send in sends:
        key = (send.draft.sender_id, send.draft.client_msg_id)
        if key not in originals and key not in seen:
            seen.add(key)
            fresh.append(send)
    return fresh


def _plan(
    items: Sequence[Item],
    originals: dict[tuple[int, str], AcceptedMessage],
    fresh: set[int],
    next_message_id: dict[int, int],
    targets: Targets,
) -> _Plan:
    """Walk the items in order: ids for new messages, changes applied, entries to append."""
    plan = _Plan()
    first_of: dict[tuple[int, str], _Pending] = {}
    for item in items:
        pending = _Pending(item)
        plan.pending.append(pending)
        if isinstance(item, Change):
            _plan_change(plan, pending, item, targets)
            continue
        key = (item.draft.sender_id, item.draft.client_msg_id)
        if key in originals:
            pending.answer = originals[key]
        elif id(item) not in fresh:
            pending.first = first_of[key]
        else:
            first_of[key] = pending
            message_id = next_message_id[item.draft.channel_id]
            next_message_id[item.draft.channel_id] += 1
            pending.message = item.draft.model_copy(update={"message_id": message_id})
            # A change later in this batch may name the message: it finds it here.
            targets.found[(item.draft.channel_id, message_id)] = Target.fresh(pending.message)
            pending.entries = _Entries((item.draft.channel_id, message_id), item.member_ids, None)
            plan.entries.append(pending.entries)
            plan.fresh.append(pending)
    return plan


def _plan_change(plan: _Plan, pending: _Pending, item: Change, targets: Targets) -> None:
    change = item.change
    try:
        changed = targets.apply(change)
    except ChangeRefused as refusal:
        pending.answer = refusal
        return
    key = (change.channel_id, change.message_id)
    pending.message = targets.found[key].message
    if changed:
        pending.entries = _Entries(key, item.member_ids, kind_of(change))
        plan.entries.append(pending.entries)


def _answer(pending: _Pending) -> Answer:
    if pending.answer is not None:
        return pending.answer
    if pending.first is not None:
        first = _answer(pending.first)
        assert isinstance(first, AcceptedMessage)
        return as_duplicate(first)
    assert pending.message is not None
    seqs = pending.entries.seqs if pending.entries is not None else {}
    if isinstance(pending.item, Change):
        return ChangeOutcome(
            message=pending.message, update=kind_of(pending.item.change), inbox_seqs=seqs
        )
    seq = seqs[pending.message.sender_id]
    return AcceptedMessage(message=pending.message, seq=seq, inbox_seqs=seqs, duplicate=False)


def as_duplicate(accepted: AcceptedMessage) -> AcceptedMessage:
    """The answer to a repeat of an accepted send: only the sender's seq goes with it."""
    return AcceptedMessage(
        message=accepted.message,
        seq=accepted.seq,
        inbox_seqs={accepted.message.sender_id: accepted.seq},
        duplicate=True,
    )


# Each row's fields go as parallel arrays, and the tables written together go
# in one statement: every round trip counts while the counters are locked, and
# a node's CPU per message is mostly its round trips (COPY would take two).
_MESSAGE_ROWS = (
    " FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bytea[], $5::bigint[],"
    " $6::text[], $7::bigint[], $8::text[]) AS u(c, m, s, b, t, k, r, n)"
)
_INSERT_MESSAGES = (
    "INSERT INTO messages (channel_id, message_id, sender_id, body, created_at,"
    " client_msg_id, reply_to, mentions)"
    f" SELECT c, m, s, b, t, k, r, n::bigint[]{_MESSAGE_ROWS}"
)
# The pending rows are taken from the same arrays as the messages.
_INSERT_MESSAGES_AND_PENDING = (
    f"WITH stored AS ({_INSERT_MESSAGES})"
    f" INSERT INTO push_pending (channel_id, message_id, created_at) SELECT c, m, t{_MESSAGE_ROWS}"
)
_INSERT_INBOX = (
    "INSERT INTO inbox (user_id, seq, channel_id, message_id, update_kind)"
    " SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[],"
    " $5::smallint[])"
)
_INSERT_INBOX_AND_SENDS = (
    f"WITH entries AS ({_INSERT_INBOX})"
    " INSERT INTO sends (sender_id, client_msg_id, channel_id, message_id, seq)"
    " SELECT * FROM unnest($6::bigint[], $7::text[], $8::bigint[], $9::bigint[], $10::bigint[])"
)


async def _write_messages(
    connection: asyncpg.Connection, plan: _Plan, targets: Targets, *, pending_pushes: bool
) -> None:
    """New messages and their pending pushes, then the changes (which may name them): all
    of it before the inbox counters are taken."""
    if plan.fresh:
        messages = [_message_record(pending) for pending in plan.fresh]
        statement = _INSERT_MESSAGES_AND_PENDING if pending_pushes else _INSERT_MESSAGES
        await connection.execute(statement, *_columns(messages))
    await write_targets(connection, targets.found.values())


async def _write_entries(connection: asyncpg.Connection, plan: _Plan) -> None:
    """Inbox entries, and the send records with them.

    The send records go after every counter lock is held: a unique violation
    there means another node stored the same client_msg_id first, and the
    batch is retried."""
    if not plan.entries:
        return
    rows = [
        (member, seq, *entries.key, update_code(entries.kind))
        for entries in plan.entries
        for member, seq in entries.seqs.items()
    ]
    if not plan.fresh:
        await connection.execute(_INSERT_INBOX, *_columns(rows))
        return
    sends = [_send_record(pending) for pending in plan.fresh]
    await connection.execute(_INSERT_INBOX_AND_SENDS, *_columns(rows), *_columns(sends))


def _columns(rows: Sequence[Sequence[object]]) -> list[list[object]]:
    """Rows (at least one) as the parallel arrays `unnest` takes."""
    return [list(column) for column in zip(*rows, strict=True)]


def _message_record(pending: _Pending) -> tuple[object, ...]:
    message = pending.message
    assert message is not None
    return (
        message.channel_id,
        message.message_id,
        message.sender_id,
        message.text.encode("utf-8"),
        message.created_at,
        message.client_msg_id,
        message.reply_to,
        # A text literal per row: unnest would flatten an array of arrays.
        "{" + ",".join(map(str, message.mentions)) + "}",
    )


def _send_record(pending: _Pending) -> tuple[int, str, int, int, int]:
    message, entries = pending.message, pending.entries
    assert message is not None
    assert entries is not None
    return (
        message.sender_id,
        message.client_msg_id,
        message.channel_id,
        message.message_id,
        entries.seqs[message.sender_id],
    )


async def originals_of(
    connection: asyncpg.Connection, sends: list[Send]
) -> dict[tuple[int, str], AcceptedMessage]:
    """The sends of this batch that were stored before, as duplicates (as they are now)."""
    if not sends:
        return {}
    rows = await connection.fetch(
        f"SELECT s.seq, {MESSAGE_FIELDS} FROM sends AS s"
        " JOIN unnest($1::bigint[], $2::text[]) AS k(sender_id, client_msg_id)"
        " ON s.sender_id = k.sender_id AND s.client_msg_id = k.client_msg_id"
        " JOIN messages AS m ON m.channel_id = s.channel_id AND m.message_id = s.message_id"
        f"{REACTIONS}",
        [send.draft.sender_id for send in sends],
        [send.draft.client_msg_id for send in sends],
    )
    found = (duplicate_of(row) for row in rows)
    return {(dup.message.sender_id, dup.message.client_msg_id): dup for dup in found}


def duplicate_of(row: asyncpg.Record) -> AcceptedMessage:
    """A send record's row (`seq` and the message's columns) as the answer to a repeat."""
    message = message_from_row(row)
    return AcceptedMessage(
        message=message, seq=row["seq"], inbox_seqs={message.sender_id: row["seq"]}, duplicate=True
    )


async def advance(
    connection: asyncpg.Connection, table: str, key: str, column: str, counts: Counter[int]
) -> dict[int, int]:
    """Move each counter up by its count, in ascending key order; the first new id of each."""
    if not counts:
        return {}
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
