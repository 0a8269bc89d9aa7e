"""Who this process is in the cluster: its node id and this run of it."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field


def _new_instance() -> str:
    return secrets.token_hex(8)


@dataclass(frozen=True, slots=True)
class NodeIdentity:
    """`node_id` is the operator's name for the node (`CHATAPP_NODE_ID`); `instance`
    is random per process.

    The instance tells this run of a node from an earlier one with the same
    id: connections recorded by a node that was killed and started again do
    not count as live, and the bus does not mistake another process's
    messages for its own.
    """

    node_id: str
    instance: str = field(default_factory=_new_instance)

    def __post_init__(self) -> None:
        if not self.node_id or not self.node_id.isprintable():
            raise ValueError(f"{self.node_id!r} cannot name a node")
        if not self.instance or not self.instance.isalnum():
            raise ValueError(f"{self.instance!r} cannot name an instance")

    @property
    def tag(self) -> str:
        """How this process signs what it publishes on the bus."""
        return f"{self.instance} {self.node_id}"
