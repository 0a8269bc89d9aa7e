"""`chatapp backup DIR`: a consistent copy of a data folder, taken while its server serves.

The message store's folder is locked by the server that runs on it, so the
copy is made inside that server: the command asks it over the control
socket (a `backup` request, which `backup_request` answers when the copy
is written), and when no server runs, the command makes the copy itself,
holding the folder's lock meanwhile so that no server starts on it halfway.
Either way the copy is
made by `backup_copy` (the message store from a snapshot, then SQLite, then
the Web Push key), checked by the command with the full check `chatapp
check` makes, and only then given its manifest, `chatapp-backup.json`
(format, version, times, counts): a folder without one is not a backup,
and `chatapp restore` refuses it.

A cluster keeps its data in PostgreSQL, whose own tools back it up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import structlog

from chatapp.bootstrap.backup_copy import MESSAGES, copy_folder
from chatapp.bootstrap.maintenance import check_folder
from chatapp.bootstrap.stores import in_use
from chatapp.bus.control_socket import (
    ControlUnreachable,
    ask_running_server,
)
from chatapp.config import Settings
from chatapp.errors import StartupRefused
from chatapp.messaging import MessageStoreError
from chatapp.messaging.adapters.leveldb_copy import copy_stopped_store
from chatapp.messaging.adapters.leveldb_layout import DamagedStore, StoreInUse, open_db
from chatapp.messaging.adapters.leveldb_survey import survey
from chatapp.messaging.adapters.leveldb_watermark import read_watermark
from chatapp.version import VERSION

MANIFEST: Final = "chatapp-backup.json"
FORMAT: Final = 1
CLUSTER_REFUSAL: Final = (
    "a cluster's data is in PostgreSQL: back it up with PostgreSQL's own tools"
    " (pg_dump, or a base backup with WAL archiving); see docs/operations.md, 'Backup and restore'"
)

_log = structlog.get_logger(__name__)


class BackupFailed(Exception):
    """The copy could not be made, or failed its check; no backup was written."""


@dataclass(frozen=True)
class BackupReport:
    target: Path
    manifest: dict[str, Any]
    check: list[str]


async def take_backup(settings: Settings, target: Path) -> BackupReport:
    """Back the data folder up into `target` (new or empty); see the module.

    `StartupRefused` for what is refused before anything is copied (a
    cluster, a target that is not empty); `BackupFailed` when the copy
    failed or its check found it damaged (what was written is removed).
    """
    if settings.cluster_mode:
        raise StartupRefused(CLUSTER_REFUSAL)
    data_dir, target, made = await asyncio.to_thread(_prepare_target, settings.data_dir, target)
    began = _now()
    try:
        summary, taken_by = await _copy(data_dir, target)
        # The check reads every record of the copy: at a low priority, it leaves
        # the CPU to the server (and its users) on the same machine.
        with contextlib.suppress(OSError):
            os.nice(10)
        checked = await check_folder(target)
        if not checked.whole:
            raise BackupFailed(
                "the copy failed its check, so it is not a backup: " + "; ".join(checked.lines)
            )
    except BaseException:
        _empty(target, remove=made)
        raise
    manifest = {
        "format": FORMAT,
        "chatapp_version": VERSION,
        "source": str(data_dir),
        "taken_by": taken_by,
        "began_at": _iso(began),
        "began_at_ms": began,
        "finished_at": _iso(finished := _now()),
        "finished_at_ms": finished,
        **summary,
    }
    write_manifest(target, manifest)
    return BackupReport(target=target, manifest=manifest, check=checked.lines)


async def _copy(data_dir: Path, target: Path) -> tuple[dict[str, Any], str]:
    """Copy through the running server, or here when none runs; the summary, and who took it."""
    try:
        answer = await ask_running_server(data_dir, {"request": "backup", "target": str(target)})
    except ControlUnreachable as failure:
        raise BackupFailed(
            f"a server seems to run on {data_dir} but did not answer: {failure}"
        ) from None
    if answer is None:
        return await _copy_stopped_folder(data_dir, target), "this command (no server ran)"
    if not answer.get("ok"):
        raise BackupFailed(f"the running server did not take the backup: {answer.get('error')}")
    summary: dict[str, Any] = answer["summary"]
    return summary, "the running server"


async def _copy_stopped_folder(data_dir: Path, target: Path) -> dict[str, Any]:
    """The copy of a folder no server runs on, its lock held here meanwhile."""
    folder = data_dir / MESSAGES
    if not folder.exists():
        raise StartupRefused(f"{data_dir} has no message store ({folder}): nothing to back up")
    try:
        db = await asyncio.to_thread(open_db, folder)
    except StoreInUse:
        raise StartupRefused(in_use(data_dir)) from None
    except DamagedStore as damage:
        raise StartupRefused(f"{damage}; run `chatapp check`, then `chatapp repair`") from None
    try:
        found = await asyncio.to_thread(survey, db, read_watermark(folder))
        if found.problems:
            problem = found.problems[0]
            raise StartupRefused(f"{problem}; run `chatapp check`, then `chatapp repair`")

        async def copy_messages(copy_to: Path) -> Any:
            return await asyncio.to_thread(copy_stopped_store, db, copy_to)

        try:
            return await copy_folder(data_dir, target, copy_messages)
        except (MessageStoreError, OSError, sqlite3.Error) as failure:
            raise BackupFailed(f"the copy failed: {failure}") from None
    finally:
        await asyncio.to_thread(db.close)


def write_manifest(target: Path, manifest: dict[str, Any]) -> None:
    """Write the manifest whole (beside, then renamed) and make it durable."""
    path = target / MANIFEST
    partial = path.with_name(MANIFEST + ".partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        json.dump(manifest, out, indent=2)
        out.write("\n")
        out.flush()
        os.fsync(out.fileno())
    partial.replace(path)
    folder = os.open(target, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def read_manifest(source: Path) -> dict[str, Any]:
    """The manifest of a backup; `StartupRefused` when `source` is not a complete backup."""
    path = source / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StartupRefused(
            f"{source} is not a complete backup: it has no {MANIFEST} (a backup that failed, or"
            " was cut short, has none)"
        ) from None
    except (OSError, ValueError) as failure:
        raise StartupRefused(f"{path} cannot be read: {failure}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise StartupRefused(f"{path} is of format {found!r}; this version reads {FORMAT}")
    return manifest


def describe(manifest: dict[str, Any]) -> str:
    """One line of what a backup holds."""
    return (
        f"{manifest['messages']} messages, {manifest['inbox_entries']} inbox entries,"
        f" {manifest['users']} users, {manifest['devices']} devices,"
        f" {manifest['channels']} channels"
    )


def _prepare_target(data_dir: Path, target: Path) -> tuple[Path, Path, bool]:
    """Both paths made absolute, the target found empty or made (owner-only: True)."""
    data_dir, target = data_dir.resolve(), target.resolve()
    if target == data_dir or target.is_relative_to(data_dir):
        raise StartupRefused(f"{target} is inside the data folder {data_dir}: choose another")
    made = not target.exists()
    if made:
        target.mkdir(mode=0o700, parents=True)
    elif not target.is_dir():
        raise StartupRefused(f"{target} is not a folder")
    elif any(target.iterdir()):
        raise StartupRefused(f"{target} is not empty: a backup goes into a new folder")
    os.chmod(target, 0o700)  # it holds password and token hashes and the Web Push key
    return data_dir, target, made


def _empty(target: Path, *, remove: bool) -> None:
    """Remove what a failed backup wrote, and the folder when this command made it (one
    that was there may be a mount point)."""
    with contextlib.suppress(FileNotFoundError):
        for entry in target.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
        if remove:
            target.rmdir()


def _now() -> int:
    return time.time_ns() // 1_000_000


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")
