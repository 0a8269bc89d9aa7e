"""How big each scenario is: the defaults the targets are stated for, and tiny ones for CI."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any


@dataclass(frozen=True)
class Sizes:
    pair_users: int = 100
    """A and B: users in direct-message pairs, one device each."""
    rates: list[float] = field(default_factory=lambda: [200.0, 2000.0])
    latency_seconds: float = 8.0
    throughput_seconds: float = 8.0
    window: int = 16
    """B: sends each sender may have unacknowledged."""
    group_members: int = 100
    group_senders: int = 10
    group_rate: float = 506.0
    """C: messages per second offered; 506 x 99 recipients is just over 50,000 deliveries/s."""
    group_seconds: float = 8.0
    group_window: int = 4
    idle_users: int = 1000
    """D: the server allows 32 live connections per user, so devices are spread over users."""
    idle_steps: list[int] = field(default_factory=lambda: [1000, 5000, 10000])
    idle_seconds: float = 5.0
    idle_settle_seconds: float = 1.0
    """D: the pause after logins and after each step, before the server is sampled."""
    storm_users: int = 100
    storm_devices: int = 1000
    storm_rate: float = 500.0
    storm_seconds: float = 3.0
    """E: seconds of flow before the drop, and again after every device is back."""
    cold_messages: int = 1_000_000
    cold_repeats: int = 3
    warmup_seconds: float = 1.0
    text_chars: int = 64
    stats_settle_seconds: float = 10.5
    """B and C on the cluster: the wait for PostgreSQL's counters around the measured stretch
    (PostgreSQL publishes an idle backend's counters up to 10 s late)."""

    @classmethod
    def quick(cls) -> Sizes:
        """Seconds in all, for CI: every code path runs, no number means anything."""
        return cls(
            pair_users=10,
            rates=[50.0, 200.0],
            latency_seconds=0.5,
            throughput_seconds=0.5,
            window=4,
            group_members=12,
            group_senders=3,
            group_rate=50.0,
            group_seconds=0.5,
            group_window=2,
            idle_users=10,
            idle_steps=[20, 50],
            idle_seconds=0.5,
            idle_settle_seconds=0.2,
            storm_users=5,
            storm_devices=20,
            storm_rate=50.0,
            storm_seconds=0.5,
            cold_messages=10_000,
            cold_repeats=1,
            warmup_seconds=0.2,
            stats_settle_seconds=0.0,
        )

    def with_overrides(self, overrides: dict[str, Any]) -> Sizes:
        """A copy with `NAME=VALUE` options applied (lists are comma-separated)."""
        known = {item.name: item for item in fields(self)}
        changes: dict[str, Any] = {}
        for name, raw in overrides.items():
            if name not in known:
                raise ValueError(f"unknown size {name!r}; known: {', '.join(known)}")
            current = getattr(self, name)
            if isinstance(current, list):
                kind = type(current[0]) if current else float
                changes[name] = [kind(part) for part in str(raw).split(",") if part]
            else:
                changes[name] = type(current)(raw)
        return replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
