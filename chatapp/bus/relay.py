"""A bus for a short-lived command: it keeps what is published, to relay it afterwards."""

from __future__ import annotations

from pydantic import BaseModel

from chatapp.bus.protocol import EventT, Subscriber


class RelayBus:
    """Collects events; nothing in the command's own process subscribes.

    The CLI's modules publish here as the server's would; once the command's
    writes are done, the events are relayed to the running server (the
    control socket, or a cluster's shared bus).
    """

    def __init__(self) -> None:
        self.published: list[BaseModel] = []

    def publish(self, event: BaseModel) -> None:
        self.published.append(event)

    def subscribe(
        self, event_type: type[EventT], handler: Subscriber[EventT], *, name: str
    ) -> None:
        raise TypeError("a relay bus delivers to the running server, not to subscribers here")

    def subscribe_all(
        self,
        event_types: tuple[type[BaseModel], ...],
        handler: Subscriber[BaseModel],
        *,
        name: str,
    ) -> None:
        raise TypeError("a relay bus delivers to the running server, not to subscribers here")
