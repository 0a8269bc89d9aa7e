"""C, group fan-out: one group, a few senders, every member's device receives every message."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from bench.loadgen.backend import Target, backend_for
from bench.loadgen.fleet import (
    CpuWindow,
    close_all,
    connect_all,
    drain,
    new_session,
    paced,
    windowed,
)
from bench.loadgen.ledger import Ledger, now_ns, summarise
from bench.loadgen.link import Link
from bench.loadgen.services import (
    PG_STATS_SETTLE_SECONDS,
    ServiceMeter,
    probe_for,
    without_services,
)


@dataclass
class Params:
    members: int = 100
    senders: int = 10
    rate: float = 506.0
    """Messages per second offered, from all senders together."""
    seconds: float = 10.0
    warmup_seconds: float = 1.0
    window: int = 4
    """For the second phase: sends unacknowledged per sender when sending as fast as acks allow."""
    max_seconds: float = 5.0
    grace_seconds: float = 5.0
    text_chars: int = 64
    stats_settle_seconds: float = PG_STATS_SETTLE_SECONDS
    """Against a cluster: the wait for PostgreSQL's counters around the fixed-rate phase."""


@dataclass
class Group:
    channel_id: int
    links: list[Link]
    session: aiohttp.ClientSession
    failures: list[str]

    def ledger(self, measure_from_ns: int = 0) -> Ledger:
        recipients = {self.channel_id: [link.index for link in self.links]}
        ledger = Ledger(recipients=recipients, measure_from_ns=measure_from_ns)
        for link in self.links:
            link.ledger = ledger
        return ledger


async def run(target: Target, params: Params) -> dict[str, Any]:
    group = await _connect_group(target, params.members)
    senders = group.links[: params.senders]
    text = params.text_chars

    async def send_paced(count: int) -> None:
        senders[count % len(senders)].send_stamped(group.channel_id, text)

    def send_windowed(link: Link) -> None:
        link.send_stamped(group.channel_id, text)

    probe = await probe_for(target)
    try:
        ledger = group.ledger(measure_from_ns=now_ns() + int(params.warmup_seconds * 1e9))
        warm = await paced(params.rate, params.warmup_seconds, send_paced)
        meter = ServiceMeter(probe, params.stats_settle_seconds) if probe else None
        if meter is not None:
            await meter.begin()
        cpu = CpuWindow(target)
        pacing = await paced(params.rate, params.seconds, send_paced)
        usage = cpu.finish()
        drained = await drain(ledger, params.grace_seconds)
        fixed = {
            **summarise(ledger),
            "pacing": pacing.as_dict(),
            "cpu": usage,
            "drain_seconds": round(drained, 3),
        }
        if meter is not None:
            # The warm-up's messages are in the ledger too, but were stored before `begin`.
            fixed["services"] = await meter.end(max(0, ledger.acks - warm.sent))
            fixed["cpu"] = without_services(fixed["cpu"], fixed["services"])

        ledger = group.ledger(measure_from_ns=now_ns())
        cpu = CpuWindow(target)
        started = time.perf_counter()
        await windowed(senders, params.window, params.max_seconds, send_windowed)
        drained = await drain(ledger, params.grace_seconds)
        seconds = time.perf_counter() - started
        fastest = {
            **summarise(ledger),
            "window": params.window,
            "cpu": cpu.finish(),
            "seconds_with_drain": round(seconds, 3),
            "drain_seconds": round(drained, 3),
        }
    finally:
        closed = {link.index: link.close_codes for link in group.links if link.close_codes}
        failed = {link.index: link.reader_failed for link in group.links if link.reader_failed}
        if probe is not None:
            await probe.close()
        await close_all(group.links, group.session)
    return {
        "nodes": target.nodes,
        "members": len(group.links),
        "senders": len(senders),
        "connect_failures": group.failures,
        "closed_by_server": closed,
        "readers_failed": failed,
        "fixed_rate": {"offered_rate": params.rate, **fixed},
        "as_fast_as_acks_allow": fastest,
    }


async def _connect_group(target: Target, members: int) -> Group:
    backend = backend_for(target)
    try:
        accounts = await backend.accounts(members, "fan")
        channel_id = await backend.group(accounts[0], accounts[1:])
        tokens = [(await backend.device_tokens(account, 1))[0] for account in accounts]
    finally:
        await backend.close()
    ledger = Ledger()
    links = [
        Link(index, account.user_id, token, ledger)
        for index, (account, token) in enumerate(zip(accounts, tokens, strict=True))
    ]
    session = new_session()
    failures = await connect_all(links, session, target)
    return Group(channel_id, links, session, failures)
