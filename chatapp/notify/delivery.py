"""Delivery: a bounded queue per provider, drained by worker tasks, with retries.

Nothing upstream ever waits here. `put` either queues a delivery or drops it
(counted), so a provider that hangs or is down fills its own queue and nothing
else; each attempt is cut off by a timeout, and a retry waits off the workers,
on a timer, so a backlog of retries never holds up fresh notifications.

Outcomes are counted by provider: `sent`, `failed` (given up), `retried`,
`dropped` (the queue was full) and `refused` (the target reaches a private or
local address the server will not connect to; never retried).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp
import structlog

from chatapp.accounts import PushTarget
from chatapp.notify.notification import Notification
from chatapp.notify.provider import DeliveryFailed, PushProvider, TargetGone
from chatapp.observability import Metrics

log = structlog.get_logger(__name__)

TargetGoneHandler = Callable[[PushTarget], Awaitable[None]]


class TargetRefused(DeliveryFailed):
    """The server will not reach this target (a private or local address); never retried.

    Providers raise it for targets stored before the check that refuses them at
    registration, and for names that resolve to such an address at delivery.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


@dataclass
class Delivery:
    target: PushTarget
    notification: Notification
    on_finished: Callable[[], Awaitable[None]] | None = None
    """Called once the delivery's fate is final: sent, dropped or given up (not on a retry)."""
    attempt: int = 0


@dataclass(frozen=True)
class RetryPolicy:
    """`retries` more attempts after the first, waiting base·2ⁿ (at most `max`), jittered."""

    retries: int
    base_seconds: float
    max_seconds: float

    def delay(self, attempt: int) -> float:
        """The wait before retry number `attempt + 1`: half fixed, half random (equal jitter)."""
        ceiling = min(self.max_seconds, self.base_seconds * 2.0**attempt)
        return ceiling / 2 + random.uniform(0, ceiling / 2)


class DeliveryQueue:
    """Deliveries through one provider."""

    def __init__(
        self,
        provider: PushProvider,
        metrics: Metrics,
        *,
        size: int,
        workers: int,
        timeout_seconds: float,
        retry: RetryPolicy,
        on_target_gone: TargetGoneHandler,
    ) -> None:
        self._provider = provider
        self._queue: asyncio.Queue[Delivery] = asyncio.Queue(size)
        self._workers = workers
        self._timeout = timeout_seconds
        self._retry = retry
        self._on_target_gone = on_target_gone
        self._tasks: list[asyncio.Task[None]] = []
        self._timers: set[asyncio.TimerHandle] = set()
        self._counted = {
            outcome: metrics.push_notifications.labels(provider=provider.name, outcome=outcome)
            for outcome in ("sent", "failed", "retried", "dropped", "refused")
        }
        self.dropped = 0

    def put(self, delivery: Delivery) -> None:
        """Queue a delivery, or drop it (counted) when the queue is full. Never waits.

        A dropped delivery is not finished: in a cluster another node takes
        its window over when the lease runs out.
        """
        try:
            self._queue.put_nowait(delivery)
        except asyncio.QueueFull:
            self.dropped += 1
            self._counted["dropped"].inc()
            # A hung provider drops many; one line per hundred is enough to see it.
            if self.dropped % 100 == 1:
                log.warning("push_dropped", provider=self._provider.name, dropped=self.dropped)

    async def idle(self) -> None:
        """Wait until every queued delivery has had its attempt (a retry may still wait)."""
        await self._queue.join()

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._work(), name=f"push:{self._provider.name}:{n}")
            for n in range(self._workers)
        ]

    async def close(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def _work(self) -> None:
        while True:
            delivery = await self._queue.get()
            final = False
            try:
                final = await self._attempt(delivery)
            except Exception:  # a bug in a provider must not end the worker
                final = True
                self._counted["failed"].inc()
                log.exception("push_failed", provider=self._provider.name)
            finally:
                try:
                    if final:
                        await self._finish(delivery)
                finally:
                    self._queue.task_done()

    async def _finish(self, delivery: Delivery) -> None:
        if delivery.on_finished is None:
            return
        try:
            await delivery.on_finished()
        except Exception:  # the window is then delivered again after its lease
            log.exception("push_not_marked_finished", device_id=delivery.target.device_id)

    async def _attempt(self, delivery: Delivery) -> bool:
        """One attempt; True when the delivery's fate is final, False when a retry waits."""
        target = delivery.target
        try:
            async with asyncio.timeout(self._timeout):
                await self._provider.send(target.target, delivery.notification)
        except TargetGone as gone:
            self._counted["failed"].inc()
            log.info("push_target_gone", device_id=target.device_id, reason=str(gone))
            try:
                await self._on_target_gone(target)
            except Exception:
                log.exception("push_target_not_forgotten", device_id=target.device_id)
        except TargetRefused as refusal:
            self._counted["refused"].inc()
            log.warning(
                "push_refused",
                provider=self._provider.name,
                device_id=target.device_id,
                reason=str(refusal),
            )
        except DeliveryFailed as failure:
            return self._failed(delivery, str(failure), retryable=failure.retryable)
        except aiohttp.InvalidURL as error:  # the client will never take this URL
            return self._failed(delivery, repr(error), retryable=False)
        except (TimeoutError, aiohttp.ClientError, OSError) as error:
            return self._failed(delivery, repr(error), retryable=True)
        else:
            self._counted["sent"].inc()
            log.debug("push_sent", provider=self._provider.name, device_id=target.device_id)
        return True

    def _failed(self, delivery: Delivery, reason: str, *, retryable: bool) -> bool:
        """Count a failed attempt and retry it later if it may; True when given up."""
        fields = {
            "provider": self._provider.name,
            "device_id": delivery.target.device_id,
            "attempt": delivery.attempt + 1,
            "reason": reason,
        }
        if not retryable or delivery.attempt >= self._retry.retries:
            self._counted["failed"].inc()
            log.warning("push_failed", **fields)
            return True
        self._counted["retried"].inc()
        delay = self._retry.delay(delivery.attempt)
        log.info("push_retrying", delay_s=round(delay, 3), **fields)
        delivery.attempt += 1
        timer: asyncio.TimerHandle | None = None

        def requeue() -> None:
            if timer is not None:
                self._timers.discard(timer)
            self.put(delivery)

        timer = asyncio.get_running_loop().call_later(delay, requeue)
        self._timers.add(timer)
        return False
