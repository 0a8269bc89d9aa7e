"""`max_connections` against the open-file limit at start-up: raised, lowered, or refused."""

from __future__ import annotations

import errno
import inspect

import pytest
from structlog.testing import capture_logs

from chatapp.bootstrap.open_files import (
    POSTGRES_CONNECTIONS,
    PUSH_FILES_PER_WORKER,
    fit_connections,
    reserved_files,
)
from chatapp.config import Settings
from chatapp.errors import StartupRefused
from chatapp.storage.postgres import open_postgres


class FakeFileLimit:
    """RLIMIT_NOFILE as two numbers (None is unlimited); raising fails as the system's would."""

    def __init__(self, soft: int | None, hard: int | None, *, refuse: bool = False) -> None:
        self.soft = soft
        self.hard = hard
        self.refuse = refuse
        self.raised_to: list[int] = []

    def current(self) -> tuple[int | None, int | None]:
        return self.soft, self.hard

    def raise_soft(self, to: int) -> None:
        if self.refuse:
            raise OSError(errno.EPERM, "Operation not permitted")
        if self.hard is not None and to > self.hard:
            raise ValueError("not allowed to raise maximum limit")
        self.raised_to.append(to)
        self.soft = to


SETTINGS = Settings(max_connections=1000)
RESERVE = reserved_files(SETTINGS)


def test_a_limit_that_holds_every_connection_is_left_alone() -> None:
    """With room for max_connections and the reserve, nothing is raised, lowered or logged."""
    limit = FakeFileLimit(1000 + RESERVE, 1_048_576)
    with capture_logs() as logs:
        assert fit_connections(SETTINGS, limit) is SETTINGS
    assert limit.raised_to == []
    assert logs == []


def test_a_low_soft_limit_is_raised_to_the_hard_limit() -> None:
    """A soft limit too low for max_connections is raised to the hard limit, the ceiling the
    operator set, and max_connections stays as configured."""
    limit = FakeFileLimit(1024, 524_288)
    with capture_logs() as logs:
        fitted = fit_connections(SETTINGS, limit)
    assert fitted.max_connections == 1000
    assert limit.raised_to == [524_288]
    assert [log["event"] for log in logs] == ["open_file_limit_raised"]


def test_an_unlimited_hard_limit_raises_the_soft_limit_to_what_is_needed() -> None:
    """With no hard limit, the soft limit is raised to max_connections plus the reserve."""
    limit = FakeFileLimit(256, None)
    assert fit_connections(SETTINGS, limit).max_connections == 1000
    assert limit.raised_to == [1000 + RESERVE]


def test_what_the_hard_limit_cannot_hold_lowers_max_connections_with_one_warning() -> None:
    """Raised to the hard limit and still too low, max_connections is lowered to what fits
    beside the reserve, with one warning that names both numbers."""
    limit = FakeFileLimit(256, 800)
    with capture_logs() as logs:
        fitted = fit_connections(SETTINGS, limit)
    assert fitted.max_connections == 800 - RESERVE
    warnings = [log for log in logs if log["log_level"] == "warning"]
    assert warnings == [
        {
            "event": "max_connections_lowered",
            "log_level": "warning",
            "max_connections": 1000,
            "lowered_to": 800 - RESERVE,
            "open_file_limit": 800,
            "reserved_files": RESERVE,
        }
    ]


def test_a_limit_that_cannot_be_raised_lowers_max_connections() -> None:
    """When the system refuses to raise the soft limit, the soft limit is what binds."""
    limit = FakeFileLimit(RESERVE + 10, 1_048_576, refuse=True)
    with capture_logs() as logs:
        fitted = fit_connections(SETTINGS, limit)
    assert fitted.max_connections == 10
    assert [log["event"] for log in logs] == [
        "open_file_limit_not_raised",
        "max_connections_lowered",
    ]


def test_a_limit_with_no_room_for_one_connection_refuses_the_start_in_one_line() -> None:
    """A hard limit at or below the reserve leaves no connection: the start is refused, in
    one line naming the limit, the reserve, what would do, and how to raise it."""
    limit = FakeFileLimit(RESERVE, RESERVE)
    with pytest.raises(StartupRefused) as refusal:
        fit_connections(SETTINGS, limit)
    message = str(refusal.value)
    assert "\n" not in message
    assert f"the open-file limit is {RESERVE}" in message
    assert f"raise it to {1000 + RESERVE}" in message
    assert "ulimit -n" in message


def test_the_reserve_counts_what_the_settings_open() -> None:
    """Each push provider that posts adds connections per worker; the log provider none; a
    cluster node keeps no LevelDB or SQLite files but a database pool and Redis instead."""
    pushing = Settings(push_providers=["log", "ntfy"], push_workers=5)
    assert reserved_files(pushing) == RESERVE + 5 * PUSH_FILES_PER_WORKER
    cluster = Settings(database_url="postgresql://db/chat", redis_url="redis://cache")
    assert reserved_files(cluster) < RESERVE


def test_the_reserve_counts_the_pool_cluster_mode_opens() -> None:
    """The cluster reserve's PostgreSQL connections are the pool's own bound."""
    max_size = inspect.signature(open_postgres).parameters["max_size"].default
    assert max_size == POSTGRES_CONNECTIONS
