"""The running server: stores, modules, the gateway and the HTTP app, built from settings."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Final

import structlog
from aiohttp import web

from chatapp.accounts import Accounts
from chatapp.api import MIDDLEWARES, add_routes
from chatapp.api.client_address import parse_networks
from chatapp.bootstrap.background import in_background
from chatapp.bootstrap.backup_request import backup_requests
from chatapp.bootstrap.collector import CollectorPauses
from chatapp.bootstrap.modules import (
    SocialModules,
    build_accounts,
    build_messaging,
    build_operators,
    build_presence,
    build_social,
    password_hasher,
)
from chatapp.bootstrap.push import open_push
from chatapp.bootstrap.retention import start_retention
from chatapp.bootstrap.search import open_search
from chatapp.bootstrap.stores import Stores, open_stores
from chatapp.bootstrap.wiring import (
    RunningBus,
    SubscribeAll,
    SubscribeBatches,
    start_tasks,
    subscribe_modules,
)
from chatapp.bus import Bus, InProcessBus
from chatapp.bus.control_socket import ControlSocket
from chatapp.clock import Clock, SystemClock
from chatapp.config import Settings
from chatapp.conversations import Conversations
from chatapp.discovery import Discovery, NodeDirectory, SingleNode, ThisNode
from chatapp.errors import StoreFailed
from chatapp.events import event_codec
from chatapp.gateway.fanout import FanOut
from chatapp.gateway.registry import ConnectionRegistry
from chatapp.gateway.server import GATEWAY, Gateway, websocket_route
from chatapp.gateway.session import CLUSTER_GAP_GRACE_S, SessionModules
from chatapp.messaging import Messaging
from chatapp.notify.pending import PendingPushes
from chatapp.notify.windows import PushWindows
from chatapp.observability import LoopLag, Metrics
from chatapp.operators import Operators, ServerState
from chatapp.operators.disk_usage import DiskUsage
from chatapp.own_account import AccountDeletion, OwnExport
from chatapp.presence import PresenceKeeper
from chatapp.ratelimit import LimiterFactory
from chatapp.services import SERVICES, Services
from chatapp.version import VERSION
from chatapp.web import add_web_client

log = structlog.get_logger(__name__)

# Room for a 100,000-character message even when every character is sent as a
# `\uXXXX` surrogate pair, plus the JSON around it.
MAX_BODY_BYTES = 2 * 1024 * 1024


def build_app(settings: Settings, *, clock: Clock | None = None) -> web.Application:
    app = web.Application(middlewares=MIDDLEWARES, client_max_size=MAX_BODY_BYTES)
    add_routes(app)
    app.router.add_get("/ws", websocket_route)
    add_web_client(app, settings)
    app.cleanup_ctx.append(_lifetime(settings, clock or SystemClock()))
    # Sockets must be closed before aiohttp waits for handlers to finish, or a
    # connected client would hold shutdown until the handler timeout.
    app.on_shutdown.append(_close_connections)
    return app


async def _close_connections(app: web.Application) -> None:
    if GATEWAY in app:
        await app[GATEWAY].close()


def _lifetime(settings: Settings, clock: Clock) -> Callable[[web.Application], AsyncIterator[None]]:
    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            app[SERVICES], app[GATEWAY] = await open_server(settings, clock, stack)
            log.info("server_started", url=settings.base_url, data_dir=str(settings.data_dir))
            yield
        log.info("server_stopped")

    return lifetime


async def open_server(
    settings: Settings, clock: Clock, stack: contextlib.AsyncExitStack
) -> tuple[Services, Gateway]:
    """Open every store, build every module, wire the bus and start the tasks."""
    bus: RunningBus
    own_events: SubscribeAll | None
    push_events: SubscribeBatches
    if settings.cluster_mode:
        # Imported here: the embedded default never loads a cluster driver.
        from chatapp.bootstrap import cluster

        joined = await cluster.open_cluster(settings, clock, stack)
        stores, bus, own_events = joined.stores, joined.bus, joined.bus.subscribe_own
        push_events = joined.bus.subscribe_own_batches
        presence: PresenceKeeper = cluster.cluster_presence(joined, settings, clock)
        limiters: LimiterFactory | None = cluster.shared_limiters(joined, clock)
        windows: PushWindows | None = cluster.cluster_push_windows(joined, settings, clock)
        pending: PendingPushes | None = cluster.cluster_pending_pushes(joined, settings, clock)
        vapid_key = await cluster.shared_vapid_key(joined, settings, clock)
    else:
        stores = await open_stores(settings.data_dir, clock, stack)
        in_process = InProcessBus()
        bus, own_events, push_events = in_process, None, in_process.subscribe_batches
        presence = build_presence(settings, stores.presence, bus=bus, clock=clock)
        limiters = None
        windows, pending, vapid_key = None, None, None
    stack.push_async_callback(presence.close)
    metrics = Metrics()
    metrics.watch_bus(bus.stats)
    modules = _build_modules(settings, stores, clock=clock, bus=bus, stack=stack, limiters=limiters)
    push = await open_push(
        settings,
        stack,
        accounts=modules.accounts,
        levels=modules.social.social,
        live_devices=presence,
        clock=clock,
        metrics=metrics,
        windows=windows,
        pending=pending,
        vapid_key=vapid_key,
    )
    registry = ConnectionRegistry()
    gateway = Gateway(
        settings,
        node_id=secrets.token_hex(4),
        registry=registry,
        accounts=modules.accounts,
        modules=SessionModules(
            messaging=modules.messaging,
            social=modules.social.social,
            bus=bus,
            metrics=metrics,
            page_max_bytes=settings.page_max_bytes,
            heartbeats=presence,
            gap_grace_s=CLUSTER_GAP_GRACE_S if settings.cluster_mode else 0.0,
        ),
    )
    fan_out = FanOut(
        registry,
        social=modules.social.social,
        conversations=modules.conversations,
        friends=modules.social.friends,
        presence=presence,
    )
    subscribe_modules(
        bus,
        social=modules.social.social,
        friends=modules.social.friends,
        sender_reads=modules.social.sender_reads,
        presence=presence,
        push=push,
        fan_out=fan_out,
        subscribe_push=push_events,
        conversations=modules.conversations,
    )
    await start_tasks(
        stack, bus=bus, sender_reads=modules.social.sender_reads, presence=presence, push=push
    )
    retention = await start_retention(
        settings,
        stores.messages,
        members=modules.social.social,
        bus=bus,
        clock=clock,
        metrics=metrics,
        stack=stack,
        pool=joined.pool if settings.cluster_mode else None,
    )
    search = await open_search(
        settings,
        messages=stores.messages,
        messaging=modules.messaging,
        social=modules.social.social,
        bus=bus,
        subscribe_own=own_events,
        stack=stack,
        pool=joined.pool if settings.cluster_mode else None,
    )
    lag = LoopLag(metrics.event_loop_lag)
    lag.start()
    stack.push_async_callback(lag.close)
    pauses = CollectorPauses()
    pauses.install()
    stack.callback(pauses.remove)
    metrics.watch_collector(pauses)
    discovery: Discovery
    nodes: NodeDirectory
    if settings.cluster_mode:
        discovery, nodes = await cluster.join_registry(
            joined, settings, clock, stack, connections=lambda: gateway.open_connections
        )
        joined.bus.on_reconnect.append(gateway.fill_gaps)
    else:
        discovery = SingleNode(settings.ws_url, settings.node_name)
        nodes = ThisNode(
            node_id=settings.node_name,
            ws_url=settings.ws_url,
            connections=lambda: gateway.open_connections,
            clock=clock,
        )
        control = ControlSocket(
            settings.data_dir,
            bus,
            event_codec(),
            requests=backup_requests(settings.data_dir, stores.messages),
        )
        await control.start()
        stack.push_async_callback(control.close)
    services = Services(
        settings=settings,
        clock=clock,
        metrics=metrics,
        bus=bus,
        accounts=modules.accounts,
        operators=modules.operators,
        discovery=discovery,
        nodes=nodes,
        social=modules.social.social,
        messaging=modules.messaging,
        conversations=modules.conversations,
        friends=modules.social.friends,
        blocks=modules.social.blocks,
        presence=presence,
        push=push,
        search=search,
        server_state=ServerState(
            version=VERSION,
            node_id=settings.node_name,
            registration=settings.registration,
            nodes=nodes,
            messages_stored=modules.messaging.messages_stored,
            disk=DiskUsage(settings.data_dir, clock),
            clock=clock,
        ),
        account_deletion=AccountDeletion(
            modules.accounts, modules.social.social, modules.social.friends, modules.messaging
        ),
        own_export=OwnExport(
            modules.accounts, modules.social.friends, modules.conversations, modules.messaging
        ),
        readiness_checks=stores.readiness_checks,
        trusted_proxies=parse_networks(settings.trusted_proxies),
        retention=retention,
    )
    finish_deletions_in_background(services.account_deletion, stack)
    return services, gateway


FINISH_DELETIONS_EVERY: Final = 300.0
"""Seconds between looks for unfinished account deletions: one indexed query."""


def finish_deletions_in_background(
    deletion: AccountDeletion, stack: contextlib.AsyncExitStack
) -> None:
    """Finish the account deletions left half done (by a stopped server, or a request that
    failed on the way), without holding up the start: now, and every `FINISH_DELETIONS_EVERY`
    seconds after. A failure is logged and tried again the next time."""

    async def finish() -> None:
        while True:
            try:
                await deletion.finish_unfinished()
            except StoreFailed as failure:
                log.warning("unfinished_deletions_failed", error=str(failure))
            except Exception:  # a bug here must not go unseen, nor stop the server
                log.exception("unfinished_deletions_failed")
            await asyncio.sleep(FINISH_DELETIONS_EVERY)

    in_background(stack, finish(), name="unfinished-deletions")


@dataclass(frozen=True)
class _Modules:
    accounts: Accounts
    operators: Operators
    social: SocialModules
    messaging: Messaging
    conversations: Conversations


def _build_modules(
    settings: Settings,
    stores: Stores,
    *,
    clock: Clock,
    bus: Bus,
    stack: contextlib.AsyncExitStack,
    limiters: LimiterFactory | None,
) -> _Modules:
    accounts = build_accounts(
        settings,
        stores.accounts.users,
        stores.accounts.push_targets,
        hasher=password_hasher(settings, stack),
        clock=clock,
        bus=bus,
        limiters=limiters,
    )
    social = build_social(
        stores.channels,
        stores.friends,
        stores.blocks,
        accounts=accounts,
        bus=bus,
        clock=clock,
        settings=settings,
        limiters=limiters,
    )
    messaging = build_messaging(
        settings,
        stores.messages,
        social=social.social,
        bus=bus,
        clock=clock,
        limiters=limiters,
        directory=accounts,
    )
    operators = build_operators(
        settings,
        stores.accounts.operators.invites,
        stores.accounts.operators.audit,
        accounts=accounts,
        clock=clock,
    )
    return _Modules(
        accounts=accounts,
        operators=operators,
        social=social,
        messaging=messaging,
        conversations=Conversations(social.social, messaging),
    )
