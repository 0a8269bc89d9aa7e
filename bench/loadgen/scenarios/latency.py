"""A, latency: users in pairs at fixed offered rates; send-to-delivery latency and losses."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench.loadgen.backend import Target, backend_for
from bench.loadgen.fleet import CpuWindow, close_all, drain, paced
from bench.loadgen.ledger import now_ns, summarise
from bench.loadgen.scenarios.pairs import Pairs, connect_pairs


@dataclass
class Params:
    users: int = 100
    rates: list[float] = field(default_factory=lambda: [200.0, 2000.0])
    seconds: float = 10.0
    warmup_seconds: float = 1.0
    grace_seconds: float = 5.0
    text_chars: int = 64


async def run(target: Target, params: Params) -> dict[str, Any]:
    backend = backend_for(target)
    try:
        pairs = await connect_pairs(backend, target, params.users, "lat")
    finally:
        await backend.close()
    try:
        phases = [await _at_rate(target, pairs, rate, params) for rate in params.rates]
    finally:
        await close_all(pairs.links, pairs.session)
    return {
        "nodes": target.nodes,
        "users": len(pairs.links),
        "connect_failures": pairs.connect_failures,
        "rates": phases,
    }


async def _at_rate(target: Target, pairs: Pairs, rate: float, params: Params) -> dict[str, Any]:
    links = pairs.links

    async def send(count: int) -> None:
        link = links[count % len(links)]
        link.send_stamped(pairs.channel_of[link.index], params.text_chars)

    # The warm-up's messages are sent, delivered and counted, but give no latency samples.
    ledger = pairs.ledger(measure_from_ns=now_ns() + int(params.warmup_seconds * 1e9))
    await paced(rate, params.warmup_seconds, send)
    cpu = CpuWindow(target)
    pacing = await paced(rate, params.seconds, send)
    drained = await drain(ledger, params.grace_seconds)
    usage = cpu.finish()
    return {
        "offered_rate": rate,
        **summarise(ledger),
        "pacing": pacing.as_dict(),
        "cpu": usage,
        "drain_seconds": round(drained, 3),
    }
