"""How many bytes a folder takes, measured off the event loop and at most once a minute.

The data folder holds LevelDB's tables and logs, SQLite's files and the
search index: a few thousand files at most, so a walk costs milliseconds in
a thread. It is still disk work, so an admin page that polls (or many
admins at once) shares one walk and its answer for `max_age_s`.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from chatapp.clock import Clock

T = TypeVar("T")
OffLoop = Callable[[Callable[[], T]], Awaitable[T]]


class DiskUsage:
    """The bytes under `folder`, cached for `max_age_s` seconds of `clock`'s monotonic time."""

    def __init__(
        self,
        folder: Path,
        clock: Clock,
        *,
        max_age_s: float = 60.0,
        off_loop: OffLoop[int | None] | None = None,
    ) -> None:
        self._folder = folder
        self._clock = clock
        self._max_age_s = max_age_s
        self._off_loop: OffLoop[int | None] = off_loop or asyncio.to_thread
        self._measured: tuple[float, int | None] | None = None
        self._walking: asyncio.Future[int | None] | None = None

    async def bytes_used(self) -> int | None:
        """The last measure if fresh, else a new one (callers meanwhile wait for the same)."""
        if self._measured is not None:
            at, size = self._measured
            if self._clock.monotonic() - at < self._max_age_s:
                return size
        if self._walking is None:
            self._walking = asyncio.ensure_future(self._measure())
        return await asyncio.shield(self._walking)

    async def _measure(self) -> int | None:
        try:
            size = await self._off_loop(lambda: folder_bytes(self._folder))
            self._measured = (self._clock.monotonic(), size)
            return size
        finally:
            self._walking = None


def folder_bytes(folder: Path) -> int | None:
    """The bytes of every file under `folder` (allocated blocks, as `du` counts); None when
    the folder cannot be read. Files that vanish during the walk (LevelDB compacting) are
    skipped."""
    total = 0
    pending = [folder]
    try:
        os.stat(folder)
    except OSError:
        return None
    while pending:
        try:
            entries = list(os.scandir(pending.pop()))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    pending.append(Path(entry.path))
                elif entry.is_file(follow_symlinks=False):
                    total += _allocated(entry.stat(follow_symlinks=False))
            except OSError:
                continue
    return total


def _allocated(stat: os.stat_result) -> int:
    # st_blocks is in 512-byte units on every POSIX system; a sparse file
    # (SQLite's WAL index) takes less than its size.
    blocks = getattr(stat, "st_blocks", None)
    return stat.st_size if blocks is None else blocks * 512
