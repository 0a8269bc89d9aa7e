"""Discovery: which chat server a client should connect to, and which nodes there are.

`Discovery` is the seam: one node answers with itself; a cluster answers with
the live node that has the fewest connections (`chatapp.cluster`).
`NodeDirectory` (in `nodes`) lists the live nodes for operators, the same way.
"""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, ConfigDict

from chatapp.discovery.nodes import NodeDirectory, NodeInfo, ThisNode


class NodeChoice(BaseModel):
    """Where a client should open its WebSocket."""

    model_config = ConfigDict(frozen=True)

    ws_url: str
    node_id: str


class Discovery(Protocol):
    async def choose(self, user_id: int) -> NodeChoice:
        """The node for this user's next connection."""
        ...

    async def ws_urls(self) -> list[str]:
        """Every WebSocket URL `choose` may answer now (the web page lets its socket go there)."""
        ...


class SingleNode:
    """One node: the answer is always this node."""

    def __init__(self, ws_url: str, node_id: str) -> None:
        self._choice = NodeChoice(ws_url=ws_url, node_id=node_id)

    async def choose(self, user_id: int) -> NodeChoice:
        return self._choice

    async def ws_urls(self) -> list[str]:
        return [self._choice.ws_url]


__all__ = ["Discovery", "NodeChoice", "NodeDirectory", "NodeInfo", "SingleNode", "ThisNode"]
