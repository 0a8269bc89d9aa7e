"""D, connections: many idle, authenticated WebSockets that heartbeat; what each one costs."""

from __future__ import annotations

import asyncio
import functools
import math
import time
from dataclasses import dataclass, field
from typing import Any

from bench import procstat
from bench.loadgen.backend import Account, Backend, Target, backend_for, bounded
from bench.loadgen.fleet import CpuWindow, Heartbeats, close_all, connect_all, new_session
from bench.loadgen.ledger import Ledger
from bench.loadgen.link import Link


@dataclass
class Params:
    users: int = 1000
    steps: list[int] = field(default_factory=lambda: [1000, 5000, 10000])
    idle_seconds: float = 6.0
    settle_seconds: float = 1.0


async def run(target: Target, params: Params) -> dict[str, Any]:
    most = max(params.steps)
    users = min(params.users, most)
    per_user = math.ceil(most / users)
    backend = backend_for(target)
    started = time.perf_counter()
    try:
        accounts = await backend.accounts(users, "idle")
        token_lists = await bounded(functools.partial(_tokens, backend, per_user), accounts, 4)
    finally:
        await backend.close()
    login_seconds = time.perf_counter() - started
    ledger = Ledger()
    devices = [
        (account.user_id, token)
        for column in range(per_user)
        for account, tokens in zip(accounts, token_lists, strict=True)
        for token in tokens[column : column + 1]
    ][:most]
    links = [Link(index, user, token, ledger) for index, (user, token) in enumerate(devices)]

    await asyncio.sleep(params.settle_seconds)
    baseline = procstat.sample(target.pid)
    session = new_session()
    beats = Heartbeats([], interval=5.0)
    steps: list[dict[str, Any]] = []
    connected = 0
    try:
        for step in sorted(params.steps):
            batch = links[connected:step]
            began = time.perf_counter()
            failures = await connect_all(batch, session, target)
            took = time.perf_counter() - began
            connected = step
            if steps == [] and batch:
                beats = Heartbeats(links, interval=batch[0].heartbeat_interval)
                beats.start()
            beats_links_open = sum(1 for link in links[:connected] if link.is_open)
            await asyncio.sleep(params.settle_seconds)
            cpu = CpuWindow(target)
            sent_before = beats.sent
            await asyncio.sleep(params.idle_seconds)
            usage = cpu.finish()
            now = procstat.sample(target.pid)
            steps.append(
                {
                    "connections": step,
                    "open": beats_links_open,
                    "failures": len(failures),
                    "first_failure": failures[0] if failures else None,
                    "connect_seconds": round(took, 3),
                    "connects_per_s": round(len(batch) / took, 1) if took else None,
                    "server_rss_mib": round(now.rss_bytes / 2**20, 1),
                    "rss_per_connection_kib": round(
                        (now.rss_bytes - baseline.rss_bytes) / step / 1024, 2
                    ),
                    "server_threads": now.threads,
                    "idle_server_cpu": usage["server_cpu"],
                    "idle_generator_cpu": usage["generator_cpu"],
                    "heartbeats_per_s": round((beats.sent - sent_before) / usage["seconds"], 1),
                }
            )
    finally:
        await beats.stop()
        await close_all(links, session)
    return {
        "users": users,
        "devices_per_user": per_user,
        "login_seconds": round(login_seconds, 2),
        "logins": len(devices) if target.kind == "chat" else 0,
        "baseline_rss_mib": round(baseline.rss_bytes / 2**20, 1),
        "heartbeat_interval_s": beats_interval(links),
        "heartbeat_acks": sum(link.heartbeat_acks for link in links),
        "steps": steps,
    }


def beats_interval(links: list[Link]) -> float:
    return links[0].heartbeat_interval if links else 0.0


async def _tokens(backend: Backend, count: int, account: Account) -> list[str]:
    return await backend.device_tokens(account, count)
