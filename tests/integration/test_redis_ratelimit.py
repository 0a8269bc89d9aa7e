"""Rate limits shared by every node: one token bucket per key in Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from chatapp.clock import ManualClock
from chatapp.cluster.connection import RedisClient, open_redis
from chatapp.cluster.keys import ClusterKeys
from chatapp.cluster.ratelimit import RedisRateLimiter
from chatapp.cluster.reset import forget_cluster
from chatapp.testing.cluster_services import fresh_name, redis_url


@pytest.fixture
async def redis() -> AsyncIterator[RedisClient]:
    client = open_redis(redis_url())
    yield client
    await client.aclose()


@pytest.fixture
async def keys(redis: RedisClient) -> AsyncIterator[ClusterKeys]:
    keys = ClusterKeys(fresh_name("t"))
    yield keys
    await forget_cluster(redis, keys)


def limiter(
    redis: RedisClient, clock: ManualClock, keys: ClusterKeys, limit: str = "send"
) -> RedisRateLimiter:
    return RedisRateLimiter(redis, clock, keys=keys, limit=limit, capacity=3, window_seconds=3)


async def test_two_nodes_share_one_bucket(redis: RedisClient, keys: ClusterKeys) -> None:
    """Tokens taken on one node are gone on the other; the bucket refills at the set rate."""
    clock = ManualClock()
    a, b = limiter(redis, clock, keys), limiter(redis, clock, keys)
    assert await a.try_acquire("alice") is None
    assert await b.try_acquire("alice") is None
    assert await a.try_acquire("alice") is None
    retry_after = await b.try_acquire("alice")
    assert retry_after == pytest.approx(1.0)
    assert await a.try_acquire("bob") is None

    clock.advance(0.5)
    assert await a.try_acquire("alice") == pytest.approx(0.5)
    clock.advance(0.5)
    assert await b.try_acquire("alice") is None
    assert await a.try_acquire("alice") == pytest.approx(1.0)
    clock.advance(10)
    for _ in range(3):
        assert await b.try_acquire("alice") is None
    assert await a.try_acquire("alice") is not None


async def test_limits_with_different_names_do_not_share(
    redis: RedisClient, keys: ClusterKeys
) -> None:
    """The same key under two limits (logins, signups) has two buckets; buckets expire."""
    clock = ManualClock()
    logins, signups = limiter(redis, clock, keys, "login"), limiter(redis, clock, keys, "signup")
    for _ in range(3):
        assert await logins.try_acquire("10.0.0.1") is None
    assert await logins.try_acquire("10.0.0.1") is not None
    assert await signups.try_acquire("10.0.0.1") is None
    assert 0 < await redis.pttl(keys.rate("login", "10.0.0.1")) <= 4000


async def test_tokens_asked_for_at_once_are_taken_in_the_order_asked(
    redis: RedisClient, keys: ClusterKeys
) -> None:
    """Asked together (one pipeline), the first three for a key get its tokens and the rest
    are told when the next is free; another key's bucket is its own."""
    bucket = limiter(redis, ManualClock(), keys)
    asked = ["alice"] * 5 + ["bob"] * 2
    answers = await asyncio.gather(*(bucket.try_acquire(key) for key in asked))
    assert answers[:3] == [None, None, None]
    assert answers[3] == pytest.approx(1.0)
    assert answers[4] == pytest.approx(1.0)
    assert answers[5:] == [None, None]


async def test_a_redis_that_forgot_the_script_is_taught_it_again(
    redis: RedisClient, keys: ClusterKeys
) -> None:
    """After Redis restarts (its scripts flushed), the next tokens are taken as before."""
    bucket = limiter(redis, ManualClock(), keys)
    assert await bucket.try_acquire("alice") is None
    await redis.script_flush()
    again = await asyncio.gather(bucket.try_acquire("alice"), bucket.try_acquire("alice"))
    assert list(again) == [None, None]
    assert await bucket.try_acquire("alice") == pytest.approx(1.0)


async def test_without_redis_each_node_limits_on_its_own(keys: ClusterKeys) -> None:
    """While Redis cannot answer, requests are neither failed nor let through unlimited."""
    redis = open_redis("redis://127.0.0.1:1/0")
    try:
        alone = limiter(redis, ManualClock(), keys)
        for _ in range(3):
            assert await alone.try_acquire("alice") is None
        assert await alone.try_acquire("alice") == pytest.approx(1.0)
    finally:
        await redis.aclose()
