"""Many links at once: connecting them, keeping them beating, pacing and draining sends."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from bench import procstat
from bench.loadgen.backend import Target
from bench.loadgen.ledger import Ledger
from bench.loadgen.link import Link, LinkFailed

# WebSocket handshakes (each a hello and a token check) in flight at once.
CONNECT_CONCURRENCY = 200
# The shortest sleep of a fixed-rate sender.
PACING_TICK = 0.001


def new_session() -> aiohttp.ClientSession:
    """One HTTP session for many WebSockets: no pool limit, no per-connection DNS."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, force_close=False))


async def open_on_node(
    link: Link,
    session: aiohttp.ClientSession,
    target: Target,
    node: int,
    *,
    last_seq: int | None = None,
) -> None:
    """Open `link` on one of the target's nodes, and remember which (cluster only)."""
    await link.open(session, target.ws_url_for(node), last_seq=last_seq)
    link.node = node % target.nodes if target.nodes > 1 else None


async def connect_all(
    links: Sequence[Link],
    session: aiohttp.ClientSession,
    target: Target,
    *,
    concurrency: int = CONNECT_CONCURRENCY,
) -> list[str]:
    """Open every link (hello without last_seq), link `i` on node `i % nodes`; the failures."""
    gate = asyncio.Semaphore(concurrency)
    failures: list[str] = []

    async def one(link: Link) -> None:
        async with gate:
            try:
                await open_on_node(link, session, target, target.node_for(link.index))
            except LinkFailed as exc:
                failures.append(str(exc))

    await asyncio.gather(*(one(link) for link in links))
    return failures


async def close_all(links: Sequence[Link], session: aiohttp.ClientSession) -> None:
    """Close politely, with a bound: a server that does not answer does not hold the run."""
    try:
        async with asyncio.timeout(15):
            await asyncio.gather(*(link.close() for link in links), return_exceptions=True)
    except TimeoutError:
        pass
    await session.close()


class Heartbeats:
    """Each open link sends `heartbeat` once per interval, the links spread evenly over it."""

    TICK = 0.05

    def __init__(self, links: list[Link], interval: float) -> None:
        self._links = links
        self._interval = interval
        self.sent = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        position = 0
        while True:
            count = len(self._links)
            per_tick = math.ceil(count * self.TICK / self._interval) if count else 0
            for _ in range(min(per_tick, count)):
                link = self._links[position % count]
                position += 1
                if link.is_open:
                    link.heartbeat()
                    self.sent += 1
            await asyncio.sleep(self.TICK)


@dataclass
class Pacing:
    """How well a fixed-rate phase kept to its schedule."""

    offered_rate: float
    sent: int
    seconds: float
    max_behind_ms: float

    def as_dict(self) -> dict[str, float]:
        return {
            "offered_rate": self.offered_rate,
            "sent": self.sent,
            "achieved_send_rate": round(self.sent / self.seconds, 1) if self.seconds else 0.0,
            "max_behind_schedule_ms": round(self.max_behind_ms, 2),
        }


async def paced(rate: float, seconds: float, send: Callable[[int], Awaitable[None]]) -> Pacing:
    """Call `send(n)` for n = 0, 1, … at `rate` per second for `seconds` (open loop).

    Sends are made whenever they are due, whatever the answers, so a slow
    server meets the offered rate rather than a politely slowed one.
    """
    started = time.perf_counter()
    limit = int(rate * seconds)
    count = 0
    behind = 0.0
    while count < limit:
        elapsed = time.perf_counter() - started
        if elapsed >= seconds + 1.0:
            break
        due = min(limit, int(elapsed * rate) + 1)
        if due - count > 1:
            behind = max(behind, (due - count - 1) / rate)
        while count < due:
            await send(count)
            count += 1
        # A sleep shorter than the loop's timer resolution would spin; sends then go in
        # pairs or triples, a millisecond apart, instead.
        wait = count / rate - (time.perf_counter() - started)
        await asyncio.sleep(max(PACING_TICK, wait))
    return Pacing(rate, count, time.perf_counter() - started, behind * 1000)


