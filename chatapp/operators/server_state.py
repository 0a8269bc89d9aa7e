"""The deployment at a glance, for the admin page: version, uptime, load, what is stored."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from chatapp.clock import Clock
from chatapp.discovery.nodes import NodeDirectory
from chatapp.operators.disk_usage import DiskUsage
from chatapp.operators.models import RegistrationPolicy


@dataclass(frozen=True)
class ServerSnapshot:
    version: str
    node_id: str
    started_at: int
    uptime_s: int
    nodes: int
    connections: int
    messages_stored: int | None
    disk_bytes: int | None
    registration: RegistrationPolicy


class ServerState:
    """Gathers what the other modules already count; it keeps no figure of its own."""

    def __init__(
        self,
        *,
        version: str,
        node_id: str,
        registration: RegistrationPolicy,
        nodes: NodeDirectory,
        messages_stored: Callable[[], Awaitable[int | None]],
        disk: DiskUsage,
        clock: Clock,
    ) -> None:
        self._version = version
        self._node_id = node_id
        self._registration = registration
        self._nodes = nodes
        self._messages_stored = messages_stored
        self._disk = disk
        self._clock = clock
        self._started_at = clock.now_ms()

    async def snapshot(self) -> ServerSnapshot:
        live = await self._nodes.live_nodes()
        now = self._clock.now_ms()
        return ServerSnapshot(
            version=self._version,
            node_id=self._node_id,
            started_at=self._started_at,
            uptime_s=max(0, (now - self._started_at) // 1000),
            nodes=len(live),
            connections=sum(node.connections for node in live),
            messages_stored=await self._messages_stored(),
            disk_bytes=await self._disk.bytes_used(),
            registration=self._registration,
        )
