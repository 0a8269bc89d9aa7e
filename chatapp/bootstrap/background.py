"""Work a server starts without waiting for it, stopped with the server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any


def in_background(
    stack: contextlib.AsyncExitStack, work: Coroutine[Any, Any, None], *, name: str
) -> None:
    """Run `work` as a task of its own until it ends, or until `stack` closes, which cancels
    it. `work` handles its own failures: nobody waits for its result."""
    task = asyncio.create_task(work, name=name)

    async def stop() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    stack.push_async_callback(stop)
