"""The event bus: how a module learns what another module did."""

from chatapp.bus.codec import EventCodec, UnknownEvent
from chatapp.bus.in_process import InProcessBus
from chatapp.bus.protocol import BatchSubscriber, Bus, BusStats, EventT, Subscriber
from chatapp.bus.relay import RelayBus

__all__ = [
    "BatchSubscriber",
    "Bus",
    "BusStats",
    "EventCodec",
    "EventT",
    "InProcessBus",
    "RelayBus",
    "Subscriber",
    "UnknownEvent",
]
