"""A cluster of real nodes that a test can use where it would use one `RunningServer`.

`ClusterServer` answers the calls the end-to-end tests make of a server (its
URLs, clients, users and devices), so that the same test runs against the
embedded server and against a cluster (see tests/e2e/conftest.py). Each new
client talks to the next node in turn, and `ws_url` is another node than
`url`, so a test's users, their devices and their sockets are spread over
the nodes and everything they see has crossed between nodes.

`settle` waits until every node's bus is quiet, read from each node's
`/metrics`: nothing queued or being handled anywhere, and every event a node
sent heard by the others. What cannot be known from outside a process is not
offered (the services, a clock the test moves): tests that need those are
marked `embedded_only`.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass
from typing import Any

from chatapp.client import ChatClient
from chatapp.testing.cluster import LocalCluster
from chatapp.testing.server import ServerUsers

_BUS_SAMPLES = {
    "chatapp_bus_events_sent_total": "sent",
    "chatapp_bus_events_received_total": "received",
    "chatapp_bus_backlog": "backlog",
}


@dataclass(frozen=True)
class BusFigures:
    sent: int = 0
    received: int = 0
    backlog: int = 0


class NotOnCluster(TypeError):
    """The test asked for something only an in-process server has; mark it embedded_only."""


class ClusterServer(ServerUsers):
    """The nodes of `cluster` as one server, in the shape of `RunningServer`."""

    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster = cluster
        self._node_ids = list(cluster.nodes)
        self._turns = itertools.cycle(self._node_ids)
        self._names = itertools.count(1)
        self._metrics_clients: dict[str, ChatClient] = {}

    @property
    def url(self) -> str:
        return self.cluster.url(self._node_ids[0])

    @property
    def ws_url(self) -> str:
        return self.cluster.ws_url(self._node_ids[-1])

    @property
    def ws_urls(self) -> list[str]:
        """Every node's WebSocket URL: where discovery may send a client."""
        return [self.cluster.ws_url(node_id) for node_id in self._node_ids]

    def client(self, token: str | None = None) -> ChatClient:
        """An HTTP client of the next node in turn, closed with the cluster."""
        return self.cluster.client(next(self._turns), token)

    async def make_admin(self, username: str) -> None:
        """Make the user a server admin: `chatapp grant-admin` on the cluster."""
        granted = await self.cluster.run_cli("grant-admin", username)
        if granted.returncode != 0:
            raise AssertionError(f"grant-admin {username} failed: {granted.stderr}")

    async def revoke_admin(self, username: str) -> None:
        """Make an admin a member again: `chatapp revoke-admin` on the cluster."""
        revoked = await self.cluster.run_cli("revoke-admin", username)
        if revoked.returncode != 0:
            raise AssertionError(f"revoke-admin {username} failed: {revoked.stderr}")

    async def close_clients(self) -> None:
        await self.cluster.close_clients()

    async def settle(self, within: float = 10.0) -> None:
        """Wait until every event published so far has been handled on every node."""
        deadline = time.monotonic() + within
        quiet_before: list[BusFigures] | None = None
        while True:
            figures = [await self._bus_figures(node_id) for node_id in self._node_ids]
            sent = sum(f.sent for f in figures)
            # A node hears what the others sent, and more: presence scripts in
            # Redis publish on the bus too.
            quiet = all(f.backlog == 0 and f.received >= sent - f.sent for f in figures)
            # Twice the same quiet figures: nothing was on its way between the reads.
            if quiet and figures == quiet_before:
                return
            quiet_before = figures if quiet else None
            if time.monotonic() > deadline:
                raise AssertionError(f"the cluster's buses never settled: {figures}")
            await asyncio.sleep(0.01)

    async def _bus_figures(self, node_id: str) -> BusFigures:
        if node_id not in self._metrics_clients:
            self._metrics_clients[node_id] = self.cluster.client(node_id)
        text = (await self._metrics_clients[node_id].raw_request("GET", "/metrics")).text
        values = {}
        for line in text.splitlines():
            name, _, value = line.partition(" ")
            if name in _BUS_SAMPLES:
                values[_BUS_SAMPLES[name]] = int(float(value))
        return BusFigures(**values)

    def __getattr__(self, name: str) -> Any:
        raise NotOnCluster(f"a cluster has no {name!r}; mark the test embedded_only")


def settings_as_env(settings: dict[str, Any]) -> dict[str, str]:
    """Settings as the nodes' environment variables (lists comma-separated)."""
    env = {}
    for key, value in settings.items():
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, list | tuple):
            text = ",".join(str(item) for item in value)
        else:
            text = str(value)
        env[f"CHATAPP_{key.upper()}"] = text
    return env
