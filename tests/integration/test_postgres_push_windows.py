"""Collapse windows shared by nodes on a real PostgreSQL: one node delivers each window,
and a window whose node died is delivered by another once its lease runs out."""

from __future__ import annotations

import asyncio

import asyncpg

from chatapp.clock import ManualClock
from chatapp.notify.adapters.postgres_windows import (
    EXPIRE_EVERY_MS,
    STALE_WINDOW_MS,
    PostgresPushWindows,
)
from chatapp.notify.windows import Opening

WINDOW_MS = 1_000
LEASE_MS = 10_000


def opening(
    device_id: int,
    message_id: int,
    *,
    seq: int,
    text: str | None = None,
    provider: str | None = None,
) -> Opening:
    return Opening(
        user_id=device_id * 10,
        device_id=device_id,
        channel_id=5,
        sender_id=1,
        message_id=message_id,
        seq=seq,
        created_at=message_id,
        text=text,
        text_truncated=False if text is not None else None,
        provider=provider,
    )


def node(
    pool: asyncpg.Pool, clock: ManualClock, name: str, providers: tuple[str, ...] = ()
) -> PostgresPushWindows:
    return PostgresPushWindows(
        pool, clock, node_name=name, window_ms=WINDOW_MS, lease_ms=LEASE_MS, providers=providers
    )


async def test_a_node_claims_only_windows_of_its_providers(pool: asyncpg.Pool) -> None:
    """Nodes with different providers: each window goes to a node that has its provider; one
    of a provider no node has waits; one that names none (opened before windows named theirs)
    goes to any node."""
    clock = ManualClock()
    web = node(pool, clock, "web", ("webpush",))
    both = node(pool, clock, "both", ("apns", "webpush"))
    await web.add([opening(7, 1, seq=1, provider="apns"), opening(8, 1, seq=1, provider="fcm")])
    await both.add([opening(9, 1, seq=1, provider="webpush"), opening(10, 1, seq=1)])
    clock.advance(WINDOW_MS / 1000)
    assert {w.newest.device_id for w in await web.take_due()} == {9, 10}
    (apns,) = await both.take_due()
    assert (apns.newest.device_id, apns.newest.provider) == (7, "apns")
    assert await pool.fetchval("SELECT count(*) FROM push_windows WHERE claimed_by IS NULL") == 1


async def test_a_window_gathers_messages_and_falls_due_once_for_one_node(
    pool: asyncpg.Pool,
) -> None:
    """Messages join the open window (the newest by seq describes it, text with U+0000
    kept); it is due after the window, and of two nodes looking at once only one gets it."""
    clock = ManualClock()
    n1, n2 = node(pool, clock, "n1"), node(pool, clock, "n2")
    await n1.add([opening(7, 1, seq=1), opening(8, 1, seq=4)])
    await n2.add([opening(7, 3, seq=3, text="newest\x00one")])
    await n1.add([opening(7, 2, seq=2)])
    assert await n1.take_due() == []
    clock.advance(WINDOW_MS / 1000)
    taken = await asyncio.gather(n1.take_due(), n2.take_due())
    windows = [window for batch in taken for window in batch]
    assert sorted((w.newest.device_id, w.count, w.newest.seq) for w in windows) == [
        (7, 3, 3),
        (8, 1, 4),
    ]
    by_device = {w.newest.device_id: w for w in windows}
    assert by_device[7].newest.text == "newest\x00one"
    assert by_device[7].newest.message_id == 3
    assert len({w.notification_id for w in windows}) == 2
    assert await n1.take_due() == []
    assert await n2.take_due() == []


async def test_a_claimed_window_takes_no_more_messages_and_is_gone_when_finished(
    pool: asyncpg.Pool,
) -> None:
    """A message arriving while a window is being delivered opens the next window."""
    clock = ManualClock()
    n1 = node(pool, clock, "n1")
    await n1.add([opening(7, 1, seq=1)])
    clock.advance(WINDOW_MS / 1000)
    (first,) = await n1.take_due()
    await n1.add([opening(7, 2, seq=2)])
    await n1.finished(first)
    assert await n1.take_due() == []
    clock.advance(WINDOW_MS / 1000)
    (second,) = await n1.take_due()
    assert (second.count, second.newest.message_id) == (1, 2)
    assert second.notification_id != first.notification_id
    await n1.finished(second)
    assert await pool.fetchval("SELECT count(*) FROM push_windows") == 0


async def test_a_dead_nodes_window_is_taken_over_after_its_lease_with_the_same_id(
    pool: asyncpg.Pool,
) -> None:
    """n1 claims a window and never finishes it (it died): nobody gets it during the lease,
    then n2 does, under the notification id n1 had."""
    clock = ManualClock()
    n1, n2 = node(pool, clock, "n1"), node(pool, clock, "n2")
    await n1.add([opening(7, 1, seq=1)])
    clock.advance(WINDOW_MS / 1000)
    (claimed,) = await n1.take_due()
    clock.advance(LEASE_MS / 1000 - 0.001)
    assert await n2.take_due() == []
    clock.advance(0.002)
    (taken_over,) = await n2.take_due()
    assert taken_over == claimed


async def test_a_revoked_device_loses_its_windows(pool: asyncpg.Pool) -> None:
    clock = ManualClock()
    n1 = node(pool, clock, "n1")
    await n1.add([opening(7, 1, seq=1), opening(8, 1, seq=1)])
    await n1.forget_device(7)
    clock.advance(WINDOW_MS / 1000)
    assert [w.newest.device_id for w in await n1.take_due()] == [8]


async def test_a_window_no_node_can_send_is_dropped_an_hour_after_it_fell_due(
    pool: asyncpg.Pool,
) -> None:
    """A window of a provider no node has waits unclaimed; past `STALE_WINDOW_MS` after it
    fell due, the next look drops it. Windows a node can send are never dropped so."""
    clock = ManualClock()
    web = node(pool, clock, "web", ("webpush",))
    await web.add([opening(7, 1, seq=1, provider="apns")])
    clock.advance(WINDOW_MS / 1000)
    assert await web.take_due() == []
    clock.advance(STALE_WINDOW_MS / 1000 - 1)
    assert await web.take_due() == []
    assert await pool.fetchval("SELECT count(*) FROM push_windows") == 1
    await web.add([opening(8, 2, seq=1, provider="webpush")])
    clock.advance(EXPIRE_EVERY_MS / 1000)  # the next look that drops
    (sendable,) = await web.take_due()
    assert sendable.newest.device_id == 8
    assert await pool.fetchval("SELECT count(*) FROM push_windows") == 1  # only the claimed


async def test_a_window_handed_over_goes_to_a_node_with_the_provider(pool: asyncpg.Pool) -> None:
    """A window taken by a node whose device has since moved to a provider that node lacks
    is handed over: that node never takes it again, one with the provider takes it at its
    next look, under the same notification id."""
    clock = ManualClock()
    web, apple = node(pool, clock, "web", ("webpush",)), node(pool, clock, "apple", ("apns",))
    await web.add([opening(7, 1, seq=1, provider="webpush")])
    clock.advance(WINDOW_MS / 1000)
    (taken,) = await web.take_due()
    await web.hand_over(taken, "apns")
    assert await web.take_due() == []
    (again,) = await apple.take_due()
    assert (again.notification_id, again.newest.provider) == (taken.notification_id, "apns")
    assert await apple.take_due() == []
