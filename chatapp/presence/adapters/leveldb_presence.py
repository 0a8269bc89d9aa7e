"""Presence on LevelDB: key `p` + user_id (8 bytes, big-endian) → version byte + msgpack.

Writes are not fsync'ed: presence is a hint, so a crash may lose the last
minute of last_active_at, never a message. Reads and writes are point
operations on small values that LevelDB answers from memory in microseconds,
so they run on the event loop; a thread hop would cost more than the work.

Opened with `paranoid_checks` and read with verified checksums, like the
message store: a damaged value is a `PresenceStoreError`, never garbage.
"""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path
from typing import Any

import msgpack
import plyvel

from chatapp.presence.events import Status
from chatapp.presence.store import PresenceStoreError

_KEY = struct.Struct(">Q")
_PREFIX = b"p"
_VERSION = 1


class LevelDBPresenceStore:
    def __init__(self, db: Any) -> None:
        self._db = db

    @classmethod
    async def open(cls, path: Path) -> LevelDBPresenceStore:
        return cls(await asyncio.to_thread(_open_db, path))

    async def load(self, user_id: int) -> tuple[Status, int] | None:
        try:
            raw: bytes | None = self._db.get(_PREFIX + _KEY.pack(user_id), verify_checksums=True)
        except (plyvel.Error, RuntimeError) as error:
            raise PresenceStoreError(str(error)) from None
        if raw is None or not raw or raw[0] != _VERSION:
            return None
        try:
            status, last_active_at = msgpack.unpackb(raw[1:])
            return status, int(last_active_at)
        except (ValueError, TypeError, msgpack.UnpackException) as error:
            raise PresenceStoreError(f"presence of user {user_id} is unreadable: {error}") from None

    async def save(self, user_id: int, status: Status, last_active_at: int) -> None:
        value = bytes([_VERSION]) + msgpack.packb([status, last_active_at])
        try:
            self._db.put(_PREFIX + _KEY.pack(user_id), value)
        except (plyvel.Error, RuntimeError) as error:
            raise PresenceStoreError(str(error)) from None

    async def close(self) -> None:
        self._db.close()


class PresenceStoreInUse(PresenceStoreError):
    """Another process holds the presence database's lock."""


def _open_db(path: Path) -> Any:
    # Created only where nothing is: LevelDB told to create a database in a
    # folder that lost its CURRENT file would delete the tables it has.
    fresh = not path.exists() or not any(path.iterdir())
    path.mkdir(parents=True, exist_ok=True)
    try:
        return plyvel.DB(str(path), create_if_missing=fresh, paranoid_checks=True)
    except plyvel.Error as error:
        reason = error.args[0].decode(errors="replace") if error.args else str(error)
        if isinstance(error, plyvel.IOError) and "lock" in reason:
            raise PresenceStoreInUse(f"{path} is in use by another process ({reason})") from None
        if not (path / "CURRENT").exists():
            reason = "its CURRENT file is missing"
        raise PresenceStoreError(f"{path} cannot be opened: {reason}") from None


def check_presence(path: Path) -> str | None:
    """What is wrong with the stopped presence database in `path`, or None when it is whole."""
    if not path.exists():
        return None  # made anew on start: presence is a hint
    try:
        db = _open_db(path)
    except PresenceStoreInUse:
        raise
    except PresenceStoreError as error:
        return str(error)
    try:
        for _ in db.iterator(include_value=False, verify_checksums=True):
            pass
    except plyvel.Error as error:
        return f"{path} is damaged: {error}"
    finally:
        db.close()
    return None


def repair_presence(path: Path) -> str | None:
    """Make the stopped presence database in `path` open again; what was done, or None.

    Presence is a hint, so what LevelDB's repair cannot save is dropped.
    """
    problem = check_presence(path)
    if problem is None:
        return None
    plyvel.repair_db(str(path))
    _open_db(path).close()
    return f"LevelDB rebuilt the presence store from its readable records ({problem})"
