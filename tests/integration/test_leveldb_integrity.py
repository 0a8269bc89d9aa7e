"""The message store's own integrity checks on a real LevelDB folder."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import plyvel
import pytest

from chatapp.messaging import MessageStoreError
from chatapp.messaging.adapters.leveldb_audit import audit_store
from chatapp.messaging.adapters.leveldb_layout import DamagedStore, StoreInUse, open_db
from chatapp.messaging.adapters.leveldb_repair import UNCOUNTED_GAP, repair_store
from chatapp.messaging.adapters.leveldb_store import LevelDBMessageStore
from chatapp.messaging.adapters.leveldb_watermark import FILE_NAME


async def fill(store: LevelDBMessageStore, count: int, *, channel_id: int = 1) -> None:
    for n in range(count):
        await store.append(
            sender_id=1,
            channel_id=channel_id,
            client_msg_id=f"c{channel_id}-{n}",
            text=os.urandom(150).hex(),  # incompressible: messages fill most of a table
            member_ids=[1, 2],
            created_at=n,
        )


def be(n: int) -> bytes:
    return n.to_bytes(8, "big")


async def test_a_flipped_block_is_a_store_error_and_the_store_says_it_saw_damage(
    tmp_path: Path,
) -> None:
    """Checksums are verified on reads: flipped bytes give MessageStoreError (the edges' 503),
    and `damage()` names it from then on, for readiness to report."""
    folder = tmp_path / "messages"
    store = await LevelDBMessageStore.open(folder)
    await fill(store, 200)
    await store.close()
    await (await LevelDBMessageStore.open(folder)).close()  # the log becomes a table
    (table,) = folder.glob("*.ldb")
    blob = bytearray(table.read_bytes())
    # Messages sort last (d < i < m), so two thirds in is inside a message block.
    for at in range(len(blob) * 2 // 3, len(blob) * 2 // 3 + 256):
        blob[at] ^= 0xFF
    table.write_bytes(bytes(blob))

    store = await LevelDBMessageStore.open(folder)
    try:
        assert store.damage() is None
        with pytest.raises(MessageStoreError):
            await store.history(1, limit=200)
        assert store.damage() is not None
    finally:
        await store.close()


async def test_a_last_message_that_does_not_decode_is_damage_not_a_preview(
    tmp_path: Path,
) -> None:
    """The preview read decodes only a message's start, and still refuses a record it cannot
    read: DamagedStore, and `damage()` names it."""
    folder = tmp_path / "messages"
    store = await LevelDBMessageStore.open(folder)
    await fill(store, 2)
    await store.close()
    db = plyvel.DB(str(folder))
    try:
        db.put(b"m" + be(1) + be(2), b"\x01\x94\x01\x02\xa1c\xa2\xff\xfe")  # text not UTF-8
    finally:
        db.close()

    store = await LevelDBMessageStore.open(folder)
    try:
        with pytest.raises(DamagedStore, match=r"unreadable"):
            await store.last_messages([1], max_chars=200)
        assert store.damage() is not None
    finally:
        await store.close()


async def test_a_folder_without_current_is_refused_and_its_tables_are_kept(
    tmp_path: Path,
) -> None:
    """LevelDB told to create a missing database would start empty over the old tables; the
    store refuses to open instead, and a repair brings every message back."""
    folder = tmp_path / "messages"
    store = await LevelDBMessageStore.open(folder)
    await fill(store, 20)
    await store.close()
    (folder / "CURRENT").unlink()

    with pytest.raises(DamagedStore, match="CURRENT"):
        await LevelDBMessageStore.open(folder)
    done, after = repair_store(folder, channel_ids=[1], user_ids=[1, 2])
    assert any("rebuilt" in line for line in done)
    assert after.whole
    assert after.messages == 20


async def test_the_lock_of_a_running_store_is_told_apart(tmp_path: Path) -> None:
    """A second opener of a folder in use gets StoreInUse, which start-up names as such."""
    store = await LevelDBMessageStore.open(tmp_path / "messages")
    try:
        with pytest.raises(StoreInUse):
            open_db(tmp_path / "messages")
    finally:
        await store.close()


async def test_survey_finds_a_lost_tail_and_repair_moves_counters_past_it(
    tmp_path: Path,
) -> None:
    """The log cut in half: the survey names the watermark's message as missing; repair
    moves the counters so that the next id is above every id the lost messages had."""
    folder = tmp_path / "messages"
    store = await LevelDBMessageStore.open(folder)
    await fill(store, 40)
    await store.close()
    (log,) = folder.glob("*.log")
    os.truncate(log, log.stat().st_size // 2)

    store = await LevelDBMessageStore.open(folder)
    try:
        survey = await store.survey()
        kept = await store.last_message_id(1)
    finally:
        await store.close()
    assert kept < 40
    assert [p for p in survey.problems if "lost writes" in p]

    done, after = repair_store(folder, channel_ids=[1], user_ids=[1, 2])
    assert after.whole, after.problems()
    assert any("no id is handed out twice" in line for line in done)
    store = await LevelDBMessageStore.open(folder)
    try:
        assert (await store.survey()).problems == []
        accepted = await store.append(
            sender_id=1,
            channel_id=1,
            client_msg_id="new",
            text="new",
            member_ids=[1, 2],
            created_at=0,
        )
    finally:
        await store.close()
    # The watermark counted 40; the floor is what is left plus as many as were lost.
    assert accepted.message.message_id == 41
    assert accepted.inbox_seqs == {1: 41, 2: 41}


async def test_audit_finds_broken_links_and_repair_rebuilds_them(tmp_path: Path) -> None:
    """A lost message, a lost idempotency record and a wrong one: the full check names each;
    repair drops the entries of the lost message, writes the records anew, and the store
    is whole. Without a watermark count, counters skip `UNCOUNTED_GAP` ids."""
    folder = tmp_path / "messages"
    store = await LevelDBMessageStore.open(folder)
    await fill(store, 5)
    await fill(store, 3, channel_id=2)
    await store.close()
    db = plyvel.DB(str(folder))
    db.delete(b"m" + be(1) + be(3))  # a lost message
    db.delete(b"d" + be(1) + b"c1-4")  # a lost idempotency record
    db.put(b"d" + be(1) + b"c2-0", db.get(b"d" + be(1) + b"c1-0"))  # one naming another's
    db.close()
    (folder / FILE_NAME).unlink()

    db = open_db(folder)
    try:
        found = audit_store(db, folder)
    finally:
        db.close()
    assert len(found.dangling) == 2  # the lost message was in two inboxes
    assert {(m.channel_id, m.message_id) for m in found.unreceipted} == {(1, 5), (2, 1)}
    assert len(found.orphans) == 2  # c1-2's record names the lost message; c2-0's another
    assert not found.whole

    _done, after = repair_store(folder, channel_ids=[1, 2], user_ids=[1, 2])
    assert after.whole, after.problems()
    assert after.inbox_entries == 2 * 7
    store = await LevelDBMessageStore.open(folder)
    try:
        repeat = await store.original(1, "c2-0")
        assert repeat is not None
        assert (repeat.message.channel_id, repeat.message.message_id) == (
            2,
            1,
        )
        assert await store.last_message_id(1) == 5 + UNCOUNTED_GAP
        assert await store.max_seq(2) == 8 + UNCOUNTED_GAP
    finally:
        await store.close()


async def test_only_a_store_closed_cleanly_skips_the_check_of_every_range(
    tmp_path: Path,
) -> None:
    """A copy taken while the store is open is what a kill leaves: its next start checks the
    end of every channel and inbox; after a clean close, only the highest of each."""
    folder = tmp_path / "messages"
    store = await LevelDBMessageStore.open(folder)
    try:
        for channel_id in (1, 2, 3):
            await fill(store, 2, channel_id=channel_id)
        shutil.copytree(folder, tmp_path / "killed", ignore=shutil.ignore_patterns("LOCK"))
    finally:
        await store.close()

    for name, checked in (("killed", 3), ("messages", 1)):
        reopened = await LevelDBMessageStore.open(tmp_path / name)
        try:
            found = await reopened.survey()
        finally:
            await reopened.close()
        assert found.problems == [], name
        assert (found.channels, found.top_channel_id, found.top_user_id) == (checked, 3, 2), name

    # Once opened again, the folder counts as in use until it is closed again.
    again = await LevelDBMessageStore.open(folder)
    try:
        shutil.copytree(folder, tmp_path / "killed-later", ignore=shutil.ignore_patterns("LOCK"))
    finally:
        await again.close()
    later = await LevelDBMessageStore.open(tmp_path / "killed-later")
    try:
        assert (await later.survey()).channels == 3
    finally:
        await later.close()


async def no_pause(seconds: float) -> None:
    """The background check's pause between pieces, taken at once."""


async def test_the_background_check_reads_every_message_and_reports_a_missing_record(
    tmp_path: Path,
) -> None:
    """A whole store: every message is checked, in several pieces, and nothing is found.
    One idempotency record lost in the middle, where the start-up check does not look:
    the store opens and its survey is clean, then the background check finds the message
    and reports the store damaged (readiness turns 503 on that)."""
    folder = tmp_path / "messages"
    store = await LevelDBMessageStore.open(folder)
    for channel_id in (1, 2, 3):
        await fill(store, 400, channel_id=channel_id)
    try:
        assert await store.verify_receipts(pause=no_pause) == 1200
        assert store.damage() is None
    finally:
        await store.close()

    db = plyvel.DB(str(folder))
    db.delete(b"d" + be(1) + b"c2-199")  # message (2, 200)'s record
    db.close()

    store = await LevelDBMessageStore.open(folder)
    try:
        assert (await store.survey()).problems == []
        assert store.damage() is None
        checked = await store.verify_receipts(pause=no_pause)
        assert checked == 400 + 199
        damage = store.damage()
        assert damage is not None
        assert "(2, 200)" in damage
    finally:
        await store.close()
