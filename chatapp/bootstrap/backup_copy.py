"""Copying a data folder into a backup: the message store first, then SQLite, then the key.

The order is what makes the two stores agree. SQLite hands out user and
channel ids, and the message store records them; a server refuses a folder
whose message store names a user or channel above SQLite's highest (SQLite
would hand that id out again). So the message store's snapshot is taken
first, and SQLite's copy after it: every user and channel the snapshot
names existed in SQLite before the snapshot, so SQLite's later copy has it.
SQLite may be ahead (a user who signed up meanwhile, a device logged in, a
channel made): that is a folder a server starts on, as after any send that
had not yet come. The one value of SQLite that points into the message
store, a member's read marker, is moved back in the copy to the copy's last
message of its channel when it is beyond it.

SQLite is copied with its online backup API in one step, which reads the
whole database in one read transaction: a consistent copy, while the
server's own connections write on (the WAL lets them).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from chatapp.bootstrap.search import SEARCH_FILE
from chatapp.bootstrap.stores import users_database
from chatapp.bus.control_socket import SOCKET_NAME
from chatapp.messaging.adapters.leveldb_copy import CopiedStore, sync_tree
from chatapp.notify.key_file import KEY_FILE

MESSAGES: Final = "messages"
PRESENCE: Final = "presence"
RESTORE_ASIDE_PREFIX: Final = "before-restore-"
RESTORE_STAGING: Final = ".restoring"
_SQLITE_SIDE_FILES: Final = ("-wal", "-shm", "-journal")
NOT_COPIED: Final = {
    PRESENCE: "last-seen hints, which are disposable: a restored server starts with nobody"
    " online, and each user's last-seen time comes back when they do",
    # A copy could name messages the message store's (earlier) snapshot lacks, whose
    # ids the restored server hands out again.
    SEARCH_FILE: "the search index, derived from the messages: a restored server builds it"
    " again in the background as it starts (`chatapp reindex` on a stopped folder does it"
    " at once)",
}
UNKNOWN_ENTRY: Final = (
    "not a store this version knows: derived data is rebuilt from the restored stores"
)

CopyMessages = Callable[[Path], Awaitable[CopiedStore]]
"""Copies the message store into a new store in the folder given."""


@dataclass(frozen=True, slots=True)
class SqliteCopy:
    users: int
    devices: int
    channels: int
    read_markers_moved_back: int


async def copy_folder(data_dir: Path, target: Path, copy_messages: CopyMessages) -> dict[str, Any]:
    """Copy every store of `data_dir` that matters into the empty folder `target`.

    Returns what was copied and counted, as the backup's manifest says it.
    """
    messages = await copy_messages(target / MESSAGES)
    users = users_database(data_dir)
    sqlite = await asyncio.to_thread(
        backup_sqlite, users, users_database(target), messages.last_message_ids
    )
    copied = [MESSAGES, users.name]
    key = data_dir / KEY_FILE
    if key.exists():
        await asyncio.to_thread(_copy_private_file, key, target / KEY_FILE)
        copied.append(KEY_FILE)
    await asyncio.to_thread(sync_tree, target)
    return {
        "messages": messages.messages,
        "inbox_entries": messages.inbox_entries,
        "idempotency_records": messages.receipts,
        "users": sqlite.users,
        "devices": sqlite.devices,
        "channels": sqlite.channels,
        "read_markers_moved_back": sqlite.read_markers_moved_back,
        "copied": copied,
        "not_copied": not_copied(data_dir),
    }


def backup_sqlite(source: Path, target: Path, last_message_ids: Mapping[int, int]) -> SqliteCopy:
    """Copy the users database with SQLite's backup API, then move read markers back."""
    if not source.exists():
        raise FileNotFoundError(f"{source} is missing: there are no users to back up")
    reading = sqlite3.connect(source, timeout=30)
    try:
        writing = sqlite3.connect(target)
        try:
            reading.backup(writing)  # pages=-1: one step, one read transaction
            moved = _move_read_markers_back(writing, last_message_ids)
            counts = [
                int(writing.execute(query).fetchone()[0])
                for query in (
                    "SELECT COUNT(*) FROM users",
                    "SELECT COUNT(*) FROM devices WHERE revoked_at IS NULL",
                    "SELECT COUNT(*) FROM channels",
                )
            ]
            writing.commit()
        finally:
            writing.close()
    finally:
        reading.close()
    _fsync(target)
    users, devices, channels = counts
    return SqliteCopy(users, devices, channels, read_markers_moved_back=moved)


def _move_read_markers_back(db: sqlite3.Connection, last_message_ids: Mapping[int, int]) -> int:
    """Markers past the copied messages are moved to the copy's last message (0 for none)."""
    db.execute("CREATE TEMP TABLE copied_last (channel_id INTEGER PRIMARY KEY, last INTEGER)")
    db.executemany("INSERT INTO copied_last VALUES (?, ?)", last_message_ids.items())
    last = "coalesce((SELECT last FROM copied_last c WHERE c.channel_id = m.channel_id), 0)"
    moved = db.execute(
        f"UPDATE channel_members AS m SET read_message_id = {last} WHERE read_message_id > {last}"
    ).rowcount
    db.execute("DROP TABLE copied_last")
    return int(moved)


def not_copied(data_dir: Path) -> dict[str, str]:
    """The entries of `data_dir` a backup leaves out, each with why."""
    known = {MESSAGES, users_database(data_dir).name, KEY_FILE, SOCKET_NAME}
    sqlite_files = (users_database(data_dir).name, SEARCH_FILE)
    known |= {name + side for name in sqlite_files for side in _SQLITE_SIDE_FILES}
    left: dict[str, str] = {}
    for entry in sorted(data_dir.iterdir()):
        name = entry.name
        if name in known or name.startswith((RESTORE_ASIDE_PREFIX, RESTORE_STAGING)):
            continue
        left[name] = NOT_COPIED.get(name, UNKNOWN_ENTRY)
    return left


def _copy_private_file(source: Path, target: Path) -> None:
    shutil.copyfile(source, target)
    os.chmod(target, 0o600)
    _fsync(target)


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
