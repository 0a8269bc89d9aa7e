"""The in-process bus delivers to every subscriber, whenever it subscribed."""

from __future__ import annotations

import asyncio

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
