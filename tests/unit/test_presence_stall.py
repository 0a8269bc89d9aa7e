"""The presence sweeper after the process was stopped (SIGSTOP/SIGCONT), on a manual clock:
heartbeats that queued up meanwhile are heard before anyone is expired."""

from __future__ import annotations

from chatapp.clock import ManualClock
from chatapp.presence import LocalPresence, PresenceChanged
from chatapp.presence.service import SWEEP_INTERVAL
from chatapp.testing.fakes import FakePresenceStore, RecordingBus

TIMEOUT = 30.0
HEARTBEAT_EVERY = 5.0
LIVE, STOPPED = (1, 10), (2, 20)


def make() -> tuple[LocalPresence, ManualClock, RecordingBus]:
    clock, bus = ManualClock(), RecordingBus()
    presence = LocalPresence(FakePresenceStore(), bus, clock, timeout_ms=int(TIMEOUT * 1000))
    return presence, clock, bus


def changes(bus: RecordingBus) -> list[tuple[int, str]]:
    return [(e.user_id, e.status) for e in bus.published if isinstance(e, PresenceChanged)]


async def run_sweeper(
    presence: LocalPresence,
    clock: ManualClock,
    seconds: float,
    *,
    heartbeating: tuple[tuple[int, int], ...] = (),
) -> list[float]:
    """Sweep every SWEEP_INTERVAL for `seconds`, the `heartbeating` devices heartbeating
    every HEARTBEAT_EVERY; returns the times (since the start) at which devices expired."""
    expired_at: list[float] = []
    steps = round(seconds / SWEEP_INTERVAL)
    per_heartbeat = round(HEARTBEAT_EVERY / SWEEP_INTERVAL)
    for step in range(1, steps + 1):
        clock.advance(SWEEP_INTERVAL)
        if step % per_heartbeat == 0:
            for device in heartbeating:
                await presence.heartbeat(*device)
        expired_at += [step * SWEEP_INTERVAL] * await presence.sweep()
    return expired_at


async def test_a_stall_does_not_flap_devices_whose_heartbeats_queued_up() -> None:
    """40 s stopped, then the sweeper runs before the queued heartbeats: nobody is expired,
    and the heartbeats that follow find everyone still online (no offline, no online)."""
    presence, clock, bus = make()
    await presence.heartbeat(*LIVE)
    await presence.heartbeat(*STOPPED)
    await presence.sweep()

    clock.advance(40)  # SIGSTOP ... SIGCONT
    assert await presence.sweep() == 0
    await presence.heartbeat(*LIVE)
    await presence.heartbeat(*STOPPED)

    assert await run_sweeper(presence, clock, 60, heartbeating=(LIVE, STOPPED)) == []
    assert changes(bus) == [(1, "online"), (2, "online")]


async def test_a_device_that_really_stopped_is_expired_after_the_grace() -> None:
    """A device silent through the stall and after it is expired one timeout after the
    process resumed (not before), while a device that heartbeats stays online."""
    presence, clock, bus = make()
    await presence.heartbeat(*LIVE)
    await presence.heartbeat(*STOPPED)
    await presence.sweep()

    clock.advance(40)
    assert await presence.sweep() == 0
    await presence.heartbeat(*LIVE)
    expired_at = await run_sweeper(presence, clock, 40, heartbeating=(LIVE,))

    assert expired_at == [TIMEOUT]
    assert changes(bus) == [(1, "online"), (2, "online"), (2, "offline")]
    assert presence.is_online(LIVE[0])


async def test_sweeps_on_time_expire_at_the_timeout() -> None:
    """Without a stall nothing changes: silence for one timeout expires the device at the
    first sweep past its deadline."""
    presence, clock, bus = make()
    await presence.heartbeat(*STOPPED)
    await presence.sweep()

    expired_at = await run_sweeper(presence, clock, 40)

    assert expired_at == [TIMEOUT]
    assert changes(bus) == [(2, "online"), (2, "offline")]


async def test_a_short_delay_is_not_a_stall() -> None:
    """A sweep a few seconds late (under half a timeout) expires what is due, as usual."""
    presence, clock, _ = make()
    await presence.heartbeat(*STOPPED)
    await presence.sweep()
    assert await run_sweeper(presence, clock, TIMEOUT - 5) == []

    clock.advance(10)  # late by 9.5 s: less than half the timeout
    assert await presence.sweep() == 1


async def test_a_logout_during_the_grace_ends_the_device_at_once() -> None:
    """The grace holds back expiry by time only: a revoked device goes offline now."""
    presence, clock, bus = make()
    await presence.heartbeat(*STOPPED)
    await presence.sweep()
    clock.advance(40)
    await presence.sweep()

    await presence.device_gone(*STOPPED)

    assert changes(bus) == [(2, "online"), (2, "offline")]
