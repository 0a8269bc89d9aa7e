"""Cluster mode's engines: PostgreSQL for the data, Redis between the nodes.

Imported only when the settings ask for a cluster, so that the embedded
default never loads a driver.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg
import structlog
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import BaseModel
from redis.asyncio import Redis

from chatapp.accounts.adapters.postgres_push_targets import PostgresPushTargetStore
from chatapp.accounts.adapters.postgres_users import PostgresUserStore
from chatapp.bootstrap.stores import OperatorStores, Stores, UserStores, message_store_answers
from chatapp.clock import Clock, SystemClock
from chatapp.cluster.bus import RedisBus
from chatapp.cluster.connection import ClusterUnavailable, open_redis
from chatapp.cluster.discovery import LeastLoadedNode
from chatapp.cluster.identity import NodeIdentity
from chatapp.cluster.keys import ClusterKeys
from chatapp.cluster.presence import RedisPresence
from chatapp.cluster.ratelimit import RedisRateLimiter
from chatapp.cluster.registry import NodeIdTaken, NodeRegistry
from chatapp.config import Settings
from chatapp.discovery import SingleNode
from chatapp.errors import StartupRefused, StoreFailed
from chatapp.events import event_codec
from chatapp.messaging.adapters.postgres_messages import PostgresMessageStore
from chatapp.messaging.adapters.postgres_push_pending import PostgresPendingPushes
from chatapp.notify.adapters.postgres_windows import PostgresPushWindows
from chatapp.notify.key_file import KEY_FILE
from chatapp.notify.pending import PendingPushes
from chatapp.notify.vapid import key_from_pem, new_key_pem
from chatapp.notify.windows import PushWindows
from chatapp.operators.adapters.postgres_operators import PostgresAuditLog, PostgresInviteStore
from chatapp.presence.adapters.postgres_presence import PostgresPresenceStore
from chatapp.ratelimit import LimiterFactory, RateLimiter
from chatapp.services import ReadinessCheck
from chatapp.social.adapters.postgres_blocks import PostgresBlockStore
from chatapp.social.adapters.postgres_channels import PostgresChannelStore
from chatapp.social.adapters.postgres_friends import PostgresFriendStore
from chatapp.social.block_batch import BatchedBlockLookups
from chatapp.storage.postgres import apply_postgres_migrations, open_postgres, postgres_answers

log = structlog.get_logger(__name__)

VAPID_SECRET = "vapid_private_key"


@dataclass(frozen=True)
class Cluster:
    """What a node shares with the others: the stores, the bus and Redis's names."""

    stores: Stores
    user_stores: UserStores
    bus: RedisBus
    redis: Redis
    keys: ClusterKeys
    node: NodeIdentity
    pool: asyncpg.Pool


async def open_cluster_user_stores(
    settings: Settings, clock: Clock, stack: contextlib.AsyncExitStack
) -> tuple[UserStores, asyncpg.Pool]:
    """Accounts' stores on PostgreSQL, the schema brought up to date first, and their pool."""
    try:
        pool = await open_postgres(
            settings.database_url, application_name=_client_name(settings.node_name)
        )
    except StoreFailed as failure:
        raise StartupRefused(f"the cluster's database: {failure}") from None
    stack.push_async_callback(pool.close)
    await apply_postgres_migrations(pool, now_ms=clock.now_ms())

    async def answers() -> bool:
        return await postgres_answers(pool)

    stores = UserStores(
        users=PostgresUserStore(pool),
        push_targets=PostgresPushTargetStore(pool),
        answers=answers,
        operators=OperatorStores(invites=PostgresInviteStore(pool), audit=PostgresAuditLog(pool)),
    )
    return stores, pool


async def open_cluster(
    settings: Settings, clock: Clock, stack: contextlib.AsyncExitStack
) -> Cluster:
    """Every store on PostgreSQL and the bus on Redis; `stack` closes them in reverse."""
    accounts, pool = await open_cluster_user_stores(settings, clock, stack)
    messages = PostgresMessageStore(pool, pending_pushes=pushes_enabled(settings))
    stack.push_async_callback(messages.close)
    redis = open_redis(settings.redis_url, client_name=_client_name(settings.node_name))
    stack.push_async_callback(redis.aclose)
    keys = ClusterKeys(settings.cluster_name)
    node = NodeIdentity(settings.node_name)
    checks: list[ReadinessCheck] = [accounts.answers, message_store_answers(messages)]
    stores = Stores(
        accounts=accounts,
        channels=PostgresChannelStore(pool),
        friends=PostgresFriendStore(pool),
        blocks=BatchedBlockLookups(PostgresBlockStore(pool)),
        messages=messages,
        presence=PostgresPresenceStore(pool),
        readiness_checks=checks,
    )
    bus = RedisBus(redis, keys, node, event_codec())
    return Cluster(
        stores=stores,
        user_stores=accounts,
        bus=bus,
        redis=redis,
        keys=keys,
        node=node,
        pool=pool,
    )


def cluster_push_windows(cluster: Cluster, settings: Settings, clock: Clock) -> PushWindows:
    """Collapse windows in the database, so that a window outlives the node that opened it."""
    return PostgresPushWindows(
        cluster.pool,
        clock,
        node_name=settings.node_name,
        window_ms=settings.push_collapse_window_ms,
        lease_ms=delivery_lease_ms(settings),
        providers=settings.push_providers,
        pending_pushes=pushes_enabled(settings),
    )


