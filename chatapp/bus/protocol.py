"""The bus's contract: publish-subscribe of typed events.

Events are pydantic models that round-trip through JSON, so a bus between
processes (the control socket, Redis, NATS) carries the same events.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from pydantic import BaseModel

EventT = TypeVar("EventT", bound=BaseModel)
Subscriber = Callable[[EventT], Awaitable[None]]
BatchSubscriber = Callable[[Sequence[BaseModel]], Awaitable[None]]
"""Takes the events queued for it together, in publication order: for a subscriber whose
work per event is a round trip that many events can share."""


class Bus(Protocol):
    """Publish-subscribe of typed events."""

    def publish(self, event: BaseModel) -> None:
        """Hand the event to every subscriber of its type; never blocks, never raises."""
        ...

    def subscribe(
        self, event_type: type[EventT], handler: Subscriber[EventT], *, name: str
    ) -> None:
        """Call `handler` for each event of `event_type`, in publication order."""
        ...

    def subscribe_all(
        self,
        event_types: tuple[type[BaseModel], ...],
        handler: Subscriber[BaseModel],
        *,
        name: str,
    ) -> None:
        """One handler for several event types, called in their common publication order."""
        ...


@dataclass(frozen=True, slots=True)
class BusStats:
    """What a running bus has carried, for `/metrics` and for tests that wait for quiet."""

    sent: int = 0
    """Events handed on to other processes (none on an in-process bus)."""
    received: int = 0
    """Events that came from other processes and were handed to local subscribers."""
    backlog: int = 0
    """Events queued or being handled here, or waiting to be sent: 0 when all is quiet."""
