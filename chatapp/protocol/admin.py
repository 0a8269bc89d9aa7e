"""HTTP bodies of the admin API, `/api/v1/admin/...` (see docs/protocol.md, "Admin API")."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from chatapp.protocol.http import Answer


class NodeOut(Answer):
    """A live node of the deployment; times in ms."""

    # Read from discovery's NodeInfo (any object with these attributes).
    model_config = ConfigDict(frozen=True, from_attributes=True)

    node_id: str = Field(description="the node's name (its CHATAPP_NODE_ID)")
    ws_url: str = Field(description="where clients open their WebSockets on this node")
    connections: int = Field(description="its live WebSockets, as of last_seen_at")
    started_at: int = Field(description="when the node started")
    last_seen_at: int = Field(
        description="when the node last reported itself alive (now, on a single node)"
    )


class ClusterAnswer(Answer):
    nodes: list[NodeOut] = Field(description="every live node, by node_id")
