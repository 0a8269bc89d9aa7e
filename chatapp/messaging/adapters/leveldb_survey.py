"""The start-up check of the message store: the ends of every range, in one seek each.

A full scan reads every record (about 3 s per million messages, see
`leveldb_audit`), too slow before each start. The damage that matters shows
at the ends instead:

- LevelDB loses writes only as a suffix of its log (a torn or cut log is
  dropped from the first bad record on), and every batch is written whole, so
  a store that lost writes is an older store whole in itself: the watermark's
  message, the last one written, is missing.
- A table dropped or salvaged by LevelDB's repair leaves holes; the last
  message of each channel (with its idempotency record) and the last entry
  of each inbox are read, and each must point at what it names (checksums
  are verified on every block read).
- What SQLite must know: the highest channel and user ids that LevelDB has
  records of (`Survey.top_channel_id`, `top_user_id`).

After a clean close (the watermark says so) only the highest owner of each
range is read: the writer that closed cleanly had every batch land whole, and
damage a disk does to a closed store shows as a failed checksum when its block
is read (an error and a 503, never an answer) or as a missing table, which
LevelDB itself refuses to open. So a server that was stopped, not killed,
starts in a few seeks however many channels it has; `chatapp check` reads
everything.

A range's owners are found by a skip scan: a reverse iterator seeks to just
below the owner found last, so each channel and inbox costs one seek and a
few point reads, however many records it has. Measured on the 2-core dev box while
other test runs kept it busy (load 5): 10,000 channels and 5,000 inboxes
take 0.9-1.6 s holding 200,000 messages and 3-6 s holding 1,000,000, about
a reverse seek each; the full check (`leveldb_audit`) of the million took
85 s.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from chatapp.messaging.adapters import codec
from chatapp.messaging.adapters.leveldb_layout import (
    DEDUP,
    INBOX,
    MESSAGE,
    PREFIX_LEN,
    U64,
    DamagedStore,
    decode_message,
    decoded,
    id_at_end,
    read_message,
)
from chatapp.messaging.adapters.leveldb_watermark import Watermark

EXAMPLES: Final = 3
"""How many cases of one problem a finding names."""


@dataclass(slots=True)
class Survey:
    """What the ends of the ranges say: the highest ids in use, and what is wrong."""

    top_channel_id: int = 0
    top_user_id: int = 0
    channels: int = 0
    """How many channels' last messages were checked (one after a clean close)."""
    inboxes: int = 0
    """How many inboxes' last entries were checked (one after a clean close)."""
    problems: list[str] = field(default_factory=list)


def owners(db: Any, table: bytes) -> Iterator[tuple[int, bytes, bytes]]:
    """`(owner_id, last key, its value)` of every owner in `table`, highest owner first."""
    # One unbounded iterator, its bounds checked here: a reverse seek lands on
    # the last key below its target, the last record of the next owner down.
    # (A bounded plyvel iterator seeking below its start wraps to its end.)
    with db.iterator(reverse=True, verify_checksums=True) as rows:
        rows.seek(bytes([table[0] + 1]))
        for key, value in rows:
            if not key.startswith(table):
                return
            owner = int(U64.unpack_from(key, len(table))[0])
            yield owner, key, value
            rows.seek(table + U64.pack(owner))


def survey(db: Any, watermark: Watermark | None) -> Survey:
    """Check the ends of the ranges and the watermark; see the module's docstring.

    Every owner's range is checked unless the watermark says the store was
    closed cleanly; then only the highest owner's.
    """
    quick = watermark is not None and watermark.closed_cleanly
    found = Survey()
    lost = _missing_watermark_message(db, watermark)
    if lost:
        found.problems.append(lost)
    broken: list[str] = []
    for channel_id, key, value in owners(db, MESSAGE):
        found.top_channel_id = max(found.top_channel_id, channel_id)
        found.channels += 1
        _note(broken, _message_without_receipt(db, channel_id, id_at_end(key), value))
        if quick:
            break
    for user_id, key, value in owners(db, INBOX):
        found.top_user_id = max(found.top_user_id, user_id)
        found.inboxes += 1
        _note(broken, _dangling_pointer(db, user_id, id_at_end(key), value))
        if quick:
            break
    # Idempotency records sort by client_msg_id, not by time, so a sender's
    # last one says nothing of their last send (whose record the channel's
    # last message checks); only the highest sender is read.
    for sender_id, key, value in owners(db, DEDUP):
        found.top_user_id = max(found.top_user_id, sender_id)
        _note(broken, _receipt_without_message(db, sender_id, key, value))
        break
    if broken:
        more = f" (and {len(broken) - EXAMPLES} more)" if len(broken) > EXAMPLES else ""
        found.problems.append("; ".join(broken[:EXAMPLES]) + more)
    return found


def _note(broken: list[str], problem: str | None) -> None:
    if problem:
        broken.append(problem)


def _missing_watermark_message(db: Any, watermark: Watermark | None) -> str | None:
    if watermark is None or not watermark.message_id:
        return None
    if read_message(db, watermark.channel_id, watermark.message_id) is not None:
        return None
    return (
        f"the message store lost writes: its last message "
        f"(channel {watermark.channel_id}, message {watermark.message_id}) is missing"
    )


def _message_without_receipt(db: Any, channel_id: int, message_id: int, value: bytes) -> str | None:
    try:
        message = decode_message(value, channel_id=channel_id, message_id=message_id)
        receipt = db.get(
            DEDUP + U64.pack(message.sender_id) + message.client_msg_id.encode("ascii"),
            verify_checksums=True,
        )
        if receipt is None:
            return f"message ({channel_id}, {message_id}) has no idempotency record"
        if decoded(codec.decode_receipt, receipt)[:2] != (channel_id, message_id):
            return f"the idempotency record of message ({channel_id}, {message_id}) names another"
    except (DamagedStore, UnicodeEncodeError) as exc:
        return str(exc)
    return None


def _dangling_pointer(db: Any, user_id: int, seq: int, value: bytes) -> str | None:
    try:
        channel_id, message_id = decoded(codec.decode_pointer, value)
        if read_message(db, channel_id, message_id) is None:
            return (
                f"inbox entry {seq} of user {user_id} points at missing message "
                f"({channel_id}, {message_id})"
            )
    except DamagedStore as exc:
        return str(exc)
    return None


def _receipt_without_message(db: Any, sender_id: int, key: bytes, value: bytes) -> str | None:
    try:
        channel_id, message_id, _ = decoded(codec.decode_receipt, value)
        message = read_message(db, channel_id, message_id)
    except DamagedStore as exc:
        return str(exc)
    client_msg_id = key[PREFIX_LEN:].decode("ascii", errors="replace")
    if message is None:
        return (
            f"the idempotency record ({sender_id}, {client_msg_id!r}) points at missing "
            f"message ({channel_id}, {message_id})"
        )
    if (message.sender_id, message.client_msg_id) != (sender_id, client_msg_id):
        return f"the idempotency record ({sender_id}, {client_msg_id!r}) names another's message"
    return None
