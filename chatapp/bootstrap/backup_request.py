"""The `backup` request a running server answers on its control socket (see `backup`).

Apart from `backup`, the command, so that a serving server does not load the
command's code (the full check, the stopped-folder copy) at start-up.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import structlog

from chatapp.bootstrap.backup_copy import copy_folder
from chatapp.bus.control_socket import Request, RequestRefused
from chatapp.messaging import MessageStore, MessageStoreError
from chatapp.messaging.adapters import LevelDBMessageStore

_log = structlog.get_logger("chatapp.bootstrap.backup")


def backup_requests(data_dir: Path, messages: MessageStore) -> dict[str, Request]:
    """What the running server's control socket answers: `backup`, copying its own stores."""
    if not isinstance(messages, LevelDBMessageStore):
        return {}
    store = messages
    running = asyncio.Lock()

    async def backup(request: dict[str, Any]) -> dict[str, Any]:
        target = _requested_target(request)
        if running.locked():
            raise RequestRefused("a backup of this server is being taken already; wait for it")
        async with running:
            started = time.monotonic()
            try:
                summary = await copy_folder(data_dir, target, store.copy_to)
            except (MessageStoreError, OSError, sqlite3.Error) as failure:
                raise RequestRefused(f"the copy failed: {failure}") from None
            seconds = round(time.monotonic() - started, 1)
            _log.info("backup_taken", target=str(target), seconds=seconds, **_counts(summary))
            return {"summary": summary}

    return {"backup": backup}


def _requested_target(request: dict[str, Any]) -> Path:
    raw = request.get("target")
    if not isinstance(raw, str) or not os.path.isabs(raw):
        raise RequestRefused("target: the absolute path of an empty folder")
    target = Path(raw)
    if not target.is_dir() or any(target.iterdir()):
        raise RequestRefused(f"{target} is not an empty folder")
    return target


def _counts(summary: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in summary.items() if isinstance(value, int)}
