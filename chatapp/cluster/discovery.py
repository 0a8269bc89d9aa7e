"""Discovery in a cluster: the live node with the fewest connections."""

from __future__ import annotations

from chatapp.cluster.connection import ClusterUnavailable
from chatapp.cluster.registry import NodeRegistry
from chatapp.discovery import NodeChoice, SingleNode


class LeastLoadedNode:
    """Asks the registry; while Redis is away or no node is known, answers with this node."""

    def __init__(self, registry: NodeRegistry, this_node: SingleNode) -> None:
        self._registry = registry
        self._this_node = this_node

    async def choose(self, user_id: int) -> NodeChoice:
        node = await self._registry.least_loaded()
        if node is None:
            return await self._this_node.choose(user_id)
        return NodeChoice(ws_url=node.ws_url, node_id=node.node_id)

    async def ws_urls(self) -> list[str]:
        own = await self._this_node.ws_urls()
        try:
            nodes = await self._registry.live_nodes()
        except ClusterUnavailable:
            return own
        return list(dict.fromkeys([*own, *(node.ws_url for node in nodes)]))
