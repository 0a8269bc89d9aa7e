"""Block questions asked together share one query, and each still gets its own answer."""

from __future__ import annotations

import asyncio

import pytest

from chatapp.social.block_batch import BatchedBlockLookups
from chatapp.social.store import ChannelStoreError
from chatapp.testing.fakes import FakeBlockStore


async def test_questions_asked_at_once_are_one_query_with_every_answer_right() -> None:
    store = FakeBlockStore()
    await store.block(1, 2, at=0)
    await store.block(6, 5, at=0)
    lookups = BatchedBlockLookups(store)
    answers = await asyncio.gather(
        lookups.between(1, 2),
        lookups.between(2, 1),
        lookups.between(3, 4),
        lookups.between(5, 6),
        lookups.between(1, 2),
    )
    assert list(answers) == [True, True, False, True, True]
    assert store.pair_queries == [[(1, 2), (3, 4), (5, 6)]]


async def test_a_block_made_after_one_round_counts_in_the_next() -> None:
    store = FakeBlockStore()
    lookups = BatchedBlockLookups(store)
    assert not await lookups.between(1, 2)
    await lookups.block(2, 1, at=0)
    assert await lookups.between(1, 2)
    await lookups.unblock(2, 1)
    assert not await lookups.between(2, 1)
    assert len(store.pair_queries) == 3


async def test_more_pairs_than_one_query_takes_go_in_the_next() -> None:
    store = FakeBlockStore()
    await store.block(9, 10, at=0)
    lookups = BatchedBlockLookups(store, max_pairs=2)
    answers = await asyncio.gather(*(lookups.between(n, n + 1) for n in range(1, 12, 2)))
    assert answers == [False, False, False, False, True, False]
    assert [len(query) for query in store.pair_queries] == [2, 2, 2]


async def test_a_failed_query_fails_every_question_in_it_and_not_the_next() -> None:
    store = FakeBlockStore()
    store.fail_next = True
    lookups = BatchedBlockLookups(store)
    first, second = await asyncio.gather(
        lookups.between(1, 2), lookups.between(3, 4), return_exceptions=True
    )
    assert isinstance(first, ChannelStoreError)
    assert isinstance(second, ChannelStoreError)
    assert not await lookups.between(1, 2)


async def test_a_caller_that_gives_up_leaves_the_others_their_answer() -> None:
    store = FakeBlockStore()
    await store.block(1, 2, at=0)
    lookups = BatchedBlockLookups(store)
    leaving = asyncio.create_task(lookups.between(1, 2))
    staying = asyncio.create_task(lookups.between(2, 1))
    await asyncio.sleep(0)
    leaving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leaving
    assert await staying
