"""Forgetting a cluster: every key under its name, and no other cluster's."""

from __future__ import annotations

from redis.asyncio import Redis

from chatapp.cluster.keys import ClusterKeys


async def forget_cluster(redis: Redis, keys: ClusterKeys) -> int:
    """Delete every key of the cluster (tests; an operator starting over); returns how many."""
    deleted = 0
    batch: list[bytes] = []
    async for key in redis.scan_iter(match=keys.pattern, count=500):
        batch.append(key)
        if len(batch) >= 500:
            deleted += await redis.unlink(*batch)
            batch.clear()
    if batch:
        deleted += await redis.unlink(*batch)
    return deleted
