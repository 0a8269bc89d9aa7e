"""Every Redis key and channel of one cluster, prefixed with its name.

Several clusters can share one Redis: each names its keys `<cluster>:...`
(`CHATAPP_CLUSTER_NAME`, default `chatapp`), and the Lua scripts build the
per-user keys they touch from the same prefixes, so Python and Lua agree.

    <cluster>:bus                          pub/sub channel of the bus
    <cluster>:nodes                        zset  node_id -> registry deadline (ms)
    <cluster>:node:<node_id>               hash  node_id, instance, ws_url, connections,
                                                 started_at, last_seen_at (PEXPIRE ttl)
    <cluster>:presence:deadlines           zset  "<user_id>:<device_id>" -> expiry (ms)
    <cluster>:presence:devices:<user_id>   set   live device ids
    <cluster>:presence:user:<user_id>      hash  last_active_at, persisted_at
    <cluster>:presence:connections:<user_id>
                                           hash  connection_id -> "<instance> <node_id>"
    <cluster>:presence:revoked:<user_id>:<device_id>
                                           string, PX: a revoked device's late heartbeats
                                           are ignored
    <cluster>:rate:<limit>:<key>           hash  tokens, updated (PEXPIRE window)
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_CLUSTER_NAME = "chatapp"


@dataclass(frozen=True, slots=True)
class ClusterKeys:
    """The names of one cluster's keys and channel."""

    cluster: str = DEFAULT_CLUSTER_NAME

    def __post_init__(self) -> None:
        if not self.cluster or any(c in self.cluster for c in ":*?[]{} \n"):
            raise ValueError(f"{self.cluster!r} cannot name a cluster")

    @property
    def pattern(self) -> str:
        """A SCAN pattern matching every key of this cluster and no other's."""
        return f"{self.cluster}:*"

    # -- the bus -----------------------------------------------------------------------

    @property
    def bus_channel(self) -> str:
        return f"{self.cluster}:bus"

    # -- the node registry ---------------------------------------------------------------

    @property
    def nodes(self) -> str:
        return f"{self.cluster}:nodes"

    @property
    def node_prefix(self) -> str:
        return f"{self.cluster}:node:"

    def node(self, node_id: str) -> str:
        return self.node_prefix + node_id

    # -- presence ------------------------------------------------------------------------

    @property
    def deadlines(self) -> str:
        return f"{self.cluster}:presence:deadlines"

    @property
    def devices_prefix(self) -> str:
        return f"{self.cluster}:presence:devices:"

    def devices(self, user_id: int) -> str:
        return f"{self.devices_prefix}{user_id}"

    @property
    def user_prefix(self) -> str:
        return f"{self.cluster}:presence:user:"

    def user(self, user_id: int) -> str:
        return f"{self.user_prefix}{user_id}"

    def connections(self, user_id: int) -> str:
        return f"{self.cluster}:presence:connections:{user_id}"

    def revoked(self, user_id: int, device_id: int) -> str:
        return f"{self.cluster}:presence:revoked:{user_id}:{device_id}"

    # -- rate limits -----------------------------------------------------------------------

    def rate(self, limit: str, key: str) -> str:
        return f"{self.cluster}:rate:{limit}:{key}"
