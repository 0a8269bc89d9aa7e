"""The nodes of this deployment as an operator sees them (`GET /api/v1/admin/cluster`).

`NodeDirectory` is the seam: one process lists itself (`ThisNode`); a cluster
lists the live entries of its node registry (`chatapp.cluster.registry`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from pydantic import BaseModel, ConfigDict

from chatapp.clock import Clock


class NodeInfo(BaseModel):
    """A live node; times in ms."""

    model_config = ConfigDict(frozen=True)

    node_id: str
    ws_url: str
    connections: int
    """Its live WebSockets, as of `last_seen_at`."""
    started_at: int
    last_seen_at: int
    """When the node last said it was alive (a cluster node refreshes its entry every few s)."""


class NodeDirectory(Protocol):
    async def live_nodes(self) -> list[NodeInfo]:
        """Every live node, by node id; raises a `StoreFailed` when the list cannot be read."""
        ...


class ThisNode:
    """One process: the list is this node, seen now."""

    def __init__(
        self, *, node_id: str, ws_url: str, connections: Callable[[], int], clock: Clock
    ) -> None:
        self._node_id = node_id
        self._ws_url = ws_url
        self._connections = connections
        self._clock = clock
        self._started_at = clock.now_ms()

    async def live_nodes(self) -> list[NodeInfo]:
        return [
            NodeInfo(
                node_id=self._node_id,
                ws_url=self._ws_url,
                connections=self._connections(),
                started_at=self._started_at,
                last_seen_at=self._clock.now_ms(),
            )
        ]
