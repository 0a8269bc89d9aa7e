"""`chatapp restore DIR`: a backup (made by `chatapp backup`) back into a stopped data folder.

1. The backup must have its manifest (a backup that failed or was cut short
   has none) and is copied into a staging folder inside the data folder
   (`.restoring`, on the same file system, so the last step is renames),
   where `chatapp check`'s full check runs on it.
2. No server may run on the data folder: its control socket must not
   answer and the message store's and presence's LevelDB locks must be
   free; both locks are then held until the end, so that no server starts
   on a folder half restored.
3. A data folder that holds data (a users database, a message store,
   presence, the Web Push key, or anything else but the control socket) is
   refused, unless `--force`: then everything in it is moved, as it was,
   into `before-restore-<time>` inside the data folder (nothing is deleted;
   remove it once the restored server is known good). What is moved aside
   includes derived data, such as a search index, which must be rebuilt
   from the restored messages.
4. The staged entries are renamed into place.

A restored server starts with nobody online (presence is not backed up)
and with every message, device and token the backup holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chatapp.bootstrap.backup import MANIFEST, read_manifest
from chatapp.bootstrap.backup_copy import (
    MESSAGES,
    PRESENCE,
    RESTORE_ASIDE_PREFIX,
    RESTORE_STAGING,
)
from chatapp.bootstrap.maintenance import check_folder
from chatapp.bootstrap.stores import in_use, users_database
from chatapp.bus.control_socket import SOCKET_NAME, server_listens
from chatapp.config import Settings
from chatapp.errors import StartupRefused
from chatapp.messaging.adapters.leveldb_copy import sync_tree

LOCK_FILE = "LOCK"
"""LevelDB's lock file in its folder: an fcntl lock on it is what keeps a second process out."""


class RestoreFailed(Exception):
    """The backup failed its check; nothing in the data folder was changed."""


@dataclass(frozen=True)
class RestoreReport:
    data_dir: Path
    manifest: dict[str, Any]
    aside: Path | None
    """Where what the folder held before went (None when it held nothing)."""


async def restore_backup(settings: Settings, source: Path, *, force: bool) -> RestoreReport:
    """Restore the backup in `source` into the stopped data folder (see the module)."""
    if settings.cluster_mode:
        raise StartupRefused(
            "a cluster's data is in PostgreSQL: restore it with PostgreSQL's own tools"
            " (pg_restore or psql, into an empty database, before the nodes start)"
        )
    source, data_dir = await asyncio.to_thread(_absolute, source, settings.data_dir)
    manifest = read_manifest(source)
    names = _copied(manifest, source)
    await _refuse_if_served(data_dir)
    held = _entries_with_data(data_dir)
    if held and not force:
        raise StartupRefused(
            f"{data_dir} holds data ({', '.join(held)}); restore replaces it only with --force,"
            f" which moves it into {data_dir}/{RESTORE_ASIDE_PREFIX}<time>"
        )
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    staging = data_dir / RESTORE_STAGING
    shutil.rmtree(staging, ignore_errors=True)  # left by a restore that was stopped
    try:
        await asyncio.to_thread(_stage, source, staging, names)
        checked = await check_folder(staging)
        if not checked.whole:
            raise RestoreFailed(
                f"the backup in {source} failed its check, so nothing was restored: "
                + "; ".join(checked.lines)
            )
        await _refuse_if_served(data_dir)
        with _locked(data_dir / MESSAGES, data_dir), _locked(data_dir / PRESENCE, data_dir):
            aside = _move_aside(data_dir) if _entries_with_data(data_dir) else None
            _move_in(staging, data_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return RestoreReport(data_dir=data_dir, manifest=manifest, aside=aside)


def _copied(manifest: dict[str, Any], source: Path) -> list[str]:
    """The entries the manifest says the backup holds (nothing else in its folder is taken)."""
    names = manifest.get("copied")
    if not isinstance(names, list) or MESSAGES not in names:
        raise StartupRefused(f"{source}/{MANIFEST} does not list the backup's message store")
    for name in names:
        if not isinstance(name, str) or Path(name).name != name or name in ("", ".", ".."):
            raise StartupRefused(f"{source}/{MANIFEST} lists {name!r}, not a file of a backup")
    return names


def _stage(source: Path, staging: Path, names: list[str]) -> None:
    staging.mkdir(mode=0o700)
    for name in names:
        entry = source / name
        if not entry.exists():
            raise RestoreFailed(f"{entry} is missing, although the backup's manifest lists it")
        if entry.is_dir():
            shutil.copytree(entry, staging / entry.name)
            sync_tree(staging / entry.name)
        else:
            shutil.copy2(entry, staging / entry.name)
            os.chmod(staging / entry.name, 0o600)
    sync_tree(staging)


def _absolute(*paths: Path) -> tuple[Path, ...]:
    return tuple(path.resolve() for path in paths)


async def _refuse_if_served(data_dir: Path) -> None:
    if await server_listens(data_dir):
        raise StartupRefused(f"a server runs on {data_dir}: stop it first")
    for folder in (data_dir / MESSAGES, data_dir / PRESENCE):
        with _locked(folder, data_dir):
            pass


@contextlib.contextmanager
def _locked(folder: Path, data_dir: Path) -> Iterator[None]:
    """Hold the LevelDB lock of `folder` (if it is a store) as LevelDB takes it: fcntl."""
    path = folder / LOCK_FILE
    try:
        descriptor = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        yield
        return
    try:
        try:
            fcntl.lockf(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise StartupRefused(in_use(data_dir)) from None
        yield
    finally:
        os.close(descriptor)  # releases the lock


def _entries_with_data(data_dir: Path) -> list[str]:
    """What in `data_dir` a restore would replace: everything but the control socket."""
    if not data_dir.exists():
        return []
    return sorted(
        entry.name
        for entry in data_dir.iterdir()
        if entry.name not in (SOCKET_NAME, RESTORE_STAGING)
        and not entry.name.startswith(RESTORE_ASIDE_PREFIX)
        and not (entry.is_dir() and not any(entry.iterdir()))
    )


def _move_aside(data_dir: Path) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    aside = data_dir / f"{RESTORE_ASIDE_PREFIX}{stamp}"
    aside.mkdir(mode=0o700)
    for name in _entries_with_data(data_dir):
        (data_dir / name).rename(aside / name)
    (data_dir / SOCKET_NAME).unlink(missing_ok=True)
    _sync_folder(aside)
    return aside


def _move_in(staging: Path, data_dir: Path) -> None:
    # The message store last: until it is in place, a server starting here finds
    # no message store beside a users database with channels, and refuses.
    names = sorted(entry.name for entry in staging.iterdir())
    names.sort(key=lambda name: name == MESSAGES)
    for name in names:
        target = data_dir / name
        if target.is_dir() and not any(target.iterdir()):
            target.rmdir()  # an empty folder left behind, such as a store never opened
        (staging / name).rename(target)
    _sync_folder(data_dir)
    if not users_database(data_dir).exists():
        raise RestoreFailed(f"{users_database(data_dir)} is missing after the restore")


def _sync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
