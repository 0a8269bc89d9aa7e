"""Presence on LevelDB: key `p` + user_id (8 bytes, big-endian) → version byte + msgpack.

Writes are not fsync'ed: presence is a hint, so a crash may lose the last
minute of last_active_at, never a message. Reads and writes are point
operations on small values that LevelDB answers from memory in microseconds,
so they run on the event loop; a thread hop would cost more than the work.

Opened with `paranoid_checks` and read with verified checksums, like the
message store: a damaged value is a `PresenceStoreError`, never garbage.

A write that fails may leave LevelDB failing every later one (it keeps the
error of its background work, such as a table it could not open for lack of
files), so the store closes the database and opens it again, retrying with
longer waits while that fails too; calls are refused meanwhile.
"""

from __future__ import annotations

import asyncio
import errno
import os
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

import msgpack
import plyvel
import structlog

from chatapp.presence.events import Status
from chatapp.presence.store import PresenceStoreError

MAX_OPEN_FILES: Final = 74
"""The most files LevelDB keeps open for presence: the least it accepts (64 tables, 10 others).

A few bytes per user fit in a few tables; the server's open-file reserve
(`chatapp.bootstrap.open_files`) counts this bound.
"""
REOPEN_FIRST_WAIT: Final = 0.05
REOPEN_LONGEST_WAIT: Final = 1.0
"""Seconds between attempts to reopen after a failed write: doubling, then this at most."""

_KEY = struct.Struct(">Q")
_PREFIX = b"p"
_VERSION = 1
_SHORTAGES: Final = tuple(
    os.strerror(number) for number in (errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOSPC)
)

_log = structlog.get_logger(__name__)


class LevelDBPresenceStore:
    def __init__(
        self, db: Any, path: Path, *, pause: Callable[[float], Awaitable[None]] = asyncio.sleep
    ) -> None:
        """Use `open`; `pause` waits between attempts to reopen (`asyncio.sleep`)."""
        self._db: Any | None = db
        self._path = path
        self._pause = pause
        self._closing = asyncio.Event()
        self._reopening: asyncio.Task[None] | None = None

    @classmethod
    async def open(
        cls, path: Path, *, pause: Callable[[float], Awaitable[None]] = asyncio.sleep
    ) -> LevelDBPresenceStore:
        return cls(await asyncio.to_thread(_open_db, path), path, pause=pause)

    async def load(self, user_id: int) -> tuple[Status, int] | None:
        db = self._usable()
        try:
            raw: bytes | None = db.get(_PREFIX + _KEY.pack(user_id), verify_checksums=True)
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
        db = self._usable()
        try:
            db.put(_PREFIX + _KEY.pack(user_id), value)
        except (plyvel.Error, RuntimeError) as error:
            self._start_reopening(db)
            raise PresenceStoreError(str(error)) from None

    async def close(self) -> None:
        self._closing.set()
        if self._reopening is not None:
            await self._reopening
        db, self._db = self._db, None
        if db is not None:
            db.close()

    def _usable(self) -> Any:
        if self._db is None:
            raise PresenceStoreError(
                "the presence store is closed"
                if self._closing.is_set()
                else "the presence store is reopening after a failed write"
            )
        return self._db

    def _start_reopening(self, db: Any) -> None:
        # Every use is on the event loop, so once `_db` is None nothing else
        # touches the database that is being closed.
        self._db = None
        self._reopening = asyncio.create_task(self._reopen(db), name="presence-store-reopen")

    async def _reopen(self, db: Any) -> None:
        await asyncio.to_thread(db.close)
        failures = 0
        while not self._closing.is_set():
            try:
                self._db = await asyncio.to_thread(_open_db, self._path)
            except PresenceStoreError as error:
                failures += 1
                wait = min(REOPEN_LONGEST_WAIT, REOPEN_FIRST_WAIT * 2 ** (failures - 1))
                _log.warning(
                    "presence_store_reopen_failed",
                    error=str(error),
                    failures=failures,
                    retry_in=wait,
                )
                await self._closing_within(wait)
            else:
                _log.info("presence_store_reopened", failed_attempts=failures)
                return

    async def _closing_within(self, seconds: float) -> None:
        pause = asyncio.ensure_future(self._pause(seconds))
        closing = asyncio.ensure_future(self._closing.wait())
        try:
            await asyncio.wait((pause, closing), return_when=asyncio.FIRST_COMPLETED)
        finally:
            pause.cancel()
            closing.cancel()


class PresenceStoreInUse(PresenceStoreError):
    """Another process holds the presence database's lock."""


class PresenceStoreOutOfResources(PresenceStoreError):
    """The system ran out of open files, memory or disk space; the store itself is whole."""


def _open_db(path: Path) -> Any:
    # Created only where nothing is: LevelDB told to create a database in a
    # folder that lost its CURRENT file would delete the tables it has.
    try:
        fresh = not path.exists() or not any(path.iterdir())
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        shortage = error.errno in (errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOSPC)
        kind = PresenceStoreOutOfResources if shortage else PresenceStoreError
        raise kind(f"{path} cannot be opened: {error.strerror}") from None
    try:
        return plyvel.DB(
            str(path), create_if_missing=fresh, paranoid_checks=True, max_open_files=MAX_OPEN_FILES
        )
    except plyvel.Error as error:
        reason = error.args[0].decode(errors="replace") if error.args else str(error)
        if isinstance(error, plyvel.IOError) and any(short in reason for short in _SHORTAGES):
            raise PresenceStoreOutOfResources(f"{path} cannot be opened now: {reason}") from None
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
