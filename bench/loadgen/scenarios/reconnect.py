"""E, reconnect storm: every device drops at once and comes back with `hello last_seq`.

Senders keep a steady rate into the devices' channels the whole time. Each
device has a session of its own, so closing that session drops its TCP
connection without a WebSocket closing handshake, as a lost network does.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from bench.loadgen.backend import Account, Backend, Target, backend_for, bounded
from bench.loadgen.fleet import (
    CONNECT_CONCURRENCY,
    CpuWindow,
    Heartbeats,
    close_all,
    connect_all,
    drain,
    new_session,
    open_on_node,
    paced,
)
from bench.loadgen.ledger import Ledger, percentiles_ms, summarise
from bench.loadgen.link import Link, LinkFailed
from bench.loadgen.services import ServiceProbe, probe_for, redis_load

RESYNC_BOUND_SECONDS = 60.0


@dataclass
class Params:
    users: int = 100
    """Users whose devices drop; each has a direct channel with a sender of its own."""
    devices: int = 1000
    rate: float = 500.0
    """Messages per second from all senders together, before, during and after the storm."""
    before_seconds: float = 3.0
    after_seconds: float = 3.0
    grace_seconds: float = 10.0
    idle_seconds: float = 5.0
    """Against a cluster: every connection heartbeats, nothing is sent, for this long first
    (what presence costs Redis and the nodes per heartbeat)."""
    text_chars: int = 64


async def run(target: Target, params: Params) -> dict[str, Any]:
    per_user = math.ceil(params.devices / params.users)
    backend = backend_for(target)
    try:
        receivers = await backend.accounts(params.users, "dev")
        senders = await backend.accounts(params.users, "snd")
        channels = [
            await backend.direct(sender, receiver)
            for sender, receiver in zip(senders, receivers, strict=True)
        ]
        receiver_tokens = await bounded(functools.partial(_tokens, backend, per_user), receivers, 4)
        sender_tokens = [(await backend.device_tokens(account, 1))[0] for account in senders]
    finally:
        await backend.close()

    ledger = Ledger()
    devices: list[Link] = []
    recipients: dict[int, list[int]] = {channel: [] for channel in channels}
    for account, tokens, channel in zip(receivers, receiver_tokens, channels, strict=True):
        for token in tokens:
            recipients[channel].append(len(devices))
            devices.append(Link(len(devices), account.user_id, token, ledger))
    devices = devices[: params.devices]
    recipients = {c: [i for i in links if i < len(devices)] for c, links in recipients.items()}
    sending = [
        Link(len(devices) + i, account.user_id, token, ledger)
        for i, (account, token) in enumerate(zip(senders, sender_tokens, strict=True))
    ]
    ledger.recipients = recipients

    sessions = [new_session() for _ in devices]
    sender_session = new_session()
    probe = await probe_for(target)
    before = await probe.snapshot() if probe else None
    failures = await _connect_each(devices, sessions, target)
    failures += await connect_all(sending, sender_session, target)
    connections: dict[str, Any] = {}
    heartbeats: dict[str, Any] = {}
    if probe is not None and before is not None:
        # What the open connections hold in Redis (presence), and what opening them cost.
        opened = len(devices) + len(sending)
        connected = await probe.snapshot()
        connections = redis_load(before, connected, opened, private=probe.private)
        heartbeats = await _heartbeats(target, [*devices, *sending], probe, params.idle_seconds)
        await probe.close()
    text = params.text_chars

    async def send(count: int) -> None:
        link = sending[count % len(sending)]
        link.send_stamped(channels[link.index - len(devices)], text)

    storm: dict[str, Any] = {}
    try:
        cpu = CpuWindow(target)
        flow_seconds = params.before_seconds + params.after_seconds + RESYNC_BOUND_SECONDS
        flow = asyncio.create_task(paced(params.rate, flow_seconds, send))
        await asyncio.sleep(params.before_seconds)
        storm, sessions = await _storm(devices, sessions, target)
        await asyncio.sleep(params.after_seconds)
        flow.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await flow
        drained = await drain(ledger, params.grace_seconds)
        usage = cpu.finish()
    finally:
        for link in devices:
            await link.close()
        for session in sessions:
            await session.close()
        await close_all(sending, sender_session)
    return {
        "nodes": target.nodes,
        "users": params.users,
        "devices": len(devices),
        "senders": len(sending),
        "offered_rate": params.rate,
        "connect_failures": failures,
        **storm,
        **summarise(ledger),
        "cpu": usage,
        "drain_seconds": round(drained, 3),
        **({"redis_per_connection": connections} if connections else {}),
        **({"idle_heartbeats": heartbeats} if heartbeats else {}),
    }


async def _heartbeats(
    target: Target, links: list[Link], probe: ServiceProbe, seconds: float
) -> dict[str, Any]:
    """Connections only heartbeating: Redis commands and node CPU per heartbeat."""
    interval = links[0].heartbeat_interval if links else 5.0
    beats = Heartbeats(links, interval=interval)
    # What opening the connections set off (presence, replays) settles first.
    await asyncio.sleep(min(1.0, seconds))
    before = await probe.snapshot()
    cpu = CpuWindow(target)
    beats.start()
    await asyncio.sleep(seconds)
    await beats.stop()
    usage = cpu.finish()
    load = redis_load(before, await probe.snapshot(), max(1, beats.sent), private=probe.private)
    node_seconds = usage["server_cpu"] * usage["seconds"]
    return {
        "connections": len(links),
        "interval_s": interval,
        "heartbeats": beats.sent,
        "redis_per_heartbeat": load,
        "cpu": usage,
        "node_cpu_us_per_heartbeat": round(1e6 * node_seconds / max(1, beats.sent), 1),
    }


async def _connect_each(
    links: list[Link], sessions: list[aiohttp.ClientSession], target: Target
) -> list[str]:
    async def one(pair: tuple[Link, aiohttp.ClientSession]) -> list[str]:
        return await connect_all([pair[0]], pair[1], target)

    answers = await bounded(one, list(zip(links, sessions, strict=True)), CONNECT_CONCURRENCY)
    return [failure for failures in answers for failure in failures]


async def _storm(
    devices: list[Link], sessions: list[aiohttp.ClientSession], target: Target
) -> tuple[dict[str, Any], list[aiohttp.ClientSession]]:
    """Drop every device at once, reconnect them all at once; how long until all are synced.

    Against a cluster each device comes back on the next node, as it would
    after its node went away: it resyncs from the store on a node that never
    held it.
    """
    dropped_at = time.perf_counter()
    await asyncio.gather(*(session.close() for session in sessions))
    # What a device had read before the drop is what it knows: its last_seq.
    await asyncio.gather(*(link.forget() for link in devices))
    fresh = [new_session() for _ in devices]
    resync_ns: list[int] = []
    failures: list[str] = []

    async def come_back(link: Link, session: aiohttp.ClientSession) -> None:
        try:
            await open_on_node(
                link, session, target, target.node_for(link.index) + 1, last_seq=link.last_seq
            )
        except LinkFailed as exc:
            failures.append(str(exc))
            return
        resync_ns.append(int((time.perf_counter() - dropped_at) * 1e9))

    try:
        async with asyncio.timeout(RESYNC_BOUND_SECONDS):
            await asyncio.gather(
                *(come_back(link, session) for link, session in zip(devices, fresh, strict=True))
            )
    except TimeoutError:
        failures.append(f"not all resynced within {RESYNC_BOUND_SECONDS:.0f} s")
    all_synced = time.perf_counter() - dropped_at if len(resync_ns) == len(devices) else None
    return {
        "resynced": len(resync_ns),
        "resync_failures": failures[:5],
        "seconds_until_all_synced": round(all_synced, 3) if all_synced is not None else None,
        "resync_ms": percentiles_ms(resync_ns),
    }, fresh


async def _tokens(backend: Backend, count: int, account: Account) -> list[str]:
    return await backend.device_tokens(account, count)
