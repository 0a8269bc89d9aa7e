"""When a realtime client connects again: the waits between attempts, and the loop that waits."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import NoReturn

import structlog

# Logged under the name it had before the client was split into modules, so
# that filters on the realtime client's logger keep matching.
log = structlog.get_logger("chatapp.client.realtime")


@dataclass(frozen=True)
class Backoff:
    """Waits between connection attempts: exponential, capped, spread by random jitter."""

    initial: float = 0.5
    maximum: float = 30.0
    multiplier: float = 2.0
    jitter: float = 0.2
    """Each wait is up to this fraction longer or shorter, so clients cut off together
    do not all come back in the same instant."""

    def delay(self, attempt: int) -> float:
        base = min(self.maximum, self.initial * self.multiplier ** min(attempt, 64))
        return max(0.0, base * random.uniform(1 - self.jitter, 1 + self.jitter))


async def keep_connecting(
    connect_once: Callable[[], Awaitable[bool]], backoff: Backoff
) -> NoReturn:
    """Connect, and after each drop wait and connect again, until an exception stops it.

    `connect_once` is True when its connection got as far as `ready`: the
    waits then start again from the shortest.
    """
    attempt = 0
    while True:
        if await connect_once():
            attempt = 0
        delay = backoff.delay(attempt)
        attempt += 1
        log.info("realtime_reconnecting", delay=round(delay, 3))
        await asyncio.sleep(delay)
