"""B, throughput: the pairs send as fast as acks allow, each with a bounded window."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from bench.loadgen.backend import Target, backend_for
from bench.loadgen.fleet import CpuWindow, close_all, drain, windowed
from bench.loadgen.ledger import now_ns, summarise
from bench.loadgen.link import Link
from bench.loadgen.scenarios.pairs import connect_pairs
from bench.loadgen.services import (
    PG_STATS_SETTLE_SECONDS,
    ServiceMeter,
    probe_for,
    without_services,
)


@dataclass
class Params:
    users: int = 100
    window: int = 16
    seconds: float = 10.0
    warmup_seconds: float = 1.0
    grace_seconds: float = 5.0
    text_chars: int = 64
    stats_settle_seconds: float = PG_STATS_SETTLE_SECONDS
    """Against a cluster: the wait for PostgreSQL's counters before and after the stretch."""


async def run(target: Target, params: Params) -> dict[str, Any]:
    backend = backend_for(target)
    try:
        pairs = await connect_pairs(backend, target, params.users, "thr")
    finally:
        await backend.close()
    probe = await probe_for(target)
    load: dict[str, Any] | None = None
    try:

        def send(link: Link) -> None:
            link.send_stamped(pairs.channel_of[link.index], params.text_chars)

        warm = pairs.ledger()
        await windowed(pairs.links, params.window, params.warmup_seconds, send)
        await drain(warm, params.grace_seconds)
        meter = ServiceMeter(probe, params.stats_settle_seconds) if probe else None
        if meter is not None:
            await meter.begin()

        ledger = pairs.ledger(measure_from_ns=now_ns())
        cpu = CpuWindow(target)
        started = time.perf_counter()
        await windowed(pairs.links, params.window, params.seconds, send)
        seconds = time.perf_counter() - started
        acked, delivered = ledger.acks, ledger.deliveries
        usage = cpu.finish()
        drained = await drain(ledger, params.grace_seconds)
        if meter is not None:
            load = await meter.end(ledger.acks)
            usage = without_services(usage, load)
    finally:
        if probe is not None:
            await probe.close()
        await close_all(pairs.links, pairs.session)
    acked_rate = acked / seconds
    result: dict[str, Any] = {
        "users": len(pairs.links),
        "senders": len(pairs.links),
        "window": params.window,
        "nodes": target.nodes,
        "connect_failures": pairs.connect_failures,
        **summarise(ledger),
        "acked_per_s": round(acked_rate, 1),
        "delivered_per_s": round(delivered / seconds, 1),
        "acked_per_server_cpu_second": round(acked_rate / usage["server_cpu"], 1)
        if usage["server_cpu"]
        else None,
        "cpu": usage,
        "drain_seconds": round(drained, 3),
    }
    if load is not None:
        result["services"] = load
    return result