def pushes_enabled(settings: Settings) -> bool:
    """Whether this node pushes, and so records each message's push work as it stores it.

    A node with no provider neither records nor does any: the messages it accepts are
    pushed by nobody. Nodes with different providers each open windows for every target
    and send those of their own providers (`PostgresPushWindows`)."""
    return bool(settings.push_providers)


def cluster_pending_pushes(cluster: Cluster, settings: Settings, clock: Clock) -> PendingPushes:
    """The messages whose push work is not done yet, for this node to take over when stale."""
    return PostgresPendingPushes(
        cluster.pool,
        clock,
        node_name=settings.node_name,
        lease_ms=settings.push_pending_lease_ms,
    )


async def shared_vapid_key(
    cluster: Cluster, settings: Settings, clock: Clock
) -> ec.EllipticCurvePrivateKey | None:
    """The cluster's Web Push key, made by the first node that needs it (None without webpush).

    Browsers tie each subscription to one key, so every node must sign with the
    same. The first node offers the key in its data folder if it has one (as
    copied by hand before the key lived in the database), else a new one; the
    others take what is stored.
    """
    if "webpush" not in settings.push_providers:
        return None
    local = settings.data_dir / KEY_FILE
    offered = local.read_bytes() if local.exists() else new_key_pem()
    key_from_pem(offered, str(local))  # never store a key that cannot be used
    try:
        async with cluster.pool.acquire() as connection:
            await connection.execute(
                "INSERT INTO cluster_secrets (name, value, created_at) VALUES ($1, $2, $3)"
                " ON CONFLICT (name) DO NOTHING",
                VAPID_SECRET,
                offered,
                clock.now_ms(),
            )
            stored = await connection.fetchval(
                "SELECT value FROM cluster_secrets WHERE name = $1", VAPID_SECRET
            )
    except (asyncpg.PostgresError, OSError) as failure:
        raise StartupRefused(f"the cluster's Web Push key cannot be read: {failure}") from None
    if local.exists() and bytes(stored) != offered:
        log.warning("vapid_key_of_the_cluster_used", ignored=str(local))
    return key_from_pem(bytes(stored), "the cluster's Web Push key (cluster_secrets)")


def delivery_lease_ms(settings: Settings) -> int:
    """Twice the longest a delivery can take: every attempt timing out, every retry waiting
    its longest. A lease shorter than a delivery would let another node send it again."""
    waits = sum(
        min(settings.push_retry_max_ms, settings.push_retry_base_ms << attempt)
        for attempt in range(settings.push_retries)
    )
    return 2 * (settings.push_timeout_ms * (settings.push_retries + 1) + waits)


def cluster_presence(cluster: Cluster, settings: Settings, clock: Clock) -> RedisPresence:
    return RedisPresence(
        cluster.redis,
        cluster.stores.presence,
        clock,
        keys=cluster.keys,
        node=cluster.node,
        timeout_ms=settings.presence_timeout_ms,
    )


async def join_registry(
    cluster: Cluster,
    settings: Settings,
    clock: Clock,
    stack: contextlib.AsyncExitStack,
    *,
    connections: Callable[[], int],
) -> tuple[LeastLoadedNode, NodeRegistry]:
    """Register this node (refused when its id is live elsewhere).

    Returns discovery over the registry, and the registry itself, which lists
    the live nodes for `GET /api/v1/admin/cluster`.
    """
    registry = NodeRegistry(
        cluster.redis,
        clock,
        keys=cluster.keys,
        node=cluster.node,
        ws_url=settings.ws_url,
        connections=connections,
        ttl_ms=settings.presence_timeout_ms,
    )
    try:
        await registry.start()
    except (NodeIdTaken, ClusterUnavailable) as refusal:
        raise StartupRefused(str(refusal)) from None
    stack.push_async_callback(registry.stop)
    return LeastLoadedNode(registry, SingleNode(settings.ws_url, settings.node_name)), registry


async def publish_to_cluster(settings: Settings, events: list[BaseModel]) -> bool:
    """Publish a command's events on the cluster's bus, so every node hears them."""
    if not events:
        return False
    redis = open_redis(settings.redis_url, client_name="chatapp-command")
    bus = RedisBus(redis, ClusterKeys(settings.cluster_name), NodeIdentity("cli"), event_codec())
    try:
        await bus.start()
        for event in events:
            bus.publish(event)
        await bus.close(flush_timeout=5.0)
    finally:
        await redis.aclose()
    return True


async def migrate_cluster(settings: Settings) -> list[int]:
    """Apply the PostgreSQL migrations not applied yet; returns their numbers."""
    pool = await open_postgres(settings.database_url)
    try:
        return await apply_postgres_migrations(pool, now_ms=SystemClock().now_ms())
    finally:
        await pool.close()


def _client_name(node_name: str) -> str:
    """How this node's connections show in Redis's CLIENT LIST (no spaces allowed there) and
    in PostgreSQL's pg_stat_activity."""
    return "chatapp-" + re.sub(r"[^A-Za-z0-9._:-]", "_", node_name)


def shared_limiters(cluster: Cluster, clock: Clock) -> LimiterFactory:
    """Abuse limits counted by every node together (each falls back to its own while
    Redis is away)."""

    def make(limit: str, capacity: int, window_seconds: float) -> RateLimiter:
        return RedisRateLimiter(
            cluster.redis,
            clock,
            keys=cluster.keys,
            limit=limit,
            capacity=capacity,
            window_seconds=window_seconds,
        )

    return make