async def windowed(
    senders: Sequence[Link],
    window: int,
    seconds: float,
    send: Callable[[Link], None],
) -> None:
    """Each sender sends as fast as acks allow, with at most `window` sends unacknowledged.

    Each answer (an ack or a refused send) is followed at once, in the reader's
    own call, by the next send: no task wakes per message.
    """
    stop_at = time.perf_counter() + seconds

    def refill(link: Link) -> None:
        if time.perf_counter() < stop_at and link.is_open:
            send(link)

    for link in senders:
        link.on_answer = refill
    try:
        for link in senders:
            for _ in range(window):
                if link.is_open:
                    send(link)
        await asyncio.sleep(max(0.0, stop_at - time.perf_counter()))
    finally:
        for link in senders:
            link.on_answer = None


# However long answers keep arriving, a drain ends this long after sending stopped.
DRAIN_LIMIT_SECONDS = 60.0


async def drain(ledger: Ledger, grace: float, *, limit: float = DRAIN_LIMIT_SECONDS) -> float:
    """Wait until every send is answered and every owed delivery arrived; the seconds waited.

    A server that is behind is still answering: the wait ends only once `grace`
    seconds pass with no ack, refusal or delivery arriving (or after `limit`),
    so what it delivers late is counted late, not lost.
    """
    started = last_progress = time.perf_counter()
    seen = -1
    while True:
        if ledger.settled():
            break
        now = time.perf_counter()
        progress = ledger.acks + ledger.deliveries + sum(ledger.refusals.values())
        if progress != seen:
            seen, last_progress = progress, now
        if now - last_progress >= grace or now - started >= limit:
            break
        await asyncio.sleep(0.05)
    return time.perf_counter() - started


@dataclass
class CpuWindow:
    """CPU used by the server, by the generator itself, and by anything else, over a stretch.

    Against a cluster, `server_cpu` is the nodes' together (in cores) and
    `node_cpu` each node's. `other_cpu` is the machine's busy time less the
    server's and the generator's: other processes (or the kernel's network
    work) competing; `bench.loadgen.services` takes the cluster's own
    PostgreSQL and Redis out of it where it can tell theirs apart.
    """

    target: Target

    def __post_init__(self) -> None:
        self._servers = [procstat.sample(pid) for pid in self.target.pids]
        self._bystanders = [procstat.sample(pid) for pid in self.target.bystander_pids]
        self._own = procstat.sample(os.getpid())
        self._machine = procstat.machine_busy_seconds()

    def finish(self) -> dict[str, Any]:
        servers = [procstat.sample(pid) for pid in self.target.pids]
        own = procstat.sample(os.getpid())
        machine = procstat.machine_busy_seconds()
        seconds = servers[0].at - self._servers[0].at
        shares = [
            procstat.cpu_share(before, after)
            for before, after in zip(self._servers, servers, strict=True)
        ]
        server_cpu = sum(shares)
        own_cpu = procstat.cpu_share(self._own, own)
        machine_cpu = (machine - self._machine) / seconds if seconds > 0 else 0.0
        usage: dict[str, Any] = {
            "seconds": round(seconds, 3),
            "server_cpu": round(server_cpu, 3),
            "generator_cpu": round(own_cpu, 3),
            "other_cpu": round(max(0.0, machine_cpu - server_cpu - own_cpu), 3),
            "server_rss_mib": round(sum(sample.rss_bytes for sample in servers) / 2**20, 1),
        }
        if self._bystanders:
            # Counted as "other" above: they are not the nodes under load.
            usage["bystander_cpu"] = [
                round(procstat.cpu_share(before, procstat.sample(pid)), 3)
                for before, pid in zip(self._bystanders, self.target.bystander_pids, strict=True)
            ]
            usage["other_cpu"] = round(
                max(0.0, usage["other_cpu"] - sum(usage["bystander_cpu"])), 3
            )
        if len(servers) > 1:
            usage["node_cpu"] = [round(share, 3) for share in shares]
            usage["node_rss_mib"] = [round(sample.rss_bytes / 2**20, 1) for sample in servers]
        return usage
