"""The server's modules built as the composition root builds them, on fakes and a manual clock."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from chatapp.accounts import Accounts, LoginResult
from chatapp.bootstrap.modules import (
    build_accounts,
    build_messaging,
    build_presence,
    build_social,
)
from chatapp.bootstrap.wiring import subscribe_module_state
from chatapp.clock import ManualClock
from chatapp.config import Settings
from chatapp.gateway.session import SessionModules
from chatapp.messaging import Messaging
from chatapp.observability import Metrics
from chatapp.presence import LocalPresence
from chatapp.social import Blocks, Friends, Social
from chatapp.social.sender_reads import SenderReadMarks
from chatapp.testing.fakes.blocks import FakeBlockStore
from chatapp.testing.fakes.bus import RecordingBus
from chatapp.testing.fakes.channels import FakeChannelStore
from chatapp.testing.fakes.friends import FakeFriendStore
from chatapp.testing.fakes.messages import FakeMessageStore
from chatapp.testing.fakes.passwords import FakePasswordHasher
from chatapp.testing.fakes.presence import FakePresenceStore
from chatapp.testing.fakes.push_targets import FakePushTargetStore
from chatapp.testing.fakes.users import FakeUserStore

FAKE_PASSWORD = "correct horse battery"


@dataclass(frozen=True)
class ModulesOnFakes:
    """Every module of a server, each given fakes where the server gives it engines.

    The stores, the bus and the clock are here too, so a test can look behind
    a module (or change a store as another process would).
    """

    settings: Settings
    clock: ManualClock
    bus: RecordingBus
    users: FakeUserStore
    push_targets: FakePushTargetStore
    hasher: FakePasswordHasher
    channels: FakeChannelStore
    friend_store: FakeFriendStore
    block_store: FakeBlockStore
    messages: FakeMessageStore
    presence_store: FakePresenceStore
    accounts: Accounts
    social: Social
    friends: Friends
    blocks: Blocks
    sender_reads: SenderReadMarks
    messaging: Messaging
    presence: LocalPresence
    metrics: Metrics
    _addresses: itertools.count[int] = field(
        default_factory=lambda: itertools.count(1), init=False, repr=False
    )

    def session_modules(self) -> SessionModules:
        """What the gateway gives each session, as `open_server` builds it."""
        return SessionModules(
            messaging=self.messaging,
            social=self.social,
            bus=self.bus,
            metrics=self.metrics,
            heartbeats=self.presence,
        )

    async def sign_up(self, username: str, password: str = FAKE_PASSWORD) -> LoginResult:
        """A new user, logged in on one device.

        Each call comes from an address of its own, so making many users in a
        test does not run into the per-address limits.
        """
        address = f"test-address-{next(self._addresses)}"
        await self.accounts.signup(username, password, address=address)
        return await self.accounts.login(username, password, address=address)


def build_modules_on_fakes(
    settings: Settings | None = None, *, clock: ManualClock | None = None
) -> ModulesOnFakes:
    """Build the modules as `chatapp.bootstrap` does, with fakes for every store.

    The bus is a `RecordingBus` with the modules' own subscriptions made, as
    `chatapp.bootstrap.wiring.subscribe_module_state` makes them (push and
    fan-out, which need connections, are left out): events reach them only
    when the test calls `bus.deliver()`.
    """
    settings = settings or Settings()
    clock = clock or ManualClock()
    bus = RecordingBus()
    users = FakeUserStore()
    push_targets = FakePushTargetStore(users)
    hasher = FakePasswordHasher()
    accounts = build_accounts(settings, users, push_targets, hasher=hasher, clock=clock, bus=bus)
    channels, friend_store, block_store = FakeChannelStore(), FakeFriendStore(), FakeBlockStore()
    social = build_social(
        channels, friend_store, block_store, accounts=accounts, bus=bus, clock=clock
    )
    presence_store = FakePresenceStore()
    presence = build_presence(settings, presence_store, bus=bus, clock=clock)
    messages = FakeMessageStore()
    messaging = build_messaging(
        settings, messages, social=social.social, bus=bus, clock=clock, directory=accounts
    )
    subscribe_module_state(
        bus,
        social=social.social,
        friends=social.friends,
        sender_reads=social.sender_reads,
        presence=presence,
    )
    return ModulesOnFakes(
        settings=settings,
        clock=clock,
        bus=bus,
        users=users,
        push_targets=push_targets,
        hasher=hasher,
        channels=channels,
        friend_store=friend_store,
        block_store=block_store,
        messages=messages,
        presence_store=presence_store,
        accounts=accounts,
        social=social.social,
        friends=social.friends,
        blocks=social.blocks,
        sender_reads=social.sender_reads,
        messaging=messaging,
        presence=presence,
        metrics=Metrics(),
    )
