"""Where presence keeps status and last_active_at: a key-value store (LevelDB by default)."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path
from typing import Any, Protocol

import msgpack
import plyvel

from chatapp.presence.events import Status

_KEY = struct.Struct(">Q")
_PREFIX = b"p"
_VERSION = 1


class PresenceStore(Protocol):
    def load(self, user_id: int) -> tuple[Status, int] | None:
        """The stored (status, last_active_at), or None if never stored."""
        ...

    def save(self, user_id: int, status: Status, last_active_at: int) -> None: ...

    async def close(self) -> None: ...


class LevelDBPresenceStore:
    """Key `p` + user_id (8 bytes, big-endian) → version byte + msgpack [status, last_active_at].

    Presence is a hint, not a promise, so writes are not fsync'ed: a crash may
    lose the last minute of last_active_at, never a message.
    """

    def __init__(self, db: Any) -> None:
        self._db = db

    @classmethod
    async def open(cls, path: Path) -> LevelDBPresenceStore:
        return cls(await asyncio.to_thread(_open_db, path))

    def load(self, user_id: int) -> tuple[Status, int] | None:
        raw: bytes | None = self._db.get(_PREFIX + _KEY.pack(user_id))
        if raw is None or raw[0] != _VERSION:
            return None
        status, last_active_at = msgpack.unpackb(raw[1:])
        return status, int(last_active_at)

    def save(self, user_id: int, status: Status, last_active_at: int) -> None:
        value = bytes([_VERSION]) + msgpack.packb([status, last_active_at])
        self._db.put(_PREFIX + _KEY.pack(user_id), value)

    async def close(self) -> None:
        self._db.close()


def _open_db(path: Path) -> Any:
    path.mkdir(parents=True, exist_ok=True)
    return plyvel.DB(str(path), create_if_missing=True)
