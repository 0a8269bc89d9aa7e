"""Who hears which event, and which background tasks run: every subscription in one place."""

from __future__ import annotations

import contextlib
from typing import Protocol

from pydantic import BaseModel

from chatapp.bus import BatchSubscriber, Bus, BusStats, Subscriber
from chatapp.conversations import Conversations
from chatapp.gateway.fanout import FanOut
from chatapp.messaging import MessageAccepted, MessageUpdated
from chatapp.notify import BATCH_MOST as NOTIFIER_BATCH_MOST
from chatapp.notify import OBSERVED_EVENTS as NOTIFIER_EVENTS
from chatapp.notify import Push
from chatapp.presence import OBSERVED_EVENTS as PRESENCE_EVENTS
from chatapp.presence import PresenceKeeper
from chatapp.search import OBSERVED_EVENTS as SEARCH_EVENTS
from chatapp.search import Indexer
from chatapp.social import ChannelChanged, Friends, FriendshipChanged, Social
from chatapp.social.sender_reads import SenderReadMarks


def subscribe_module_state(
    bus: Bus,
    *,
    social: Social,
    friends: Friends,
    sender_reads: SenderReadMarks,
    presence: PresenceKeeper,
    conversations: Conversations | None = None,
) -> None:
    """What the modules keep in memory follows the bus, whoever published."""
    bus.subscribe(MessageAccepted, sender_reads.message_accepted, name="social.sender_reads")
    if conversations is not None:
        bus.subscribe(MessageUpdated, conversations.message_updated, name="conversations")
    bus.subscribe(ChannelChanged, social.channel_changed, name="social.membership")
    bus.subscribe(FriendshipChanged, friends.friendship_changed, name="social.friends")
    bus.subscribe_all(PRESENCE_EVENTS, presence.observe, name="presence")


def subscribe_modules(
    bus: Bus,
    *,
    social: Social,
    friends: Friends,
    sender_reads: SenderReadMarks,
    presence: PresenceKeeper,
    push: Push,
    fan_out: FanOut,
    subscribe_push: SubscribeBatches,
    conversations: Conversations | None = None,
) -> None:
    """`subscribe_push` is how the notifier hears events, in batches: in a cluster, only
    the events of its own node, so that each notification is sent by one node."""
    subscribe_module_state(
        bus,
        social=social,
        friends=friends,
        sender_reads=sender_reads,
        presence=presence,
        conversations=conversations,
    )
    if push.enabled:
        subscribe_push(
            NOTIFIER_EVENTS, push.notifier.observe_many, name="notify", most=NOTIFIER_BATCH_MOST
        )
    fan_out.subscribe(bus)


def subscribe_search(bus: Bus, indexer: Indexer, subscribe_own: SubscribeAll | None) -> None:
    """The search index follows the messages. In a cluster every node writes the events
    it published itself (`subscribe_own`), so each is written once."""
    (subscribe_own or bus.subscribe_all)(SEARCH_EVENTS, indexer.observe, name="search")


class Startable(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...


class RunningBus(Bus, Startable, Protocol):
    """A bus the composition root starts and stops (in-process, or Redis between nodes)."""

    def stats(self) -> BusStats:
        """What it has carried so far, for `/metrics`."""
        ...


class SubscribeAll(Protocol):
    def __call__(
        self, event_types: tuple[type[BaseModel], ...], handler: Subscriber[BaseModel], *, name: str
    ) -> None: ...


class SubscribeBatches(Protocol):
    def __call__(
        self,
        event_types: tuple[type[BaseModel], ...],
        handler: BatchSubscriber,
        *,
        name: str,
        most: int,
    ) -> None: ...


async def start_tasks(
    stack: contextlib.AsyncExitStack,
    *,
    bus: Startable,
    sender_reads: SenderReadMarks,
    presence: PresenceKeeper,
    push: Push,
) -> None:
    """Start what runs in the background; `stack` stops it, last started first."""
    await bus.start()
    stack.push_async_callback(bus.close)
    sender_reads.start()
    stack.push_async_callback(sender_reads.close)
    presence.start()
    push.start()
