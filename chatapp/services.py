"""The modules one running server is made of, as the composition root wires them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network

from chatapp.accounts import Accounts
from chatapp.bus import InProcessBus
from chatapp.clock import Clock
from chatapp.config import Settings
from chatapp.conversations import Conversations
from chatapp.discovery import Discovery
from chatapp.messaging.service import Messaging
from chatapp.notify import Push
from chatapp.observability import Metrics
from chatapp.presence import Presence
from chatapp.social import Friends, Social

ReadinessCheck = Callable[[], Awaitable[bool]]


@dataclass
class Services:
    settings: Settings
    clock: Clock
    metrics: Metrics
    bus: InProcessBus
    accounts: Accounts
    discovery: Discovery
    social: Social
    messaging: Messaging
    conversations: Conversations
    friends: Friends
    presence: Presence
    push: Push
    readiness_checks: list[ReadinessCheck] = field(default_factory=list)
    # Parsed from settings.trusted_proxies once, not per request.
    trusted_proxies: list[IPv4Network | IPv6Network] = field(default_factory=list)
