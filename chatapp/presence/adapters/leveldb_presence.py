"""Presence on LevelDB: key `p` + user_id (8 bytes, big-endian) → version byte + msgpack.

Writes are not fsync'ed: presence is a hint, so a crash may lose the last
minute of last_active_at, never a message. Reads and writes are point
operations on small values that LevelDB answers from memory in microseconds,
so they run on the event loop; a thread hop would cost more than the work.
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
            raw: bytes | None = self._db.get(_PREFIX + _KEY.pack(user_id))
        except (plyvel.Error, RuntimeError) as error:
            raise PresenceStoreError(str(error)) from None
        if raw is None or raw[0] != _VERSION:
            return None
        status, last_active_at = msgpack.unpackb(raw[1:])
        return status, int(last_active_at)

    async def save(self, user_id: int, status: Status, last_active_at: int) -> None:
        value = bytes([_VERSION]) + msgpack.packb([status, last_active_at])
        try:
            self._db.put(_PREFIX + _KEY.pack(user_id), value)
        except (plyvel.Error, RuntimeError) as error:
            raise PresenceStoreError(str(error)) from None

    async def close(self) -> None:
        self._db.close()


def _open_db(path: Path) -> Any:
    path.mkdir(parents=True, exist_ok=True)
    return plyvel.DB(str(path), create_if_missing=True)
