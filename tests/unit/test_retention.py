"""Retention on fakes: which messages a sweep deletes, who is told, and how the work is cut."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

from chatapp.clock import ManualClock
from chatapp.config import Settings
from chatapp.messaging import MessageStoreError, MessageUpdated
from chatapp.messaging.retention import (
    BATCH_ENTRIES,
    BATCH_MESSAGES,
    BATCH_PAUSE_S,
    DAY_MS,
    FIRST_SWEEP_AFTER_S,
    SERVER_ID,
    SWEEP_INTERVAL_S,
    Retention,
)
from chatapp.testing.fakes import ModulesOnFakes, build_modules_on_fakes
from chatapp.testing.fakes.retention import FakeRetentionLedger, TakenTurn


@dataclass
class Counted:
    expired: list[int] = field(default_factory=list)
    sweeps: list[str] = field(default_factory=list)
    pauses: list[float] = field(default_factory=list)

    async def pause(self, seconds: float) -> None:
        self.pauses.append(seconds)


@dataclass
class World:
    modules: ModulesOnFakes
    clock: ManualClock
    ledger: FakeRetentionLedger
    retention: Retention
    counted: Counted
    alice: int
    bob: int
    group: int


async def world(days: int = 30, **kwargs: object) -> World:
    clock = ManualClock()
    loose = Settings(send_burst=1_000_000, group_changes_per_user=1_000_000)
    modules = build_modules_on_fakes(loose, clock=clock)
    alice, bob = [(await modules.sign_up(name)).user.user_id for name in ("alice", "bob")]
    group = (await modules.social.create_group(alice, "team", [bob])).channel_id
    ledger = FakeRetentionLedger(modules.messages)
    counted = Counted()
    retention = Retention(
        modules.messages,
        ledger,
        modules.social,
        modules.bus,
        clock,
        days=days,
        on_expired=counted.expired.append,
        on_sweep=counted.sweeps.append,
        pause=counted.pause,
        **kwargs,  # type: ignore[arg-type]
    )
    return World(modules, clock, ledger, retention, counted, alice, bob, group)


async def send(w: World, count: int, prefix: str) -> list[int]:
    ids = []
    for number in range(count):
        accepted = await w.modules.messaging.accept(w.alice, w.group, f"{prefix}-{number}", "hi")
        ids.append(accepted.message.message_id)
    return ids


async def test_a_sweep_deletes_the_expired_messages_and_nothing_newer() -> None:
    """Messages older than the retention become deleted by the server (deleted_by 0), each
    with an update entry for every member and a MessageUpdated; newer ones stay as they were."""
    w = await world(days=30)
    old = await send(w, 5, "old")
    w.clock.advance(20 * DAY_MS / 1000)
    recent = await send(w, 3, "recent")
    w.clock.advance(11 * DAY_MS / 1000)  # the first five are 31 days old, the rest 11
    w.modules.bus.published.clear()

    done = await w.retention.sweep()

    assert (done.ran, done.expired, done.channels) == (True, 5, 1)
    page = await w.modules.messages.history(w.group, limit=50)
    for message in page.messages:
        if message.message_id in old:
            assert (message.deleted, message.text, message.deleted_by) == (True, "", SERVER_ID)
        else:
            assert (message.deleted, message.text) == (False, "hi")
    updates = [e for e in w.modules.bus.published if isinstance(e, MessageUpdated)]
    assert [(u.message.message_id, u.deleted_by, u.update) for u in updates] == [
        (message_id, SERVER_ID, "deleted") for message_id in old
    ]
    assert all(set(u.inbox_seqs) == {w.alice, w.bob} for u in updates)
    bob_inbox = await w.modules.messages.inbox(w.bob, since=len(old) + len(recent), limit=50)
    assert [(e.message.message_id, e.update) for e in bob_inbox.entries] == [
        (message_id, "deleted") for message_id in old
    ]
    assert w.ledger.cursors == {w.group: old[-1]}
    assert (w.counted.expired, w.counted.sweeps) == ([5], ["done"])


async def test_the_next_sweep_goes_on_from_the_cursor_and_repeats_nothing() -> None:
    """A sweep with nothing newly expired deletes nothing and tells nobody; once more time
    passes, the next one deletes only what expired since, from where the last one stopped."""
    w = await world(days=1)
    first = await send(w, 3, "a")
    w.clock.advance(2 * DAY_MS / 1000)
    second = await send(w, 2, "b")
    assert (await w.retention.sweep()).expired == 3
    w.modules.bus.published.clear()

    assert (await w.retention.sweep()).expired == 0
    assert w.modules.bus.published == []

    w.clock.advance(2 * DAY_MS / 1000)
    assert (await w.retention.sweep()).expired == 2
    assert w.ledger.cursors == {w.group: second[-1]}
    assert w.ledger.advanced == [(w.group, first[-1]), (w.group, second[-1])]


async def test_a_message_a_member_deleted_is_passed_over_not_deleted_again() -> None:
    """A message deleted by its sender before it expired keeps its deleted_by, gets no second
    update entry and is not counted; the cursor moves past it."""
    w = await world(days=1)
    ids = await send(w, 3, "m")
    await w.modules.messaging.delete(w.alice, w.group, ids[1])
    w.clock.advance(2 * DAY_MS / 1000)
    w.modules.bus.published.clear()

    assert (await w.retention.sweep()).expired == 2
    page = await w.modules.messages.history(w.group)
    deleted_by = {m.message_id: m.deleted_by for m in page.messages}
    assert deleted_by == {ids[0]: SERVER_ID, ids[1]: w.alice, ids[2]: SERVER_ID}
    told = [e.message.message_id for e in w.modules.bus.published if isinstance(e, MessageUpdated)]
    assert told == [ids[0], ids[2]]
    assert w.ledger.cursors == {w.group: ids[2]}


async def test_the_work_is_cut_into_bounded_batches_with_a_pause_after_each() -> None:
    """A long expired history is deleted at most BATCH_MESSAGES at a time (fewer in a channel
    of many members, about BATCH_ENTRIES entries a batch), the cursor moving after each."""
    w = await world(days=1)
    count = 2 * BATCH_MESSAGES + 5
    ids = await send(w, count, "m")
    w.clock.advance(2 * DAY_MS / 1000)

    assert (await w.retention.sweep()).expired == count
    assert w.counted.expired == [BATCH_MESSAGES, BATCH_MESSAGES, 5]
    assert [through for _, through in w.ledger.advanced] == [
        ids[BATCH_MESSAGES - 1], ids[2 * BATCH_MESSAGES - 1], ids[-1],
    ]  # fmt: skip
    assert w.counted.pauses == [BATCH_PAUSE_S] * 2

    crowd = [(await w.modules.sign_up(f"member{i}")).user.user_id for i in range(99)]
    big = (await w.modules.social.create_group(w.alice, "crowd", crowd)).channel_id
    for number in range(30):
        await w.modules.messaging.accept(w.alice, big, f"big-{number}", "hello")
    w.clock.advance(2 * DAY_MS / 1000)
    w.counted.expired.clear()
    assert (await w.retention.sweep()).expired == 30
    per_batch = BATCH_ENTRIES // 100
    assert w.counted.expired == [per_batch, 30 - per_batch]


async def test_a_process_without_the_turn_skips_the_sweep() -> None:
    """Where another process has the turn (a cluster's other node), nothing is deleted here."""
    w = await world(days=1, turn=TakenTurn())
    await send(w, 2, "m")
    w.clock.advance(2 * DAY_MS / 1000)

    done = await w.retention.sweep()

    assert (done.ran, done.expired) == (False, 0)
    assert not any(m.deleted for m in (await w.modules.messages.history(w.group)).messages)
    assert w.counted.sweeps == ["elsewhere"]


async def test_a_failed_write_stops_the_sweep_and_the_next_one_goes_on() -> None:
    """A deletion the store cannot write fails the sweep with MessageStoreError before the
    cursor passes it; the others of its batch stay deleted and are told; the next sweep
    deletes the one that failed."""
    w = await world(days=1)
    ids = await send(w, 3, "m")
    w.clock.advance(2 * DAY_MS / 1000)
    w.modules.messages.fail_only = {"change"}
    w.modules.messages.fail_next = True
    w.modules.bus.published.clear()

    with pytest.raises(MessageStoreError):
        await w.retention.sweep()

    assert w.ledger.cursors == {}
    assert w.counted.sweeps == ["failed"]
    told = [e.message.message_id for e in w.modules.bus.published if isinstance(e, MessageUpdated)]
    assert told == ids[1:]
    assert (await w.retention.sweep()).expired == 1
    assert w.ledger.cursors == {w.group: ids[-1]}


async def test_the_cursor_moves_only_once_the_deletions_are_stored() -> None:
    """While the store holds the deletions back (not yet durable), the cursor stays."""
    w = await world(days=1)
    await send(w, 2, "m")
    w.clock.advance(2 * DAY_MS / 1000)
    w.modules.messages.hold()
    sweeping = asyncio.create_task(w.retention.sweep())
    for _ in range(20):
        await asyncio.sleep(0)
    assert w.ledger.advanced == []
    w.modules.messages.release()
    assert (await sweeping).expired == 2
    assert w.ledger.advanced == [(w.group, 2)]


def test_retention_needs_a_day_at_least() -> None:
    """0 days means forever: such a Retention is never built."""
    modules = build_modules_on_fakes()
    with pytest.raises(ValueError, match="at least one day"):
        Retention(
            modules.messages,
            FakeRetentionLedger(modules.messages),
            modules.social,
            modules.bus,
            modules.clock,
            days=0,
        )


async def test_started_it_sweeps_soon_then_once_an_interval() -> None:
    """`start` waits FIRST_SWEEP_AFTER_S, sweeps, then waits the rest of the interval;
    `close` stops it."""
    w = await world(days=1)
    await send(w, 2, "m")
    w.clock.advance(2 * DAY_MS / 1000)
    waits: list[float] = []
    swept = asyncio.Event()

    async def pause(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) > 1:
            swept.set()
            await asyncio.Event().wait()  # until cancelled

    retention = Retention(
        w.modules.messages, w.ledger, w.modules.social, w.modules.bus, w.clock, days=1, pause=pause
    )
    retention.start()
    await asyncio.wait_for(swept.wait(), 5)
    await retention.close()

    assert waits == [FIRST_SWEEP_AFTER_S, SWEEP_INTERVAL_S]
    assert all(m.deleted for m in (await w.modules.messages.history(w.group)).messages)
