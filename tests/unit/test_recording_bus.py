"""RecordingBus records every event and runs subscribers only when the test says so."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from chatapp.bus import Bus
from chatapp.testing.fakes import RecordingBus


class Ping(BaseModel):
    n: int


class Pong(BaseModel):
    n: int


async def test_events_wait_for_deliver_and_arrive_in_order() -> None:
    """publish only records; deliver hands each event to its type's subscribers, in order."""
    bus = RecordingBus()
    got: list[BaseModel] = []

    async def on_ping(event: Ping) -> None:
        got.append(event)

    as_bus: Bus = bus  # mypy checks that it keeps the Bus protocol
    as_bus.subscribe(Ping, on_ping, name="pings")
    bus.publish(Ping(n=1))
    bus.publish(Pong(n=2))
    bus.publish(Ping(n=3))

    assert got == []
    assert len(bus.undelivered) == 3
    assert await bus.deliver() == 3
    assert got == [Ping(n=1), Ping(n=3)]
    assert bus.undelivered == []
    assert await bus.deliver() == 0
    assert bus.of_type(Pong) == [Pong(n=2)]


async def test_subscribe_all_gets_several_types_in_their_common_order() -> None:
    """One handler for two types sees them interleaved as published."""
    bus = RecordingBus()
    got: list[BaseModel] = []

    async def on_any(event: BaseModel) -> None:
        got.append(event)

    bus.subscribe_all((Ping, Pong), on_any, name="both")
    bus.publish(Pong(n=1))
    bus.publish(Ping(n=2))
    await bus.deliver()
    assert got == [Pong(n=1), Ping(n=2)]
    assert bus.subscribers(Ping) == ["both"]


async def test_a_subscriber_gets_only_what_is_published_after_it_subscribed() -> None:
    """As with the in-process bus, earlier events are not replayed to a late subscriber."""
    bus = RecordingBus()
    bus.publish(Ping(n=1))
    got: list[Ping] = []

    async def on_ping(event: Ping) -> None:
        got.append(event)

    bus.subscribe(Ping, on_ping, name="late")
    bus.publish(Ping(n=2))
    await bus.deliver()
    assert got == [Ping(n=2)]


async def test_events_published_by_subscribers_are_delivered_in_the_same_call() -> None:
    """deliver() runs until nothing is left, including events its subscribers published."""
    bus = RecordingBus()
    pongs: list[Pong] = []

    async def answer(event: Ping) -> None:
        bus.publish(Pong(n=event.n))

    async def on_pong(event: Pong) -> None:
        pongs.append(event)

    bus.subscribe(Ping, answer, name="answer")
    bus.subscribe(Pong, on_pong, name="pongs")
    bus.publish(Ping(n=7))
    assert await bus.deliver() == 2
    assert pongs == [Pong(n=7)]


async def test_a_failing_subscriber_is_recorded_and_raised_unless_told_otherwise() -> None:
    """By default deliver raises the subscriber's error; raise_errors=False logs it like the
    real bus and goes on to the next event."""

    async def broken(event: Ping) -> None:
        raise RuntimeError(f"broken on {event.n}")

    strict = RecordingBus()
    strict.subscribe(Ping, broken, name="broken")
    strict.publish(Ping(n=1))
    with pytest.raises(RuntimeError, match="broken on 1"):
        await strict.deliver()

    lenient = RecordingBus(raise_errors=False)
    lenient.subscribe(Ping, broken, name="broken")
    lenient.publish(Ping(n=1))
    lenient.publish(Ping(n=2))
    assert await lenient.deliver() == 2
    assert [(name, event) for name, event, _ in lenient.failures] == [
        ("broken", Ping(n=1)),
        ("broken", Ping(n=2)),
    ]
