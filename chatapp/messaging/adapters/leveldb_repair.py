"""Repairing a stopped message store: rebuild what is derivable, say what was lost.

1. A database LevelDB cannot open (a lost `CURRENT`, a damaged manifest) or
   whose scan meets a damaged block is rebuilt by LevelDB's own `RepairDB`,
   which keeps every record it can still read, from tables and logs.
2. Records that do not decode, inbox entries pointing at lost messages and
   idempotency records naming a message that is not theirs are removed; each
   message gets back a correct idempotency record (and, if its sender's entry
   was lost, a new one at the end of the sender's inbox).
3. When records were lost, every channel's and inbox's counter gets a floor
   above any id a lost record could have had, so that no id a client has
   seen is handed out again: as many ids as the watermark counted messages
   lost (each message takes at most one id of any range), or `UNCOUNTED_GAP`
   when the count is unknown.
4. The watermark is written anew for what is there now.
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterable
from typing import Any, Final

import plyvel

from chatapp.messaging.adapters import codec
from chatapp.messaging.adapters.leveldb_audit import Audit, Unreceipted, audit_store
from chatapp.messaging.adapters.leveldb_layout import (
    DEDUP,
    INBOX,
    MESSAGE,
    U64,
    DamagedStore,
    counter_at,
    floor_key,
    id_at_end,
    open_db,
)
from chatapp.messaging.adapters.leveldb_watermark import Watermark, write_watermark

UNCOUNTED_GAP: Final = 1_000_000
"""Ids skipped per range when lost messages were not counted.

LevelDB loses at most its unflushed logs, a few MiB: far fewer than a million
sends. Ids stay well below 2**53, which every JSON client reads exactly.
"""


def repair_store(
    folder: pathlib.Path,
    *,
    channel_ids: Iterable[int],
    user_ids: Iterable[int],
    assume_lost: bool = False,
) -> tuple[list[str], Audit]:
    """Repair the store in `folder`; returns what was done and lost, and the audit after.

    `channel_ids` and `user_ids` are those the other stores know, so their
    counters move past lost ids too; `assume_lost` says the store itself was
    lost (its folder missing), so they move however whole it looks. Raises
    `StoreInUse` while a server runs.
    """
    done: list[str] = []
    if assume_lost:
        done.append(f"{folder} was missing: every message is lost")
    db = _open_rebuilding(folder, done)
    try:
        found = audit_store(db, folder)
        if found.corrupt:
            db.close()
            _rebuild(folder, done, found.corrupt)
            db = open_db(folder)
            found = audit_store(db, folder)
        _fix(db, found, done, rebuilt=bool(done), channel_ids=channel_ids, user_ids=user_ids)
        write_watermark(folder, Watermark(*_last_message(db), found.messages))
        after = audit_store(db, folder)
    finally:
        db.close()
    return done, after


def _open_rebuilding(folder: pathlib.Path, done: list[str]) -> Any:
    try:
        return open_db(folder)
    except DamagedStore as exc:
        _rebuild(folder, done, str(exc))
        return open_db(folder)


def _rebuild(folder: pathlib.Path, done: list[str], why: str) -> None:
    plyvel.repair_db(str(folder))
    done.append(f"LevelDB rebuilt the message store from its readable records ({why})")


def _fix(
    db: Any,
    found: Audit,
    done: list[str],
    *,
    rebuilt: bool,
    channel_ids: Iterable[int],
    user_ids: Iterable[int],
) -> None:
    lost_before = found.problems()
    batch = db.write_batch(sync=True)
    for key in (*found.unreadable, *found.dangling, *found.orphans, *found.stray_reactions):
        batch.delete(key)
    for what, keys in (
        ("unreadable records", found.unreadable),
        ("inbox entries of lost messages", found.dangling),
        ("wrong idempotency records", found.orphans),
        ("reactions of missing or deleted messages", found.stray_reactions),
    ):
        if keys:
            done.append(f"removed {len(keys)} {what}")
    next_seqs: dict[int, int] = {}
    added = 0
    for message in found.unreceipted:
        added += _write_receipt(db, batch, message, next_seqs)
    if found.unreceipted:
        done.append(
            f"wrote {len(found.unreceipted)} idempotency records anew"
            + (f", {added} with a new inbox entry of their sender" if added else "")
        )
    if rebuilt or found.lost_writes:
        _set_floors(db, batch, found, done, channel_ids=channel_ids, user_ids=user_ids)
    batch.write()
    if lost_before:
        done.extend(f"found: {line}" for line in lost_before)


def _write_receipt(db: Any, batch: Any, message: Unreceipted, next_seqs: dict[int, int]) -> int:
    """Write the message's idempotency record; 1 when its sender needed a new inbox entry."""
    sender = message.sender_id
    pointer = codec.encode_pointer(message.channel_id, message.message_id)
    seq = _seq_pointing(db, sender, pointer)
    new_entry = seq is None
    if seq is None:
        seq = next_seqs.get(sender) or counter_at(db, INBOX, sender)
        seq += 1
        next_seqs[sender] = seq
        batch.put(INBOX + U64.pack(sender) + U64.pack(seq), pointer)
    key = DEDUP + U64.pack(sender) + message.client_msg_id.encode("ascii", errors="replace")
    batch.put(key, codec.encode_receipt(message.channel_id, message.message_id, seq))
    return int(new_entry)


def _seq_pointing(db: Any, user_id: int, pointer: bytes) -> int | None:
    with db.iterator(prefix=INBOX + U64.pack(user_id), verify_checksums=True) as rows:
        for key, value in rows:
            if value == pointer:
                return id_at_end(key)
    return None


def _set_floors(
    db: Any,
    batch: Any,
    found: Audit,
    done: list[str],
    *,
    channel_ids: Iterable[int],
    user_ids: Iterable[int],
) -> None:
    lost = found.lost_messages()
    gap = UNCOUNTED_GAP if lost is None else lost
    pointed: dict[int, int] = {}
    for key in found.dangling:
        value = db.get(key)
        if value is not None:
            channel_id, message_id = codec.decode_pointer(value)
            pointed[channel_id] = max(pointed.get(channel_id, 0), message_id)
    moved = 0
    for table, owners in (
        (MESSAGE, set(channel_ids) | found.channel_ids | set(pointed)),
        (INBOX, set(user_ids) | found.user_ids),
    ):
        for owner in owners:
            current = counter_at(db, table, owner)
            floor = max(current + gap, pointed.get(owner, 0) if table == MESSAGE else 0)
            if floor > current:
                batch.put(floor_key(table, owner), U64.pack(floor))
                moved += 1
    if moved:
        counted = "uncounted" if lost is None else f"{lost}"
        done.append(
            f"moved {moved} message and inbox counters past the ids lost messages may have"
            f" had ({counted} lost, {gap} ids skipped each), so no id is handed out twice"
        )


def _last_message(db: Any) -> tuple[int, int]:
    with db.iterator(prefix=MESSAGE, reverse=True, include_value=False) as keys:
        for key in keys:
            return int(U64.unpack_from(key, 1)[0]), id_at_end(key)
    return 0, 0
