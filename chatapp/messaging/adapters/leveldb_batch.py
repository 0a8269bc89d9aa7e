"""Turning queued sends and changes into one write batch: ids from the counters,
repeats answered, edits, deletions and reactions applied to the present state.

A batch is formed on the event loop between two writes, so what it reads
from disk is exactly what earlier batches committed; what earlier changes of
the same batch wrote is read from the batch itself. Nothing here is
committed: the writer moves the counters only once the batch is on disk.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from chatapp.messaging import change_rules
from chatapp.messaging.adapters import codec
from chatapp.messaging.adapters.leveldb_layout import (
    INBOX,
    MESSAGE,
    U64_PAIR,
    check_id,
    counter_at,
    decode_message,
    decoded,
    dedup_key,
    find_original,
    members_with_sender,
    message_key,
    reactions_key,
    with_reactions,
)
from chatapp.messaging.models import (
    AcceptedMessage,
    ChangeOutcome,
    Deletion,
    Edit,
    MessageChange,
    Reaction,
    StoredMessage,
    UpdateKind,
)
from chatapp.messaging.store import MessageIsDeleted, MessageMissing, TooManyReactions


@dataclass(slots=True)
class Draft:
    """A message before the writer gives it an id: the fields `StoredMessage` takes."""

    channel_id: int
    sender_id: int
    text: str
    created_at: int
    client_msg_id: str
    reply_to: int | None
    mentions: list[int]


@dataclass(slots=True)
class PendingSend:
    """One append waiting for the writer."""

    draft: Draft
    member_ids: tuple[int, ...]
    dedup_key: bytes
    value: bytes
    future: asyncio.Future[AcceptedMessage]


@dataclass(slots=True)
class PendingChange:
    """One edit, deletion or reaction waiting for the writer."""

    change: MessageChange
    member_ids: tuple[int, ...]
    future: asyncio.Future[ChangeOutcome]


Pending = PendingSend | PendingChange


@dataclass(slots=True)
class WriteBatch:
    """What one write batch will store, and the counters it moves if it lands."""

    puts: list[tuple[bytes, bytes | None]] = field(default_factory=list)
    """In order; a value of None deletes the key."""
    answers: list[tuple[asyncio.Future[Any], AcceptedMessage | ChangeOutcome]] = field(
        default_factory=list
    )
    refusals: list[tuple[asyncio.Future[ChangeOutcome], Exception]] = field(default_factory=list)
    """Changes the present state does not allow: answered with the error once the batch lands."""
    written: dict[bytes, bytes | None] = field(default_factory=dict)
    """The message and reaction records that changes of this batch wrote, newest value."""
    erased: list[bytes] = field(default_factory=list)
    """Keys of deleted messages' records, whose old values must leave the files."""
    last_message_ids: dict[int, int] = field(default_factory=dict)
    max_seqs: dict[int, int] = field(default_factory=dict)
    last_message: tuple[int, int] | None = None
    """`(channel_id, message_id)` of the batch's last new message, for the watermark."""
    new_messages: int = 0


@dataclass(slots=True)
class Counters:
    """The last `message_id` of each channel and `seq` of each inbox, as on disk.

    A counter not used since opening is read from the last key of its range
    (or the floor a repair left above it) once, then kept.
    """

    last_message_ids: dict[int, int] = field(default_factory=dict)
    max_seqs: dict[int, int] = field(default_factory=dict)
    forgotten: int = 0
    """How many times `forget` ran; a counter read from disk before it may be stale."""

    def advance(self, batch: WriteBatch) -> None:
        """Take the counters of a batch that landed."""
        self.last_message_ids.update(batch.last_message_ids)
        self.max_seqs.update(batch.max_seqs)

    def forget(self) -> None:
        """Read every counter from disk again when next used."""
        self.last_message_ids.clear()
        self.max_seqs.clear()
        self.forgotten += 1

    def learn_last_message_id(self, channel_id: int, read: int, *, read_after: int) -> int:
        """Keep a channel's counter that a reader read from disk; the counter known now.

        `read_after` is `forgotten` as it was when the read began. A counter
        kept here already wins: it is as new as the disk or newer, because
        `form_batch` puts every channel of a batch here before the batch is
        written. A read from before a `forget` is answered but not kept.
        """
        known = self.last_message_ids.get(channel_id)
        if known is not None:
            return known
        if read_after == self.forgotten:
            self.last_message_ids[channel_id] = read
        return read


