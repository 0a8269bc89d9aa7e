"""The full check of a stopped message store: every record read, every link followed.

For `chatapp check` and `chatapp repair`, never for a running server: it
reads every block (checksums verified) and makes a point read or two per
record: 85 s for a million messages on the busy 2-core dev box. What it
finds is kept both as lines for the operator and as the keys a repair acts
on.

Every message must decode and have an idempotency record that names it,
whose seq is the sender's inbox entry pointing back at it; every inbox entry
must point at a message; every idempotency record must name a message of its
sender with its client_msg_id; every reactions record must decode and belong
to a message that is there and not deleted; the watermark's message must be
there.
"""

from __future__ import annotations

import pathlib
from dataclasses import dataclass, field
from typing import Any, Final

import plyvel

from chatapp.messaging.adapters import codec
from chatapp.messaging.adapters.leveldb_layout import (
    DEDUP,
    FLOOR,
    INBOX,
    MESSAGE,
    PREFIX_LEN,
    REACTIONS,
    RETENTION,
    U64,
    DamagedStore,
    decode_message,
    decoded,
    error_text,
    id_at_end,
    read_message,
)
from chatapp.messaging.adapters.leveldb_watermark import UNKNOWN, Watermark, read_watermark

EXAMPLES: Final = 3
KNOWN_TABLES: Final = (MESSAGE, REACTIONS, INBOX, DEDUP, FLOOR, RETENTION)


@dataclass(frozen=True, slots=True)
class Unreceipted:
    """A message whose idempotency record is missing or wrong: a repair writes it anew."""

    channel_id: int
    message_id: int
    sender_id: int
    client_msg_id: str


@dataclass(slots=True)
class Audit:
    """Everything a full check found."""

    messages: int = 0
    inbox_entries: int = 0
    receipts: int = 0
    channel_ids: set[int] = field(default_factory=set)
    user_ids: set[int] = field(default_factory=set)
    """Users with an inbox entry, a message or an idempotency record."""
    unreadable: list[bytes] = field(default_factory=list)
    """Keys whose value does not decode, or that belong to no table."""
    dangling: list[bytes] = field(default_factory=list)
    """Inbox entries pointing at a message that is not there."""
    orphans: list[bytes] = field(default_factory=list)
    """Idempotency records naming a message that is not there or not theirs."""
    unreceipted: list[Unreceipted] = field(default_factory=list)
    stray_reactions: list[bytes] = field(default_factory=list)
    """Reactions of a message that is not there, or is deleted."""
    corrupt: str | None = None
    """Why the scan stopped early: a block failed its checksum."""
    watermark: Watermark | None = None
    watermark_problem: str | None = None

    @property
    def whole(self) -> bool:
        return not self.problems()

    @property
    def lost_writes(self) -> bool:
        """Whether records are known to be missing, so ids may have been seen that are gone."""
        return bool(self.corrupt or self.dangling or self.unreadable or self.watermark_problem)

    def lost_messages(self) -> int | None:
        """How many messages the watermark counted that are not here, if it counted."""
        mark = self.watermark
        if mark is None or mark.messages_stored == UNKNOWN:
            return None
        return max(mark.messages_stored - self.messages, 0)

    def problems(self) -> list[str]:
        """One line per kind of damage found."""
        lines: list[str] = []
        if self.corrupt:
            lines.append(f"a table is damaged and the scan stopped there: {self.corrupt}")
        if self.watermark_problem:
            lines.append(self.watermark_problem)
        for keys, what in (
            (self.unreadable, "records do not decode or belong to no table"),
            (self.dangling, "inbox entries point at missing messages"),
            (self.orphans, "idempotency records name a missing or different message"),
            (self.stray_reactions, "reactions belong to a missing or deleted message"),
        ):
            if keys:
                lines.append(f"{len(keys)} {what}, e.g. {_examples([k.hex() for k in keys])}")
        if self.unreceipted:
            named = [f"({m.channel_id}, {m.message_id})" for m in self.unreceipted]
            lines.append(
                f"{len(named)} messages lack a correct idempotency record, e.g. {_examples(named)}"
            )
        return lines


