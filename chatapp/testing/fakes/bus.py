"""A `Bus` that records what is published and hands it to subscribers only when told."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from chatapp.bus.protocol import EventT, Subscriber


@dataclass(frozen=True, slots=True)
class _Subscription:
    name: str
    event_types: tuple[type[BaseModel], ...]
    handler: Callable[[Any], Awaitable[None]]
    since: int
    """Index in `published` of the first event this subscriber may get."""


class RecordingBus:
    """`Bus` for tests: `published` holds every event, in order; `deliver()` runs subscribers.

    `publish` only records, so a test decides when subscribers run: `await
    bus.deliver()` hands each event not yet delivered to the subscribers of
    its exact type, one event at a time, in publication order, including
    events the subscribers publish meanwhile. As with the in-process bus, a
    subscriber receives only events published after it subscribed.

    A subscriber that raises is recorded in `failures`. The real bus logs and
    skips it; this one, by default (`raise_errors=True`), raises it from
    `deliver` too, so a failing subscriber fails the test.
    """

    def __init__(self, *, raise_errors: bool = True) -> None:
        self.published: list[BaseModel] = []
        self.failures: list[tuple[str, BaseModel, Exception]] = []
        self.raise_errors = raise_errors
        self._subscriptions: list[_Subscription] = []
        self._delivered = 0

    def publish(self, event: BaseModel) -> None:
        """Record the event; never blocks, never raises."""
        self.published.append(event)

    def subscribe(
        self, event_type: type[EventT], handler: Subscriber[EventT], *, name: str
    ) -> None:
        self.subscribe_all((event_type,), handler, name=name)

    def subscribe_all(
        self,
        event_types: tuple[type[BaseModel], ...],
        handler: Callable[[Any], Awaitable[None]],
        *,
        name: str,
    ) -> None:
        self._subscriptions.append(
            _Subscription(name, tuple(event_types), handler, since=len(self.published))
        )

    async def deliver(self) -> int:
        """Run the subscribers on every event not delivered yet; returns how many events."""
        count = 0
        while self._delivered < len(self.published):
            index = self._delivered
            event = self.published[index]
            # Moved first, so a subscriber that calls deliver() does not repeat this event.
            self._delivered += 1
            count += 1
            for subscription in list(self._subscriptions):
                if subscription.since <= index and type(event) in subscription.event_types:
                    await self._run(subscription, event)
        return count

    @property
    def undelivered(self) -> list[BaseModel]:
        """The events `deliver` has not handed out yet."""
        return self.published[self._delivered :]

    def of_type(self, event_type: type[EventT]) -> list[EventT]:
        """The published events of exactly this type, in order."""
        return [e for e in self.published if isinstance(e, event_type) and type(e) is event_type]

    def subscribers(self, event_type: type[BaseModel]) -> list[str]:
        """The names subscribed to this event type, in the order they subscribed."""
        return [s.name for s in self._subscriptions if event_type in s.event_types]

    async def _run(self, subscription: _Subscription, event: BaseModel) -> None:
        try:
            await subscription.handler(event)
        except Exception as error:
            self.failures.append((subscription.name, event, error))
            if self.raise_errors:
                raise
