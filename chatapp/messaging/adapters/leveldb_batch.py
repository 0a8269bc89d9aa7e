"""Turning queued sends into one write batch: ids from the counters, repeats answered.

A batch is formed on the event loop between two writes, so what it reads
from disk is exactly what earlier batches committed. Nothing here is
committed: the writer moves the counters only once the batch is on disk.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from chatapp.messaging.adapters import codec
from chatapp.messaging.adapters.leveldb_layout import (
    INBOX,
    MESSAGE,
    U64,
    check_id,
    counter_at,
    dedup_key,
    find_original,
    members_with_sender,
)
from chatapp.messaging.models import AcceptedMessage, StoredMessage


@dataclass(slots=True)
class PendingSend:
    """One append waiting for the writer."""

    draft: StoredMessage
    """The message with `message_id` 0, until the writer assigns one."""
    member_ids: tuple[int, ...]
    dedup_key: bytes
    value: bytes
    future: asyncio.Future[AcceptedMessage]


@dataclass(slots=True)
class WriteBatch:
    """What one write batch will store, and the counters it moves if it lands."""

    puts: list[tuple[bytes, bytes]] = field(default_factory=list)
    answers: list[tuple[asyncio.Future[AcceptedMessage], AcceptedMessage]] = field(
        default_factory=list
    )
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
) -> PendingSend:
    """Check and encode one append, with the future its caller will await."""
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
    return PendingSend(
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


def form_batch(db: Any, sends: Iterable[PendingSend], committed: Counters) -> WriteBatch:
    """Assign ids to a batch on tentative counters, and answer repeats with their original."""
    batch = WriteBatch()
    accepted_here: dict[bytes, AcceptedMessage] = {}
    for send in sends:
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
    batch.puts.append((MESSAGE + U64.pack(channel_id) + U64.pack(message_id), send.value))
    batch.last_message = (channel_id, message_id)
    batch.new_messages += 1

    pointer = codec.encode_pointer(channel_id, message_id)
    inbox_seqs: dict[int, int] = {}
    for user_id in send.member_ids:
        seq = _next_id(db, INBOX, user_id, batch.max_seqs, committed.max_seqs)
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


def _next_id(
    db: Any, table: bytes, owner_id: int, tentative: dict[int, int], committed: dict[int, int]
) -> int:
    """Count one more message of a channel, or entry of an inbox, on the tentative counters."""
    last = tentative.get(owner_id)
    if last is None:
        last = committed.get(owner_id)
    if last is None:
        last = committed[owner_id] = counter_at(db, table, owner_id)
    tentative[owner_id] = last + 1
    return last + 1


def _as_duplicate(original: AcceptedMessage) -> AcceptedMessage:
    # Only the sender's seq is kept on disk, so a duplicate from this batch
    # answers with the same shape as one found on disk.
    return AcceptedMessage(
        message=original.message,
        seq=original.seq,
        inbox_seqs={original.message.sender_id: original.seq},
        duplicate=True,
    )