def prepare_send(
    *,
    sender_id: int,
    channel_id: int,
    client_msg_id: str,
    text: str,
    member_ids: Sequence[int],
    created_at: int,
    reply_to: int | None = None,
    mentions: Sequence[int] = (),
) -> PendingSend:
    """Check and encode one append, with the future its caller will await."""
    # A bad argument belongs to this caller, so it is raised here and never
    # reaches the writer, where it would fail everyone else's sends too.
    draft = _checked_draft(
        channel_id=channel_id,
        sender_id=sender_id,
        text=text,
        created_at=created_at,
        client_msg_id=client_msg_id,
        reply_to=reply_to,
        mentions=mentions,
    )
    return PendingSend(
        draft=draft,
        member_ids=members_with_sender(sender_id, member_ids),
        dedup_key=dedup_key(sender_id, client_msg_id),
        value=codec.encode_message(
            sender_id=sender_id,
            created_at=created_at,
            client_msg_id=client_msg_id,
            text=text,
            reply_to=reply_to,
            mentions=draft.mentions,
        ),
        future=asyncio.get_running_loop().create_future(),
    )


def _checked_draft(
    *,
    channel_id: int,
    sender_id: int,
    text: str,
    created_at: int,
    client_msg_id: str,
    reply_to: int | None,
    mentions: Sequence[int],
) -> Draft:
    """The fields, refused where `StoredMessage`'s strict model would refuse them ("7" or
    True for an id): a few type checks instead of a model (2.2 µs) that the writer
    builds again once the message has its id."""
    for name, value in (("channel_id", channel_id), ("sender_id", sender_id)):
        _require(name, value, int)
    check_id("channel_id", channel_id)
    _require("created_at", created_at, int)
    if reply_to is not None:
        _require("reply_to", reply_to, int)
    _require("text", text, str)
    _require("client_msg_id", client_msg_id, str)
    mentioned = list(mentions)
    for user_id in mentioned:
        _require("mentions", user_id, int)
    return Draft(channel_id, sender_id, text, created_at, client_msg_id, reply_to, mentioned)


def _require(name: str, value: object, kind: type) -> None:
    if type(value) is not kind:
        raise ValueError(f"{name} must be {kind.__name__}, got {type(value).__name__}")


def prepare_change(change: MessageChange, member_ids: Sequence[int]) -> PendingChange:
    """Check one change's ids, with the future its caller will await."""
    check_id("channel_id", change.channel_id)
    check_id("message_id", change.message_id)
    for user_id in member_ids:
        check_id("member_ids", user_id)
    return PendingChange(
        change=change,
        member_ids=tuple(dict.fromkeys(member_ids)),
        future=asyncio.get_running_loop().create_future(),
    )


def form_batch(db: Any, pending: Iterable[Pending], committed: Counters) -> WriteBatch:
    """Assign ids to a batch on tentative counters, answer repeats with their original,
    and apply changes in their turn."""
    batch = WriteBatch()
    accepted_here: dict[bytes, AcceptedMessage] = {}
    for send in pending:
        if isinstance(send, PendingChange):
            _apply(db, send, batch, committed)
            continue
        original = accepted_here.get(send.dedup_key)
        if original is None:
            original = find_original(db, send.draft.sender_id, send.draft.client_msg_id)
        if original is not None:
            batch.answers.append((send.future, _as_duplicate(original)))
            continue
        accepted = _assign(db, send, batch, committed)
        accepted_here[send.dedup_key] = accepted
        batch.answers.append((send.future, accepted))
    return batch


def _assign(db: Any, send: PendingSend, batch: WriteBatch, committed: Counters) -> AcceptedMessage:
    channel_id = send.draft.channel_id
    message_id = _next_id(
        db, MESSAGE, channel_id, batch.last_message_ids, committed.last_message_ids
    )
    batch.puts.append((MESSAGE + U64_PAIR.pack(channel_id, message_id), send.value))
    batch.last_message = (channel_id, message_id)
    batch.new_messages += 1

    pointer = codec.encode_pointer(channel_id, message_id)
    inbox_seqs = _next_seqs(db, send.member_ids, batch.max_seqs, committed.max_seqs)
    batch.puts.extend([(INBOX + U64_PAIR.pack(u, s), pointer) for u, s in inbox_seqs.items()])

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
        reply_to=draft.reply_to,
        mentions=draft.mentions,
    )
    return AcceptedMessage(message=message, seq=seq, inbox_seqs=inbox_seqs, duplicate=False)


