"""The composition root: the one place that builds the running server from its settings.

Nothing is opened at import time. `build_app` returns an aiohttp application
whose stores and modules are opened when it starts and closed when it stops,
so tests build the server exactly as production does, on a temporary folder.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable

import structlog
from aiohttp import web

from chatapp.accounts import (
    AccountLimits,
    Accounts,
    PasswordHasher,
    SqlitePushTargetStore,
    SqliteUserStore,
)
from chatapp.api import MIDDLEWARES, SERVICES, add_routes
from chatapp.api.client_address import parse_networks
from chatapp.bus import InProcessBus
from chatapp.clock import Clock, SystemClock
from chatapp.config import Settings
from chatapp.conversations import Conversations
from chatapp.discovery import Discovery
from chatapp.gateway import GATEWAY, Gateway, websocket_route
from chatapp.messaging import LevelDBMessageStore, MessageStoreError
from chatapp.messaging.service import Messaging
from chatapp.notify import Push
from chatapp.observability import Metrics
from chatapp.presence import LevelDBPresenceStore, Presence
from chatapp.presence.feed import feed_presence
from chatapp.ratelimit import KeyedRateLimiter
from chatapp.services import Services
from chatapp.social import Friends, Social, SqliteChannelStore, SqliteFriendStore
from chatapp.storage import apply_migrations, find_migrations, open_sqlite
from chatapp.web import add_web_client

log = structlog.get_logger(__name__)

# Room for a 100,000-character message even when every character is sent as a
# `\uXXXX` surrogate pair, plus the JSON around it.
MAX_BODY_BYTES = 2 * 1024 * 1024


def build_app(settings: Settings, *, clock: Clock | None = None) -> web.Application:
    app = web.Application(middlewares=MIDDLEWARES, client_max_size=MAX_BODY_BYTES)
    add_routes(app)
    app.router.add_get("/ws", websocket_route)
    add_web_client(app)
    app.cleanup_ctx.append(_lifetime(settings, clock or SystemClock()))
    # Sockets must be closed before aiohttp waits for handlers to finish, or a
    # connected client would hold shutdown until the handler timeout.
    app.on_shutdown.append(_close_connections)
    return app


async def _close_connections(app: web.Application) -> None:
    if GATEWAY in app:
        await app[GATEWAY].close()


def password_hasher(settings: Settings) -> PasswordHasher:
    return PasswordHasher(
        time_cost=settings.password_hash_time_cost,
        memory_kib=settings.password_hash_memory_kib,
        parallelism=settings.password_hash_parallelism,
        threads=settings.password_hash_threads,
    )


def _lifetime(settings: Settings, clock: Clock) -> Callable[[web.Application], AsyncIterator[None]]:
    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            app[SERVICES] = await _open_services(settings, clock, stack)
            app[GATEWAY] = Gateway(app[SERVICES])
            await app[SERVICES].bus.start()
            stack.push_async_callback(app[SERVICES].bus.close)
            app[SERVICES].social.sender_reads.start()
            stack.push_async_callback(app[SERVICES].social.sender_reads.close)
            app[SERVICES].presence.start()
            app[SERVICES].push.start()
            log.info("server_started", url=settings.base_url, data_dir=str(settings.data_dir))
            yield
        log.info("server_stopped")

    return lifetime


async def _open_services(
    settings: Settings, clock: Clock, stack: contextlib.AsyncExitStack
) -> Services:
    """Open every store and build every module; `stack` closes them in reverse order."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    users_db = settings.data_dir / "users.sqlite3"
    accounts_connection = await open_sqlite(users_db)
    stack.push_async_callback(accounts_connection.close)
    await apply_migrations(accounts_connection, find_migrations(), now_ms=clock.now_ms())
    # Social gets a connection of its own, so that its transactions never take
    # in another module's statements.
    social_connection = await open_sqlite(users_db)
    stack.push_async_callback(social_connection.close)
    message_store = await LevelDBMessageStore.open(settings.data_dir / "messages")
    stack.push_async_callback(message_store.close)
    presence_store = await LevelDBPresenceStore.open(settings.data_dir / "presence")
    hasher = password_hasher(settings)
    stack.callback(hasher.close)

    bus = InProcessBus()
    accounts = Accounts(
        SqliteUserStore(accounts_connection),
        hasher,
        clock,
        bus,
        AccountLimits(
            clock,
            logins_per_username=settings.login_attempts_per_username,
            logins_per_address=settings.login_attempts_per_address,
            signups_per_address=settings.signups_per_address,
            window_seconds=settings.rate_limit_window_seconds,
        ),
        SqlitePushTargetStore(accounts_connection),
    )
    social = Social(SqliteChannelStore(social_connection), accounts, bus, clock)
    friends = Friends(SqliteFriendStore(social_connection), accounts, bus, clock)
    presence = Presence(presence_store, bus, clock, timeout_ms=settings.presence_timeout_ms)
    # Closes the presence store too, after recording who was online.
    stack.push_async_callback(presence.close)
    feed_presence(bus, presence)
    messaging = Messaging(
        message_store,
        social,
        bus,
        clock,
        send_limiter=KeyedRateLimiter(
            clock,
            capacity=settings.send_burst,
            window_seconds=settings.send_burst / settings.send_rate_per_second,
        ),
    )
    metrics = Metrics()
    push = await Push.open(
        settings, accounts=accounts, live_devices=presence, bus=bus, clock=clock, metrics=metrics
    )
    stack.push_async_callback(push.close)

    async def sqlite_answers() -> bool:
        async with accounts_connection.execute("SELECT 1") as cursor:
            return await cursor.fetchone() is not None

    async def message_store_answers() -> bool:
        try:
            await message_store.max_seq(1)
        except MessageStoreError:
            return False
        return True

    return Services(
        settings=settings,
        clock=clock,
        metrics=metrics,
        bus=bus,
        accounts=accounts,
        discovery=Discovery(settings.ws_url),
        social=social,
        messaging=messaging,
        conversations=Conversations(social, messaging),
        friends=friends,
        presence=presence,
        push=push,
        readiness_checks=[sqlite_answers, message_store_answers],
        trusted_proxies=parse_networks(settings.trusted_proxies),
    )
