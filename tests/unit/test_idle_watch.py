"""One watch closes every connection that has said nothing for the idle period (4408)."""

from __future__ import annotations

from chatapp.gateway.connection import CLOSE_HELLO_TIMEOUT, Connection
from chatapp.gateway.idle import IdleWatch
from chatapp.testing.fakes import FakeSocket


def connection(number: int, heard_at: float) -> tuple[Connection, FakeSocket]:
    socket = FakeSocket()
    made = Connection(
        socket, connection_id=f"n-{number}", user_id=1, device_id=number, queue_size=16
    )
    made.heard_at = heard_at
    return made, socket


async def test_only_connections_silent_for_the_idle_period_are_closed() -> None:
    """At `now`, those last heard `idle_seconds` ago or earlier are closed with 4408 once;
    one heard since stays open."""
    silent, silent_socket = connection(1, heard_at=100.0)
    talking, _ = connection(2, heard_at=105.0)
    watch = IdleWatch(lambda: [silent, talking], idle_seconds=10.0)

    assert watch.close_idle(now=109.9) == 0
    assert watch.close_idle(now=110.0) == 1
    assert watch.close_idle(now=111.0) == 0  # closing already: not closed again
    assert await silent_socket.wait_closed() == CLOSE_HELLO_TIMEOUT
    assert silent_socket.close_message == b"no frame for too long"
    assert talking.close_code is None
    for made in (silent, talking):
        await made.finish()
