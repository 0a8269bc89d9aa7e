"""The running server: stores, modules, the gateway and the HTTP app, built from settings."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator, Callable

import structlog
from aiohttp import web

from chatapp.api import MIDDLEWARES, add_routes
from chatapp.api.client_address import parse_networks
from chatapp.bootstrap.modules import (
    build_accounts,
    build_messaging,
    build_presence,
    build_social,
    password_hasher,
)
from chatapp.bootstrap.push import open_push
from chatapp.bootstrap.stores import open_stores
from chatapp.bootstrap.wiring import start_tasks, subscribe_modules
from chatapp.bus import InProcessBus
from chatapp.bus.control_socket import ControlSocket
from chatapp.clock import Clock, SystemClock
from chatapp.config import Settings
from chatapp.conversations import Conversations
from chatapp.discovery import SingleNode
from chatapp.events import event_codec
from chatapp.gateway.fanout import FanOut
from chatapp.gateway.registry import ConnectionRegistry
from chatapp.gateway.server import GATEWAY, Gateway, websocket_route
from chatapp.gateway.session import SessionModules
from chatapp.observability import Metrics
from chatapp.services import SERVICES, Services
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
    stores = await open_stores(settings.data_dir, clock, stack)
    bus = InProcessBus()
    metrics = Metrics()
    accounts = build_accounts(
        settings,
        stores.accounts.users,
        stores.accounts.push_targets,
        hasher=password_hasher(settings, stack),
        clock=clock,
        bus=bus,
    )
    social = build_social(stores.channels, stores.friends, accounts=accounts, bus=bus, clock=clock)
    presence = build_presence(settings, stores.presence, bus=bus, clock=clock)
    stack.push_async_callback(presence.close)
    messaging = build_messaging(
        settings, stores.messages, social=social.social, bus=bus, clock=clock
    )
    conversations = Conversations(social.social, messaging)
    push = await open_push(
        settings, stack, accounts=accounts, live_devices=presence, clock=clock, metrics=metrics
    )
    registry = ConnectionRegistry()
    gateway = Gateway(
        settings,
        node_id=secrets.token_hex(4),
        registry=registry,
        accounts=accounts,
        modules=SessionModules(messaging=messaging, social=social.social, bus=bus, metrics=metrics),
    )
    fan_out = FanOut(
        registry,
        social=social.social,
        conversations=conversations,
        friends=social.friends,
        presence=presence,
    )
    subscribe_modules(
        bus,
        social=social.social,
        friends=social.friends,
        sender_reads=social.sender_reads,
        presence=presence,
        push=push,
        fan_out=fan_out,
    )
    await start_tasks(
        stack, bus=bus, sender_reads=social.sender_reads, presence=presence, push=push
    )
    control = ControlSocket(settings.data_dir, bus, event_codec())
    await control.start()
    stack.push_async_callback(control.close)
    services = Services(
        settings=settings,
        clock=clock,
        metrics=metrics,
        bus=bus,
        accounts=accounts,
        discovery=SingleNode(settings.ws_url, settings.node_name),
        social=social.social,
        messaging=messaging,
        conversations=conversations,
        friends=social.friends,
        presence=presence,
        push=push,
        readiness_checks=stores.readiness_checks,
        trusted_proxies=parse_networks(settings.trusted_proxies),
    )
    return services, gateway
