"""One Lua script run once per key, all in one pipeline: for the questions asked per turn.

Each run touches one key (its bucket, its user's connections), so the runs
can go to different Redis shards; a Redis that restarted and forgot the
script is taught it again, once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError


async def run_for_each(
    redis: Redis, script: AsyncScript, keys: Sequence[str], args: Sequence[str | int | float]
) -> list[Any]:
    """`script` on each key with the same `args`, in order; one answer each."""
    for attempt in range(2):
        async with redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.evalsha(script.sha, 1, key, *args)
            try:
                return list(await pipe.execute())
            except NoScriptError:
                # Nothing ran: the script is missing for every run alike.
                if attempt:
                    raise
        await redis.script_load(script.script)
    raise AssertionError("unreachable")