def _next_id(
    db: Any, table: bytes, owner_id: int, tentative: dict[int, int], committed: dict[int, int]
) -> int:
    """Count one more message of a channel on the tentative counters."""
    last = tentative.get(owner_id)
    if last is None:
        last = committed.get(owner_id)
    if last is None:
        last = committed[owner_id] = counter_at(db, table, owner_id)
    tentative[owner_id] = last + 1
    return last + 1


def _next_seqs(
    db: Any, user_ids: Sequence[int], tentative: dict[int, int], committed: dict[int, int]
) -> dict[int, int]:
    """The next seq of each member's inbox, on the tentative counters, in one loop (a
    group message has a hundred members). The ids are unique, as their callers make them."""
    seqs: dict[int, int] = {}
    for user_id in user_ids:
        last = tentative.get(user_id)
        if last is None:
            last = committed.get(user_id)
            if last is None:
                last = committed[user_id] = counter_at(db, INBOX, user_id)
        seqs[user_id] = tentative[user_id] = last + 1
    return seqs


def _as_duplicate(original: AcceptedMessage) -> AcceptedMessage:
    # Only the sender's seq is kept on disk, so a duplicate from this batch
    # answers with the same shape as one found on disk.
    return AcceptedMessage(
        message=original.message,
        seq=original.seq,
        inbox_seqs={original.message.sender_id: original.seq},
        duplicate=True,
    )


def _apply(db: Any, pending: PendingChange, batch: WriteBatch, committed: Counters) -> None:
    """Apply one change to the message as this batch leaves it, with its update entries."""
    change = pending.change
    key = message_key(change.channel_id, change.message_id)
    value = _present(db, batch, key)
    if value is None:
        batch.refusals.append((pending.future, MessageMissing(_named(change))))
        return
    message = decode_message(value, channel_id=change.channel_id, message_id=change.message_id)
    reactions_at = reactions_key(change.channel_id, change.message_id)
    stored_reactions = _present(db, batch, reactions_at)
    reactions = (
        [] if stored_reactions is None else decoded(codec.decode_reactions, stored_reactions)
    )
    try:
        kind, after, after_reactions = _changed(change, message, reactions)
    except (MessageIsDeleted, TooManyReactions) as refusal:
        batch.refusals.append((pending.future, refusal))
        return
    changed = after is not message or after_reactions is not reactions
    inbox_seqs: dict[int, int] = {}
    if changed:
        if kind == "deleted":
            batch.erased += [key, reactions_at]
        if after is not message:
            batch.puts.append((key, _record(batch, key, codec.encode_stored(after))))
        if after_reactions is not reactions:
            encoded = codec.encode_reactions(after_reactions) if after_reactions else None
            batch.puts.append((reactions_at, _record(batch, reactions_at, encoded)))
        pointer = codec.encode_pointer(change.channel_id, change.message_id, kind)
        inbox_seqs = _next_seqs(db, pending.member_ids, batch.max_seqs, committed.max_seqs)
        batch.puts.extend([(INBOX + U64_PAIR.pack(u, s), pointer) for u, s in inbox_seqs.items()])
    outcome = ChangeOutcome(
        message=with_reactions(after, after_reactions), update=kind, inbox_seqs=inbox_seqs
    )
    batch.answers.append((pending.future, outcome))


def _changed(
    change: MessageChange, message: StoredMessage, reactions: list[Reaction]
) -> tuple[UpdateKind, StoredMessage, list[Reaction]]:
    """What `change` makes of the message and its reactions; the same objects when nothing."""
    if isinstance(change, Deletion):
        gone = change_rules.deleted(message, change)
        # The reactions are a record of their own: a deletion removes it.
        return "deleted", gone, [] if gone is not message and reactions else reactions
    if isinstance(change, Edit):
        return "edited", change_rules.edited(message, change), reactions
    return "reactions", message, change_rules.reacted(message, reactions, change)


def _present(db: Any, batch: WriteBatch, key: bytes) -> bytes | None:
    """A record as this batch leaves it so far: its own writes first, then the disk."""
    if key in batch.written:
        return batch.written[key]
    value: bytes | None = db.get(key, verify_checksums=True)
    return value


def _record(batch: WriteBatch, key: bytes, value: bytes | None) -> bytes | None:
    batch.written[key] = value
    return value


def _named(change: MessageChange) -> str:
    return f"channel {change.channel_id} has no message {change.message_id}"
