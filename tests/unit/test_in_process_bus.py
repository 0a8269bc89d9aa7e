"""The in-process bus delivers to every subscriber, whenever it subscribed."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from pydantic import BaseModel

from chatapp.accounts import DeviceRevoked
from chatapp.bus import InProcessBus


async def test_a_subscriber_that_comes_after_start_is_served() -> None:
    """Subscribing to a started bus with no subscribers yet still gets a task and the events."""
    bus = InProcessBus()
    await bus.start()
    heard: list[BaseModel] = []

    async def record(event: DeviceRevoked) -> None:
        heard.append(event)

    bus.subscribe(DeviceRevoked, record, name="late")
    bus.publish(DeviceRevoked(user_id=1, device_id=2))
    async with asyncio.timeout(2):  # without a task for it, the event would wait forever
        await bus.drain()
    await bus.close()
    assert heard == [DeviceRevoked(user_id=1, device_id=2)]


async def test_a_failing_subscriber_is_logged_and_the_next_event_still_arrives() -> None:
    """A subscriber that raises loses that event only; its queue goes on."""
    bus = InProcessBus()
    heard: list[int] = []

    async def flaky(event: DeviceRevoked) -> None:
        if event.device_id == 1:
            raise RuntimeError("boom")
        heard.append(event.device_id)

    bus.subscribe(DeviceRevoked, flaky, name="flaky")
    await bus.start()
    bus.publish(DeviceRevoked(user_id=1, device_id=1))
    bus.publish(DeviceRevoked(user_id=1, device_id=2))
    await bus.drain()
    await bus.close()
    assert heard == [2]


async def test_a_full_queue_drops_the_event_for_that_subscriber_only() -> None:
    """With a queue of one, a third event for a subscriber busy with the first while the
    second waits is dropped; another subscriber, not busy, gets all three; the backlog
    counts what is queued or being handled."""
    bus = InProcessBus(queue_capacity=1)
    release = asyncio.Event()
    slow_heard: list[int] = []
    fast_heard: list[int] = []

    async def slow(event: DeviceRevoked) -> None:
        await release.wait()
        slow_heard.append(event.device_id)

    async def fast(event: DeviceRevoked) -> None:
        fast_heard.append(event.device_id)

    bus.subscribe(DeviceRevoked, slow, name="slow")
    bus.subscribe(DeviceRevoked, fast, name="fast")
    await bus.start()
    for device_id in (1, 2):
        bus.publish(DeviceRevoked(user_id=1, device_id=device_id))
        await asyncio.sleep(0)  # slow takes the first and waits; fast handles each
    bus.publish(DeviceRevoked(user_id=1, device_id=3))

    assert bus.backlog() == 2 + 1
    release.set()
    async with asyncio.timeout(2):
        await bus.drain()
    await bus.close()
    assert (slow_heard, fast_heard) == ([1, 2], [1, 2, 3])
    assert bus.backlog() == 0


async def test_a_batch_subscriber_gets_what_queued_meanwhile_at_most_its_limit() -> None:
    """Events published while a batch subscriber is busy reach it together, in order, at
    most `most` at a time; drain waits for the batch being handled."""
    bus = InProcessBus()
    release = asyncio.Event()
    batches: list[list[int]] = []

    async def record(events: Sequence[BaseModel]) -> None:
        batches.append([event.device_id for event in events if isinstance(event, DeviceRevoked)])
        await release.wait()

    bus.subscribe_batches((DeviceRevoked,), record, name="batches", most=2)
    await bus.start()
    bus.publish(DeviceRevoked(user_id=1, device_id=1))
    await asyncio.sleep(0)  # the first is taken alone, and the subscriber waits
    for device_id in (2, 3, 4):
        bus.publish(DeviceRevoked(user_id=1, device_id=device_id))
    assert bus.backlog() == 4
    release.set()
    async with asyncio.timeout(2):
        await bus.drain()
    await bus.close()
    assert batches == [[1], [2, 3], [4]]
    assert bus.backlog() == 0
