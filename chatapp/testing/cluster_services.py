"""PostgreSQL and Redis for cluster-mode tests: a fresh schema and a fresh key prefix each.

Tests that need them call `postgres_url()` / `redis_url()`. Where the service
cannot be reached the test is skipped with the reason, except when
`CLUSTER_TESTS_REQUIRED=1` (CI sets it), where it fails: CI always
runs the cluster suite. The variables are not named CHATAPP_*, which the
servers under test would take for settings.
"""

from __future__ import annotations

import os
import secrets
import socket
from urllib.parse import urlsplit

import pytest

POSTGRES_URL = os.environ.get(
    "CLUSTER_TESTS_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("CLUSTER_TESTS_REDIS_URL", "redis://127.0.0.1:6379/0")


def unavailable(service: str, url: str, why: str) -> None:
    """Skip (or, when CI requires the services, fail) a test that needs `service`."""
    message = (
        f"{service} at {url} is not reachable ({why}); see README, 'Running more than one node'"
    )
    if os.environ.get("CLUSTER_TESTS_REQUIRED") == "1":
        pytest.fail(message)
    pytest.skip(message)


def reachable(url: str, default_port: int) -> str | None:
    """None when something listens at the URL's host and port, else the reason."""
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), 1
        ):
            return None
    except OSError as error:
        return str(error)


def postgres_url() -> str:
    """The test database's URL, or skip/fail when PostgreSQL is not there."""
    why = reachable(POSTGRES_URL, 5432)
    if why is not None:
        unavailable("PostgreSQL", POSTGRES_URL, why)
    return POSTGRES_URL


def redis_url() -> str:
    """The test Redis's URL, or skip/fail when Redis is not there."""
    why = reachable(REDIS_URL, 6379)
    if why is not None:
        unavailable("Redis", REDIS_URL, why)
    return REDIS_URL


def fresh_name(prefix: str) -> str:
    """A name no other test run uses: for a PostgreSQL schema or a Redis key prefix."""
    return f"{prefix}_{secrets.token_hex(6)}"
