"""Stopping background tasks that talk to Redis.

The client library can swallow a cancellation that lands while it waits on
the socket (it retries what it takes for a dropped connection), so one
`cancel()` may not stop a task: `stop` cancels again until the tasks are done.
Loops that are almost always inside a Redis call also check a flag of their own.
"""

from __future__ import annotations

import asyncio

_AGAIN_AFTER = 0.1


async def stop(*tasks: asyncio.Task[None] | None) -> None:
    """Cancel the tasks and wait until every one of them has ended."""
    pending = {task for task in tasks if task is not None and not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=_AGAIN_AFTER)
