"""Building the modules from their stores: each receives its collaborators, nothing wires itself."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from chatapp.accounts import AccountLimits, Accounts, PasswordHashing, PushTargetStore, UserStore
from chatapp.accounts.adapters import Argon2PasswordHasher
from chatapp.bus import Bus
from chatapp.clock import Clock
from chatapp.config import Settings
from chatapp.messaging import MessageStore, Messaging
from chatapp.messaging.service import Directory
from chatapp.operators import (
    AuditLog,
    AuditTrail,
    Invites,
    InviteStore,
    Moderation,
    Operators,
    Registration,
)
from chatapp.presence import LocalPresence, PresenceStore
from chatapp.ratelimit import LimiterFactory, RateLimiter, local_limiters
from chatapp.social import Blocks, BlockStore, ChannelStore, Consent, Friends, FriendStore, Social
from chatapp.social.receipts import Receipts
from chatapp.social.sender_reads import SenderReadMarks


def password_hasher(settings: Settings, stack: contextlib.AsyncExitStack) -> PasswordHashing:
    hasher = Argon2PasswordHasher(
        time_cost=settings.password_hash_time_cost,
        memory_kib=settings.password_hash_memory_kib,
        parallelism=settings.password_hash_parallelism,
        threads=settings.password_hash_threads,
    )
    stack.callback(hasher.close)
    return hasher


def build_accounts(
    settings: Settings,
    users: UserStore,
    push_targets: PushTargetStore,
    *,
    hasher: PasswordHashing,
    clock: Clock,
    bus: Bus,
    limiters: LimiterFactory | None = None,
) -> Accounts:
    return Accounts(
        users,
        hasher,
        clock,
        bus,
        AccountLimits(
            clock,
            logins_per_username=settings.login_attempts_per_username,
            logins_per_address=settings.login_attempts_per_address,
            signups_per_address=settings.signups_per_address,
            window_seconds=settings.rate_limit_window_seconds,
            limiters=limiters,
        ),
        push_targets,
    )


def build_operators(
    settings: Settings,
    invites: InviteStore,
    audit_log: AuditLog,
    *,
    accounts: Accounts,
    clock: Clock,
) -> Operators:
    audit = AuditTrail(audit_log, clock)
    invite_codes = Invites(invites, audit, clock)
    return Operators(
        registration=Registration(settings.registration, accounts, invite_codes),
        invites=invite_codes,
        moderation=Moderation(accounts, audit),
        audit=audit,
    )


@dataclass(frozen=True)
class SocialModules:
    social: Social
    friends: Friends
    blocks: Blocks
    sender_reads: SenderReadMarks


def build_social(
    channels: ChannelStore,
    friends: FriendStore,
    blocks: BlockStore,
    *,
    accounts: Accounts,
    bus: Bus,
    clock: Clock,
    settings: Settings | None = None,
    limiters: LimiterFactory | None = None,
) -> SocialModules:
    sender_reads = SenderReadMarks(channels)
    group_changes = None
    if settings is not None:
        group_changes = (limiters or local_limiters(clock))(
            "group_changes", settings.group_changes_per_user, settings.rate_limit_window_seconds
        )
    receipts = Receipts(channels, accounts, sender_reads, bus)
    consent = Consent(blocks, friends, accounts)
    friendships = Friends(friends, accounts, bus, clock, consent=consent)
    return SocialModules(
        social=Social(
            channels,
            accounts,
            bus,
            clock,
            sender_reads,
            receipts=receipts,
            consent=consent,
            group_changes=group_changes,
        ),
        friends=friendships,
        blocks=Blocks(blocks, friendships, accounts, clock),
        sender_reads=sender_reads,
    )


def build_messaging(
    settings: Settings,
    store: MessageStore,
    *,
    social: Social,
    bus: Bus,
    clock: Clock,
    limiters: LimiterFactory | None = None,
    directory: Directory | None = None,
) -> Messaging:
    """`directory` finds the usernames that mentions name; without one, nobody is mentioned."""
    return Messaging(
        store,
        social,
        bus,
        clock,
        send_limiter=send_limiter(settings, limiters or local_limiters(clock)),
        page_max_bytes=settings.page_max_bytes,
        directory=directory,
    )


def build_presence(
    settings: Settings, store: PresenceStore, *, bus: Bus, clock: Clock
) -> LocalPresence:
    return LocalPresence(store, bus, clock, timeout_ms=settings.presence_timeout_ms)


def send_limiter(settings: Settings, limiters: LimiterFactory) -> RateLimiter:
    return limiters(
        "sends", settings.send_burst, settings.send_burst / settings.send_rate_per_second
    )
