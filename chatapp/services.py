"""The modules one running server is made of, as the composition root wires them.

The HTTP edge receives this container; its fields are typed by the seams a
second implementation plugs into (the bus, presence), and by the modules'
public classes, whose own seams are their stores.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network

from aiohttp import web

from chatapp.accounts import Accounts
from chatapp.bus import Bus
from chatapp.clock import Clock
from chatapp.config import Settings
from chatapp.conversations import Conversations
from chatapp.discovery import Discovery, NodeDirectory
from chatapp.messaging import Messaging
from chatapp.messaging.retention import Retention
from chatapp.notify import Push
from chatapp.observability import Metrics
from chatapp.operators import Operators, ServerState
from chatapp.own_account import AccountDeletion, OwnExport
from chatapp.presence import PresenceTracker
from chatapp.search import Search
from chatapp.social import Blocks, Friends, Social

ReadinessCheck = Callable[[], Awaitable[bool]]


@dataclass
class Services:
    settings: Settings
    clock: Clock
    metrics: Metrics
    bus: Bus
    accounts: Accounts
    operators: Operators
    discovery: Discovery
    nodes: NodeDirectory
    social: Social
    messaging: Messaging
    conversations: Conversations
    friends: Friends
    blocks: Blocks
    presence: PresenceTracker
    push: Push
    search: Search
    server_state: ServerState
    account_deletion: AccountDeletion
    own_export: OwnExport
    readiness_checks: list[ReadinessCheck] = field(default_factory=list)
    # Parsed from settings.trusted_proxies once, not per request.
    trusted_proxies: list[IPv4Network | IPv6Network] = field(default_factory=list)
    # Sweeping expired messages; None when `message_retention_days` is 0.
    retention: Retention | None = None


# Where the running application keeps the container (the HTTP edge reads it).
SERVICES = web.AppKey("services", Services)
