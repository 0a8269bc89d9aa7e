"""Presence logic on a manual clock with an in-memory store (no server)."""

from __future__ import annotations

from pydantic import BaseModel

from chatapp.bus import InProcessBus
from chatapp.clock import ManualClock
from chatapp.presence import LocalPresence, PresenceChanged, TimingWheel
from chatapp.presence.events import Status


class MemoryPresenceStore:
    """A PresenceStore in a dict, counting writes."""

    def __init__(self) -> None:
        self.saved: dict[int, tuple[Status, int]] = {}
        self.writes = 0

    async def load(self, user_id: int) -> tuple[Status, int] | None:
        return self.saved.get(user_id)

    async def save(self, user_id: int, status: Status, last_active_at: int) -> None:
        self.saved[user_id] = (status, last_active_at)
        self.writes += 1

    async def close(self) -> None:
        return None


class RecordingBus(InProcessBus):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[BaseModel] = []

    def publish(self, event: BaseModel) -> None:
        self.events.append(event)


def make(
    timeout_ms: int = 30_000,
) -> tuple[LocalPresence, ManualClock, MemoryPresenceStore, RecordingBus]:
    clock, store, bus = ManualClock(), MemoryPresenceStore(), RecordingBus()
    return LocalPresence(store, bus, clock, timeout_ms=timeout_ms), clock, store, bus


def changes(bus: RecordingBus) -> list[tuple[int, str]]:
    return [(e.user_id, e.status) for e in bus.events if isinstance(e, PresenceChanged)]


async def test_online_on_first_heartbeat_offline_after_timeout() -> None:
    """The first heartbeat makes a user online; 30 s of silence makes them offline."""
    presence, clock, _, bus = make()
    await presence.heartbeat(1, 10)
    assert changes(bus) == [(1, "online")]
    clock.advance(29.8)
    assert await presence.expire_due() == 0
    clock.advance(0.4)
    assert await presence.expire_due() == 1
    assert changes(bus) == [(1, "online"), (1, "offline")]
    (offline,) = await presence.statuses([1])
    assert (offline.status, offline.last_active_at) == ("offline", clock.now_ms() - 30_200)


async def test_heartbeats_keep_a_user_online_without_flapping() -> None:
    """Heartbeats inside the timeout, from any device, keep the user online with no changes."""
    presence, clock, _, bus = make()
    await presence.heartbeat(1, 10)
    for _ in range(20):
        clock.advance(20)
        await presence.heartbeat(1, 10 if clock.monotonic() % 40 else 11)
        await presence.expire_due()
    assert changes(bus) == [(1, "online")]


async def test_logout_of_the_last_device_is_offline_at_once() -> None:
    """device_gone ends a device now; the user is offline only when no device is left."""
    presence, _, _, bus = make()
    await presence.heartbeat(1, 10)
    await presence.heartbeat(1, 11)
    await presence.device_gone(1, 10)
    assert presence.is_online(1)
    await presence.device_gone(1, 11)
    assert not presence.is_online(1)
    assert changes(bus) == [(1, "online"), (1, "offline")]


async def test_heartbeats_do_not_write_to_disk_each_time() -> None:
    """Status changes are written; last_active_at otherwise at most once a minute."""
    presence, clock, store, _ = make()
    await presence.heartbeat(1, 10)
    for _ in range(60):
        clock.advance(5)
        await presence.heartbeat(1, 10)
    # One write for going online, then one per 60 s of the 300 s that passed.
    assert store.writes == 1 + 5


async def test_ten_thousand_online_cost_no_sweep_work() -> None:
    """10,000 users heartbeating on time: expiry examines no entry at all."""
    presence, clock, _, _ = make()
    for user_id in range(1, 10_001):
        await presence.heartbeat(user_id, user_id)
    for _ in range(10):
        clock.advance(5)
        for user_id in range(1, 10_001):
            await presence.heartbeat(user_id, user_id)
        assert await presence.expire_due() == 0
    assert presence.sweep_work == 0
    clock.advance(31)
    assert await presence.expire_due() == 10_000
    assert presence.sweep_work == 10_000


def test_timing_wheel_moves_and_cancels() -> None:
    """A moved key expires at its new deadline; a cancelled one never does."""
    wheel: TimingWheel[str] = TimingWheel(resolution=1.0)
    wheel.schedule("a", 10.0)
    wheel.schedule("b", 10.0)
    wheel.schedule("a", 20.0)
    wheel.cancel("b")
    assert wheel.pop_due(15.0) == []
    assert wheel.pop_due(20.0) == ["a"]
    assert len(wheel) == 0


async def test_a_live_device_s_heartbeat_is_taken_without_an_event() -> None:
    """heard() moves a live device's deadline at once (True); a device not live yet, or
    one whose last_active_at is due to be saved, is left to the event (False)."""
    presence, clock, store, _ = make()
    assert not presence.heard(1, 10)  # not live: coming online goes through observe
    await presence.heartbeat(1, 10)
    writes = store.writes
    clock.advance(20)
    assert presence.heard(1, 10)
    clock.advance(20)  # 40 s after the first heartbeat, 20 s after the one heard
    assert await presence.expire_due() == 0
    assert presence.is_online(1)
    assert store.writes == writes

    clock.advance(25)  # a minute since it was saved: the next one is saved, as an event
    assert not presence.heard(1, 10)


async def test_a_heartbeat_heard_before_a_revocation_does_not_undo_it() -> None:
    """A heartbeat taken directly while a revocation waits in the queue: the revocation,
    handled after it, still ends the device at once."""
    presence, _, _, bus = make()
    await presence.heartbeat(1, 10)
    assert presence.heard(1, 10)
    await presence.device_gone(1, 10)
    assert not presence.is_online(1)
    assert changes(bus) == [(1, "online"), (1, "offline")]
