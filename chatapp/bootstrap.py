"""The composition root: the one place that builds the running server from its settings.

Nothing is opened at import time. `build_app` returns an aiohttp application
whose stores and modules are opened when it starts and closed when it stops,
so tests build the server exactly as production does, on a temporary folder.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import structlog
from aiohttp import web

from chatapp.accounts import AccountLimits, Accounts, PasswordHasher, SqliteUserStore
from chatapp.api import MIDDLEWARES, SERVICES, add_routes
from chatapp.bus import InProcessBus
from chatapp.clock import Clock, SystemClock
from chatapp.config import Settings
from chatapp.discovery import Discovery
from chatapp.observability import Metrics
from chatapp.services import Services
from chatapp.storage import apply_migrations, find_migrations, open_sqlite

log = structlog.get_logger(__name__)

# Room for a 100,000-character message even when every character is sent as a
# `\uXXXX` surrogate pair, plus the JSON around it.
MAX_BODY_BYTES = 2 * 1024 * 1024


def build_app(settings: Settings, *, clock: Clock | None = None) -> web.Application:
    app = web.Application(middlewares=MIDDLEWARES, client_max_size=MAX_BODY_BYTES)
    add_routes(app)
    app.cleanup_ctx.append(_lifetime(settings, clock or SystemClock()))
    return app


def password_hasher(settings: Settings) -> PasswordHasher:
    return PasswordHasher(
        time_cost=settings.password_hash_time_cost,
        memory_kib=settings.password_hash_memory_kib,
        parallelism=settings.password_hash_parallelism,
        threads=settings.password_hash_threads,
    )


def _lifetime(settings: Settings, clock: Clock) -> Callable[[web.Application], AsyncIterator[None]]:
    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        database = await open_sqlite(settings.data_dir / "users.sqlite3")
        hasher = password_hasher(settings)
        bus = InProcessBus()
        try:
            await apply_migrations(database, find_migrations(), now_ms=clock.now_ms())
            accounts = Accounts(
                SqliteUserStore(database),
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
            )

            async def sqlite_answers() -> bool:
                async with database.execute("SELECT 1") as cursor:
                    return await cursor.fetchone() is not None

            app[SERVICES] = Services(
                settings=settings,
                clock=clock,
                metrics=Metrics(),
                bus=bus,
                accounts=accounts,
                discovery=Discovery(settings.ws_url),
                readiness_checks=[sqlite_answers],
            )
            await bus.start()
            log.info("server_started", url=settings.base_url, data_dir=str(settings.data_dir))
            yield
        finally:
            await bus.close()
            hasher.close()
            await database.close()
            log.info("server_stopped")

    return lifetime
