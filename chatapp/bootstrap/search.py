"""Search's index and indexer: an SQLite file of its own, or the cluster's database.

Also `chatapp reindex`: the index made again from the message store, on a
stopped data folder or on the cluster's database.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import structlog

from chatapp.bootstrap.wiring import RunningBus, SubscribeAll, subscribe_search
from chatapp.clock import SystemClock
from chatapp.config import Settings
from chatapp.errors import StartupRefused, StoreFailed
from chatapp.messaging import MessageStore, Messaging
from chatapp.search import Indexer, Search, SearchIndex, SearchIndexError
from chatapp.search.adapters import SqliteSearchIndex
from chatapp.search.indexer import KEEP_ALIVE
from chatapp.search.walk import Walk, everything
from chatapp.social import Social

log = structlog.get_logger(__name__)

SEARCH_FILE: Final = "search.sqlite3"
SETTLE_AT_STOP: Final = 2.0
"""Seconds the bus gets at shutdown to hand the indexer what was published last."""


def search_database(data_dir: Path) -> Path:
    return data_dir / SEARCH_FILE


async def open_index(settings: Settings, pool: Any = None) -> SearchIndex:
    """The index of these settings: `pool` is the cluster's PostgreSQL pool in cluster mode."""
    if pool is not None:
        # Imported here: the embedded default never loads a cluster driver.
        from chatapp.search.adapters.postgres_index import PostgresSearchIndex

        return PostgresSearchIndex(pool, writer=settings.node_name)
    try:
        return await SqliteSearchIndex.open(search_database(settings.data_dir))
    except SearchIndexError as failure:
        raise StartupRefused(f"the search index: {failure}") from None


async def open_search(
    settings: Settings,
    *,
    messages: MessageStore,
    messaging: Messaging,
    social: Social,
    bus: RunningBus,
    subscribe_own: SubscribeAll | None,
    stack: contextlib.AsyncExitStack,
    pool: Any = None,
) -> Search:
    """Search, its index, and the indexer started (catching up in the background).

    Opened after the bus has started, so that at shutdown the indexer stops
    before the bus: what the bus still holds is handed over first.
    """
    index = await open_index(settings, pool)
    stack.push_async_callback(index.close)
    indexer = Indexer(index, messages)
    subscribe_search(bus, indexer, subscribe_own)
    try:
        await indexer.start()
    except SearchIndexError as failure:
        raise StartupRefused(f"the search index: {failure}") from None
    stack.push_async_callback(_stopping(bus, indexer))
    return Search(index, social, messaging)


def _stopping(bus: RunningBus, indexer: Indexer) -> Callable[[], Awaitable[None]]:
    async def stop() -> None:
        drain = getattr(bus, "drain", None)
        if drain is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(drain(), SETTLE_AT_STOP)
        await indexer.close()

    return stop


@dataclass(frozen=True)
class Reindexed:
    messages: int
    seconds: float

    def summary(self) -> str:
        return f"indexed {self.messages} messages in {self.seconds:.1f} s"


async def reindex(
    settings: Settings, *, progress: Callable[[int], None] | None = None
) -> Reindexed:
    """Make the index again from the message store: everything in it is forgotten first.

    Embedded: the data folder must be stopped (the message store's lock is
    taken). Cluster: nodes may run; searches meanwhile find only what is
    indexed again so far, and each node goes on indexing what it publishes.
    A reindex cut short leaves its run unfinished, so the index is walked
    again (by the next start, or by a live node within a minute).
    """
    started = time.monotonic()
    async with contextlib.AsyncExitStack() as stack:
        messages, index = await _open_for_reindex(settings, stack)
        try:
            await index.begin_run()
            await index.clear()
            walk = Walk(index, messages, everything(), full=True)
            alive_at = time.monotonic()
            while await walk.step():
                if progress is not None:
                    progress(walk.checked)
                if time.monotonic() - alive_at > KEEP_ALIVE:
                    alive_at = time.monotonic()
                    await index.claim_abandoned()
            await index.end_run(complete=True)
        except SearchIndexError as failure:
            raise StartupRefused(f"the search index: {failure}") from None
    return Reindexed(walk.checked, time.monotonic() - started)


async def _open_for_reindex(
    settings: Settings, stack: contextlib.AsyncExitStack
) -> tuple[MessageStore, SearchIndex]:
    if not settings.cluster_mode:
        # Imported here: a serving server never reindexes, nor loads the archive's code.
        from chatapp.bootstrap.archive_sqlite import open_embedded_source

        _, messages = await open_embedded_source(settings.data_dir, SystemClock(), stack)
        index = await open_index(settings)
        stack.push_async_callback(index.close)
        return messages, index
    # Imported here: the embedded default never loads a cluster driver.
    from chatapp.messaging.adapters.postgres_messages import PostgresMessageStore
    from chatapp.storage.postgres import apply_postgres_migrations, open_postgres

    try:
        pool = await open_postgres(settings.database_url)
    except StoreFailed as failure:
        raise StartupRefused(f"the cluster's database: {failure}") from None
    stack.push_async_callback(pool.close)
    await apply_postgres_migrations(pool, now_ms=SystemClock().now_ms())
    store = PostgresMessageStore(pool)
    stack.push_async_callback(store.close)
    # The command's own writer name: a node of the same name may be running.
    command = settings.model_copy(update={"node_id": f"reindex-{settings.node_name}"})
    return store, await open_index(command, pool)
