"""`ThisNode`: the embedded server's answer to "which nodes are there", on a manual clock."""

from __future__ import annotations

from chatapp.discovery import NodeInfo, ThisNode
from chatapp.testing import ManualClock


async def test_this_node_is_the_one_live_node_seen_now_with_its_connections() -> None:
    """One entry: the node's id and ws_url, the connections counted at the moment of asking,
    the time it was made as `started_at` and the present as `last_seen_at`."""
    clock = ManualClock(start_ms=5_000)
    connections = 0
    node = ThisNode(
        node_id="127.0.0.1:8080",
        ws_url="ws://127.0.0.1:8080/ws",
        connections=lambda: connections,
        clock=clock,
    )
    clock.advance(2)
    connections = 3
    assert await node.live_nodes() == [
        NodeInfo(
            node_id="127.0.0.1:8080",
            ws_url="ws://127.0.0.1:8080/ws",
            connections=3,
            started_at=5_000,
            last_seen_at=7_000,
        )
    ]
