"""Number formatting and table helpers shared by the report's sections."""

from __future__ import annotations

from typing import Any

Results = dict[str, Any]
# A server number within this share of the echo relay's is the generator's limit, not the server's.
GENERATOR_BOUND = 0.9


def number(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, float):
        if value >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{digits}g}"
    return str(value)


def percent(share: Any) -> str:
    return "—" if share is None else f"{100 * share:.0f}%"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + " --- |" * len(header),
        *("| " + " | ".join(row) + " |" for row in rows),
        "",
    ]


def latencies(phase: Results, key: str = "delivery_latency_ms") -> list[str]:
    latency = phase.get(key) or {}
    return [number(latency.get(name)) for name in ("p50", "p95", "p99", "max")]


def cpu_columns(phase: Results) -> list[str]:
    cpu = phase.get("cpu") or {}
    return [
        percent(cpu.get("server_cpu")),
        percent(cpu.get("generator_cpu")),
        percent(cpu.get("other_cpu")),
    ]
