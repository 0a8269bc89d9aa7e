"""Who hears which event, and which background tasks run: every subscription in one place."""

from __future__ import annotations

import contextlib

from chatapp.bus import Bus, InProcessBus
from chatapp.gateway.fanout import FanOut
from chatapp.messaging import MessageAccepted
from chatapp.notify import OBSERVED_EVENTS as NOTIFIER_EVENTS
from chatapp.notify import Push
from chatapp.presence import OBSERVED_EVENTS as PRESENCE_EVENTS
from chatapp.presence import LocalPresence
from chatapp.social import ChannelChanged, Friends, FriendshipChanged, Social
from chatapp.social.sender_reads import SenderReadMarks


def subscribe_module_state(
    bus: Bus,
    *,
    social: Social,
    friends: Friends,
    sender_reads: SenderReadMarks,
    presence: LocalPresence,
) -> None:
    """What the modules keep in memory follows the bus, whoever published."""
    bus.subscribe(MessageAccepted, sender_reads.message_accepted, name="social.sender_reads")
    bus.subscribe(ChannelChanged, social.channel_changed, name="social.membership")
    bus.subscribe(FriendshipChanged, friends.friendship_changed, name="social.friends")
    bus.subscribe_all(PRESENCE_EVENTS, presence.observe, name="presence")


def subscribe_modules(
    bus: Bus,
    *,
    social: Social,
    friends: Friends,
    sender_reads: SenderReadMarks,
    presence: LocalPresence,
    push: Push,
    fan_out: FanOut,
) -> None:
    subscribe_module_state(
        bus, social=social, friends=friends, sender_reads=sender_reads, presence=presence
    )
    if push.enabled:
        bus.subscribe_all(NOTIFIER_EVENTS, push.notifier.observe, name="notify")
    fan_out.subscribe(bus)


async def start_tasks(
    stack: contextlib.AsyncExitStack,
    *,
    bus: InProcessBus,
    sender_reads: SenderReadMarks,
    presence: LocalPresence,
    push: Push,
) -> None:
    """Start what runs in the background; `stack` stops it, last started first."""
    await bus.start()
    stack.push_async_callback(bus.close)
    sender_reads.start()
    stack.push_async_callback(sender_reads.close)
    presence.start()
    push.start()