def audit_store(db: Any, folder: pathlib.Path) -> Audit:
    """Read every record of the open database in `folder`; see the module's docstring."""
    found = Audit()
    try:
        found.watermark = read_watermark(folder)
    except DamagedStore as exc:
        found.watermark_problem = str(exc)
    try:
        _scan_messages(db, found)
        _scan_inboxes(db, found)
        _scan_receipts(db, found)
        _scan_reactions(db, found)
        _scan_others(db, found)
    except plyvel.Error as exc:
        found.corrupt = error_text(exc)
    mark = found.watermark
    if (
        not found.corrupt
        and mark is not None
        and mark.message_id
        and read_message(db, mark.channel_id, mark.message_id) is None
    ):
        found.watermark_problem = (
            f"the message store lost writes: its last message (channel {mark.channel_id}, "
            f"message {mark.message_id}) is missing"
        )
    lost = found.lost_messages()
    if lost and not found.watermark_problem:
        found.watermark_problem = f"{lost} messages counted by the watermark are missing"
    return found


def _scan_messages(db: Any, found: Audit) -> None:
    with db.iterator(prefix=MESSAGE, verify_checksums=True) as rows:
        for key, value in rows:
            channel_id, message_id = int(U64.unpack_from(key, 1)[0]), id_at_end(key)
            found.channel_ids.add(channel_id)
            try:
                message = decode_message(value, channel_id=channel_id, message_id=message_id)
            except DamagedStore:
                found.unreadable.append(key)
                continue
            found.messages += 1
            found.user_ids.add(message.sender_id)
            if not receipt_names(db, message.sender_id, message.client_msg_id, key):
                found.unreceipted.append(
                    Unreceipted(channel_id, message_id, message.sender_id, message.client_msg_id)
                )


def receipt_names(db: Any, sender_id: int, client_msg_id: str, message_key: bytes) -> bool:
    """Whether the message's idempotency record names it and the sender's entry points back."""
    receipt = db.get(
        DEDUP + U64.pack(sender_id) + client_msg_id.encode("ascii", errors="replace"),
        verify_checksums=True,
    )
    try:
        channel_id, message_id, seq = decoded(codec.decode_receipt, receipt or b"")
        pointer = db.get(INBOX + U64.pack(sender_id) + U64.pack(seq), verify_checksums=True)
        pointed = decoded(codec.decode_pointer, pointer or b"")
    except DamagedStore:
        return False
    named = MESSAGE + U64.pack(channel_id) + U64.pack(message_id)
    return named == message_key and pointed == (channel_id, message_id)


def _scan_inboxes(db: Any, found: Audit) -> None:
    with db.iterator(prefix=INBOX, verify_checksums=True) as rows:
        for key, value in rows:
            found.user_ids.add(int(U64.unpack_from(key, 1)[0]))
            try:
                channel_id, message_id = decoded(codec.decode_pointer, value)
            except DamagedStore:
                found.unreadable.append(key)
                continue
            found.inbox_entries += 1
            target = MESSAGE + U64.pack(channel_id) + U64.pack(message_id)
            if db.get(target, verify_checksums=True) is None:
                found.dangling.append(key)


def _scan_receipts(db: Any, found: Audit) -> None:
    with db.iterator(prefix=DEDUP, verify_checksums=True) as rows:
        for key, value in rows:
            sender_id = int(U64.unpack_from(key, 1)[0])
            found.user_ids.add(sender_id)
            try:
                channel_id, message_id, _ = decoded(codec.decode_receipt, value)
                message = read_message(db, channel_id, message_id)
            except DamagedStore:
                found.unreadable.append(key)
                continue
            found.receipts += 1
            client_msg_id = key[PREFIX_LEN:].decode("ascii", errors="replace")
            if message is None or (message.sender_id, message.client_msg_id) != (
                sender_id,
                client_msg_id,
            ):
                found.orphans.append(key)


def _scan_reactions(db: Any, found: Audit) -> None:
    with db.iterator(prefix=REACTIONS, verify_checksums=True) as rows:
        for key, value in rows:
            channel_id, message_id = int(U64.unpack_from(key, 1)[0]), id_at_end(key)
            try:
                decoded(codec.decode_reactions, value)
                message = db.get(MESSAGE + key[1:], verify_checksums=True)
                gone = (
                    message is None
                    or decode_message(message, channel_id=channel_id, message_id=message_id).deleted
                )
            except DamagedStore:
                found.unreadable.append(key)
                continue
            if gone:
                found.stray_reactions.append(key)


def _scan_others(db: Any, found: Audit) -> None:
    with db.iterator(include_value=False, verify_checksums=True) as keys:
        for key in keys:
            if key[:1] not in KNOWN_TABLES or len(key) < PREFIX_LEN:
                found.unreadable.append(key)
            # Skip the rest of a known table in one seek.
            elif key[:1] != FLOOR:
                keys.seek(bytes([key[0] + 1]))


def _examples(items: list[str]) -> str:
    shown = ", ".join(items[:EXAMPLES])
    return shown + (", …" if len(items) > EXAMPLES else "")
