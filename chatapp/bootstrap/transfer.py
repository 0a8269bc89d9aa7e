"""`chatapp export` and `chatapp import`: a deployment to JSON lines and back (see `archive`).

Embedded: the data folder, which no server may be running on (the message
store's lock). Cluster: the PostgreSQL database the settings name.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path
from typing import TextIO

from chatapp.bootstrap.archive import (
    MessageSource,
    MessageTarget,
    Progress,
    export_lines,
    import_lines,
)
from chatapp.bootstrap.archive_sqlite import open_embedded_source, open_embedded_target
from chatapp.bootstrap.archive_tables import TableReader, TableRows
from chatapp.clock import SystemClock
from chatapp.config import Settings
from chatapp.errors import StartupRefused
from chatapp.messaging import InboxRecord, SendRecord, StoredMessage
from chatapp.messaging.adapters.leveldb_load import LevelDBLoader


async def export_deployment(settings: Settings, path: Path) -> Progress:
    """Write the deployment to `path` (a new file); what was written, by kind."""
    progress = Progress("exported")
    rows: TableReader
    messages: MessageSource
    async with contextlib.AsyncExitStack() as stack:
        if settings.cluster_mode:
            from chatapp.bootstrap.archive_postgres import open_cluster_source

            rows = messages = await open_cluster_source(settings, stack)
        else:
            rows, messages = await open_embedded_source(settings.data_dir, SystemClock(), stack)
        partial = path.with_name(path.name + ".partial")
        try:
            # Owner-only, like the data folder: the file holds password and token hashes.
            out = open_private(partial)
            with out:
                await export_lines(rows, messages, out, progress)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        partial.replace(path)
    progress.done()
    return progress


async def import_deployment(settings: Settings, path: Path) -> Progress:
    """Load `path` into an empty deployment; what was read, by kind."""
    progress = Progress("imported")
    rows: TableRows
    target: MessageTarget
    try:
        source = path.open(encoding="utf-8")
    except OSError as failure:
        raise StartupRefused(f"cannot read {path}: {failure.strerror}") from None
    async with contextlib.AsyncExitStack() as stack:
        stack.enter_context(source)
        if settings.cluster_mode:
            from chatapp.bootstrap.archive_postgres import open_cluster_target

            rows, target = await open_cluster_target(settings, stack)
        else:
            rows, loader = await open_embedded_target(settings.data_dir, SystemClock(), stack)
            target = LevelDBTarget(loader)
        await import_lines(source, rows, target, progress)
    progress.done()
    return progress


def open_private(path: Path) -> TextIO:
    """`path` made anew for writing, readable by its owner only."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError as failure:
        raise StartupRefused(f"cannot write {path}: {failure.strerror}") from None
    return os.fdopen(descriptor, "w", encoding="utf-8")


class LevelDBTarget:
    """`MessageTarget` on the loader of a new LevelDB store; its writes run off the loop."""

    def __init__(self, loader: LevelDBLoader) -> None:
        self._loader = loader

    async def put_messages(self, messages: list[StoredMessage]) -> None:
        await asyncio.to_thread(self._loader.put_messages, messages)

    async def put_inbox(self, entries: list[InboxRecord]) -> None:
        await asyncio.to_thread(self._loader.put_inbox, entries)

    async def put_sends(self, sends: list[SendRecord]) -> None:
        await asyncio.to_thread(self._loader.put_sends, sends)

    async def finish(self) -> None:
        await asyncio.to_thread(self._loader.finish)
