"""Presence fed through the bus as the gateway feeds it: connections, heartbeats, revocations.

tests/unit/test_presence.py covers heartbeats and expiry called directly; these go through
`LocalPresence.observe`, subscribed as the server subscribes it.
"""

from __future__ import annotations

import structlog.testing

from chatapp.accounts import DeviceRevoked
from chatapp.presence import (
    ConnectionClosed,
    ConnectionOpened,
    HeartbeatReceived,
    PresenceChanged,
    UserPresence,
)
from chatapp.testing.fakes import ModulesOnFakes, build_modules_on_fakes


def changes(modules: ModulesOnFakes) -> list[tuple[int, str]]:
    return [(e.user_id, e.status) for e in modules.bus.of_type(PresenceChanged)]


def opened(user_id: int, device_id: int, connection_id: str) -> ConnectionOpened:
    return ConnectionOpened(user_id=user_id, device_id=device_id, connection_id=connection_id)


def closed(user_id: int, device_id: int, connection_id: str) -> ConnectionClosed:
    return ConnectionClosed(user_id=user_id, device_id=device_id, connection_id=connection_id)


async def test_a_connection_makes_its_user_live_and_online() -> None:
    """ConnectionOpened counts as a heartbeat and a live device; presence is subscribed to it."""
    modules = build_modules_on_fakes()
    assert "presence" in modules.bus.subscribers(ConnectionOpened)
    modules.bus.publish(opened(1, 10, "n-1"))
    await modules.bus.deliver()

    assert await modules.presence.has_live_device(1)
    assert changes(modules) == [(1, "online")]
    assert modules.presence_store.saved[1] == ("online", modules.clock.now_ms())


async def test_a_dropped_connection_is_not_offline_until_the_timeout() -> None:
    """ConnectionClosed ends the live connection (push may go to the user again) but the
    user stays online until heartbeats have stopped for the timeout."""
    modules = build_modules_on_fakes()
    modules.bus.publish(opened(1, 10, "n-1"))
    modules.bus.publish(closed(1, 10, "n-1"))
    await modules.bus.deliver()

    assert not await modules.presence.has_live_device(1)
    assert modules.presence.is_online(1)
    modules.clock.advance(modules.settings.presence_timeout_ms / 1000 + 0.2)
    assert await modules.presence.expire_due() == 1
    assert changes(modules) == [(1, "online"), (1, "offline")]


async def test_a_reconnect_in_time_never_shows_offline() -> None:
    """Closing one connection and opening another (with heartbeats) keeps one status."""
    modules = build_modules_on_fakes()
    modules.bus.publish(opened(1, 10, "n-1"))
    modules.bus.publish(closed(1, 10, "n-1"))
    modules.clock.advance(10)
    modules.bus.publish(opened(1, 10, "n-2"))
    modules.bus.publish(HeartbeatReceived(user_id=1, device_id=10, connection_id="n-2"))
    await modules.bus.deliver()
    modules.clock.advance(25)
    await modules.presence.expire_due()

    assert await modules.presence.has_live_device(1)
    assert changes(modules) == [(1, "online")]


async def test_one_of_two_connections_closing_leaves_the_user_live() -> None:
    """has_live_device holds while any connection of the user is open."""
    modules = build_modules_on_fakes()
    modules.bus.publish(opened(1, 10, "n-1"))
    modules.bus.publish(opened(1, 11, "n-2"))
    modules.bus.publish(closed(1, 10, "n-1"))
    await modules.bus.deliver()
    assert await modules.presence.has_live_device(1)


async def test_a_revoked_device_is_gone_at_once() -> None:
    """DeviceRevoked drops the device without waiting for the timeout: its user is offline
    at once, unless another device is still live."""
    modules = build_modules_on_fakes()
    modules.bus.publish(opened(1, 10, "n-1"))
    modules.bus.publish(opened(2, 20, "n-2"))
    modules.bus.publish(opened(2, 21, "n-3"))
    modules.bus.publish(DeviceRevoked(user_id=1, device_id=10))
    modules.bus.publish(DeviceRevoked(user_id=2, device_id=20))
    await modules.bus.deliver()

    assert changes(modules) == [(1, "online"), (2, "online"), (1, "offline")]
    assert modules.presence.is_online(2)
    assert not modules.presence.is_online(1)


async def test_logging_out_through_accounts_reaches_presence() -> None:
    """accounts.logout publishes DeviceRevoked; delivered, it takes the user offline."""
    modules = build_modules_on_fakes()
    login = await modules.sign_up("alice")
    user_id, device_id = login.user.user_id, login.device.device_id
    modules.bus.publish(opened(user_id, device_id, "n-1"))
    await modules.bus.deliver()
    caller = await modules.accounts.authenticate(login.token)
    await modules.accounts.logout(caller)
    await modules.bus.deliver()
    assert changes(modules) == [(user_id, "online"), (user_id, "offline")]


async def test_a_failing_presence_store_costs_the_write_not_the_change() -> None:
    """A save that fails is logged; the user is still online and PresenceChanged is published."""
    modules = build_modules_on_fakes()
    modules.presence_store.failing = True
    modules.bus.publish(opened(1, 10, "n-1"))
    with structlog.testing.capture_logs() as logs:
        await modules.bus.deliver()

    assert changes(modules) == [(1, "online")]
    assert modules.presence_store.saved == {}
    assert [entry["event"] for entry in logs] == ["presence_not_saved"]


async def test_a_stored_status_from_before_a_restart_reads_as_offline() -> None:
    """A stored 'online' is from a process that is gone: statuses says offline, with the
    stored last_active_at; a user never seen is offline at 0."""
    modules = build_modules_on_fakes()
    await modules.presence_store.save(1, "online", 1234)
    assert await modules.presence.statuses([1, 2]) == [
        UserPresence(user_id=1, status="offline", last_active_at=1234),
        UserPresence(user_id=2, status="offline", last_active_at=0),
    ]
