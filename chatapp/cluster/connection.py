"""The Redis client a node shares between its bus, presence, registry and limits."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import RedisError

from chatapp.errors import StoreFailed

RedisClient = Redis
"""The client type, for the composition root's annotations (it imports no redis itself)."""

# A command that waits longer than this on a Redis that stopped answering
# fails, so that a request is answered (503, or a local fallback) instead of hanging.
COMMAND_TIMEOUT = 5.0
# A dropped connection is retried at once, briefly; a Redis that stays away
# fails the command within ~0.1 s, and the caller's fallback (or its own
# reconnecting loop, with a longer backoff) takes over. The library's default
# retries for seconds, which would hold every request that touches Redis.
RETRIES = 2


class ClusterUnavailable(StoreFailed):
    """Redis could not be reached or refused a command; nothing was changed here."""


def open_redis(url: str, *, client_name: str | None = None) -> Redis:
    """A client for `url` (connections are opened on first use, never here).

    `client_name` names every connection (CLIENT LIST shows it), including
    those opened again after a drop.
    """
    return Redis.from_url(
        url,
        client_name=client_name,
        socket_connect_timeout=COMMAND_TIMEOUT,
        socket_timeout=COMMAND_TIMEOUT,
        retry=Retry(ExponentialWithJitterBackoff(base=0.01, cap=0.05), RETRIES),
    )


__all__ = [
    "COMMAND_TIMEOUT",
    "RETRIES",
    "ClusterUnavailable",
    "RedisClient",
    "RedisError",
    "open_redis",
]
