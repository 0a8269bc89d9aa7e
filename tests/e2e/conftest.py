"""The end-to-end API suites run on the embedded server and again on a cluster.

In the modules of `ALSO_ON_CLUSTER`, every test that takes `chat_server` runs
twice: on one embedded server, and on two real nodes over PostgreSQL and
Redis (`chatapp.testing.cluster_server`), its clients and sockets spread
over both. A test that needs what only an in-process server offers (settling
the bus, the services, a clock it moves) is marked `embedded_only`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from chatapp.config import Settings
from chatapp.testing.cluster import local_cluster
from chatapp.testing.cluster_server import ClusterServer, settings_as_env
from chatapp.testing.server import run_server

ALSO_ON_CLUSTER = {
    "test_accounts_api.py",
    "test_admin_roles_and_state.py",
    "test_authorization_matrix.py",
    "test_blocks.py",
    "test_channels_api.py",
    "test_gateway.py",
    "test_group_adds.py",
    "test_message_lifecycle.py",
    "test_moderation.py",
    "test_notification_levels.py",
    "test_own_account.py",
    "test_read_receipts.py",
    "test_realtime_client.py",
    "test_registration.py",
    "test_search.py",
}
CLUSTER_NODES = ("n1", "n2")
# The embedded server's timing, not the cluster suite's faster one: the tests
# check what a client is told.
EMBEDDED_TIMING = {
    "presence_timeout_ms": Settings.model_fields["presence_timeout_ms"].default,
    "heartbeat_interval_ms": Settings.model_fields["heartbeat_interval_ms"].default,
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "chat_server" not in metafunc.fixturenames:
        return
    if Path(str(metafunc.definition.path)).name not in ALSO_ON_CLUSTER:
        return
    if metafunc.definition.get_closest_marker("embedded_only"):
        return
    cluster = pytest.param("cluster", marks=pytest.mark.slow)
    metafunc.parametrize("chat_server_kind", ["embedded", cluster], indirect=True)


@pytest.fixture
def chat_server_kind(request: pytest.FixtureRequest) -> str:
    """Where `chat_server` runs: "embedded" unless the test is parametrised onto a cluster."""
    kind: str = getattr(request, "param", "embedded")
    return kind


@pytest_asyncio.fixture
async def chat_server(
    tmp_path: Path, chat_server_settings: dict[str, Any], chat_server_kind: str
) -> AsyncIterator[Any]:
    """The plugin's `chat_server`, or a two-node cluster in its shape."""
    if chat_server_kind == "embedded":
        async with run_server(tmp_path / "chat-data", **chat_server_settings) as server:
            yield server
        return
    async with local_cluster(
        tmp_path,
        nodes=CLUSTER_NODES,
        settings=settings_as_env({**EMBEDDED_TIMING, **chat_server_settings}),
    ) as cluster:
        yield ClusterServer(cluster)
