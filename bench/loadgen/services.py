"""A cluster's PostgreSQL and Redis seen from outside: what each message costs them.

PostgreSQL: the driver gives the cluster a database of its own (see
`bench.cluster`), so its row in `pg_stat_database` counts only the cluster's
transactions and rows, and the backends serving that database are the
cluster's (their CPU is read from `/proc`). PostgreSQL 15 publishes a busy
backend's counters at most once a second, and an idle one's up to 10 s
later, so a reading that must be exact waits `PG_STATS_SETTLE_SECONDS`
after the work first. Where the database had to be shared, the counters are
everyone's and `shared` says so.

Redis: `INFO` (commandstats, stats, cpu, memory). A Redis of the bench's own
(`private`) serves only the cluster; a shared one serves other clients too,
and its numbers are an upper bound. The probe's own `INFO` calls are left out.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from redis.asyncio import Redis

from bench import procstat
from bench.loadgen.backend import Target

# Longer than PostgreSQL's PGSTAT_IDLE_INTERVAL (10 s): every backend has published.
PG_STATS_SETTLE_SECONDS = 10.5

_DATABASE_COUNTERS = (
    "xact_commit",
    "xact_rollback",
    "tup_inserted",
    "tup_updated",
    "tup_deleted",
    "tup_fetched",
    "blks_read",
    "blks_hit",
)


@dataclass(frozen=True)
class Snapshot:
    """One reading of both services."""

    at: float
    database: dict[str, int]
    tables: dict[str, dict[str, int]]
    """table -> rows inserted, updated, deleted, and index and sequential scans, so far."""
    table_bytes: int
    """The cluster's tables with their indexes and TOAST, on disk."""
    backend_cpu: dict[int, float]
    """The cluster's PostgreSQL backends: pid -> CPU seconds so far."""
    redis: dict[str, float]
    commands: dict[str, int]
    """Redis command -> calls so far."""


class ServiceProbe:
    """Readings of the cluster's PostgreSQL database and Redis; `open` it, `close` it."""

    def __init__(
        self, spec: dict[str, Any], admin: asyncpg.Connection, local: asyncpg.Connection
    ) -> None:
        self.spec = spec
        self._admin = admin
        self._local = local
        self._redis = Redis.from_url(spec["redis_url"])
        self._local_pid = local.get_server_pid()
        self.private = bool(spec["redis_private"])

    @classmethod
    async def open(cls, spec: dict[str, Any]) -> ServiceProbe:
        admin = await asyncpg.connect(spec["admin_url"])
        local = await asyncpg.connect(spec["database_url"])
        return cls(spec, admin, local)

    async def close(self) -> None:
        await self._redis.aclose()
        await self._local.close()
        await self._admin.close()

    async def snapshot(self) -> Snapshot:
        database = self.spec["database"]
        row = await self._admin.fetchrow(
            f"SELECT {', '.join(_DATABASE_COUNTERS)} FROM pg_stat_database WHERE datname = $1",
            database,
        )
        pids = await self._admin.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 "
            "AND backend_type = 'client backend' AND pid <> $2",
            database,
            self._local_pid,
        )
        async with self._local.transaction():
            tables = await self._local.fetch(
                "SELECT relname, n_tup_ins, n_tup_upd, n_tup_del, coalesce(seq_scan, 0) AS seq,"
                " coalesce(idx_scan, 0) AS idx FROM pg_stat_user_tables "
                "WHERE schemaname = $1",
                self.spec["schema"],
            )
            size = await self._local.fetchval(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')",
                self.spec["schema"],
            )
        info = await self._redis.info("all")
        return Snapshot(
            at=time.monotonic(),
            database={name: int(row[name]) for name in _DATABASE_COUNTERS} if row else {},
            tables={
                table["relname"]: {
                    "inserted": int(table["n_tup_ins"]),
                    "updated": int(table["n_tup_upd"]),
                    "deleted": int(table["n_tup_del"]),
                    "index_scans": int(table["idx"]),
                    "seq_scans": int(table["seq"]),
                }
                for table in tables
            },
            table_bytes=int(size),
            backend_cpu=_cpu_seconds(int(record["pid"]) for record in pids),
            redis={
                "commands": float(info["total_commands_processed"]),
                "cpu_seconds": float(info["used_cpu_sys"]) + float(info["used_cpu_user"]),
                "memory_bytes": float(info["used_memory"]),
                "net_input_bytes": float(info["total_net_input_bytes"]),
                "net_output_bytes": float(info["total_net_output_bytes"]),
                "connected_clients": float(info["connected_clients"]),
            },
            commands={
                key.removeprefix("cmdstat_"): int(value["calls"])
                for key, value in info.items()
                if key.startswith("cmdstat_") and isinstance(value, dict)
            },
        )


def _cpu_seconds(pids: Any) -> dict[int, float]:
    found = {}
    for pid in pids:
        if Path(f"/proc/{pid}/stat").exists():
            try:
                found[pid] = procstat.sample(pid).cpu_seconds
            except (OSError, ValueError, IndexError):
                continue
    return found


def postgres_load(
    before: Snapshot, after: Snapshot, messages: int, *, shared: bool
) -> dict[str, Any]:
    """What `messages` cost PostgreSQL between two snapshots, in all and per message."""
    each = max(1, messages)
    delta = {
        name: after.database.get(name, 0) - before.database.get(name, 0) for name in after.database
    }
    tables = {}
    for name, counts in sorted(after.tables.items()):
        old = before.tables.get(name, {})
        changed = {key: value - old.get(key, 0) for key, value in counts.items()}
        if any(changed.values()):
            tables[name] = {key: round(value / each, 3) for key, value in changed.items()}
    # A backend first seen afterwards was opened during the stretch: all its CPU is in it.
    cpu = sum(
        seconds - before.backend_cpu.get(pid, 0.0) for pid, seconds in after.backend_cpu.items()
    )
    return {
        "shared": shared,
        "seconds": round(after.at - before.at, 2),
        "messages": messages,
        "totals": delta,
        "per_message": {
            "transactions": round(delta.get("xact_commit", 0) / each, 3),
            "rollbacks": round(delta.get("xact_rollback", 0) / each, 4),
            "rows_inserted": round(delta.get("tup_inserted", 0) / each, 3),
            "rows_updated": round(delta.get("tup_updated", 0) / each, 3),
            "rows_deleted": round(delta.get("tup_deleted", 0) / each, 3),
            "rows_fetched": round(delta.get("tup_fetched", 0) / each, 3),
            "table_bytes": round((after.table_bytes - before.table_bytes) / each, 1),
        },
        "tables_per_message": tables,
        "backends": len(after.backend_cpu),
        "cpu_seconds": round(cpu, 3),
        "cpu_ms_per_1000_messages": round(1e6 * cpu / each, 1),
    }


def redis_load(
    before: Snapshot, after: Snapshot, messages: int, *, private: bool
) -> dict[str, Any]:
    """What `messages` cost Redis between two snapshots (the probe's INFO calls left out)."""
    each = max(1, messages)
    calls = {
        name: count - before.commands.get(name, 0)
        for name, count in after.commands.items()
        if name != "info" and count - before.commands.get(name, 0) > 0
    }
    total = sum(calls.values())
    cpu = after.redis["cpu_seconds"] - before.redis["cpu_seconds"]
    net_in = after.redis["net_input_bytes"] - before.redis["net_input_bytes"]
    net_out = after.redis["net_output_bytes"] - before.redis["net_output_bytes"]
    top = sorted(calls.items(), key=lambda item: -item[1])[:8]
    return {
        "private": private,
        "seconds": round(after.at - before.at, 2),
        "messages": messages,
        "commands": total,
        "per_message": {
            "commands": round(total / each, 3),
            "net_input_bytes": round(net_in / each, 1),
            "net_output_bytes": round(net_out / each, 1),
        },
        "commands_per_message": {name: round(count / each, 3) for name, count in top},
        "cpu_seconds": round(cpu, 3),
        "cpu_ms_per_1000_messages": round(1e6 * cpu / each, 1),
        "memory_bytes_change": int(after.redis["memory_bytes"] - before.redis["memory_bytes"]),
    }


async def probe_for(target: Target) -> ServiceProbe | None:
    """A probe of the target's services, or None when it is one process."""
    if target.services is None:
        return None
    return await ServiceProbe.open(target.services)


def without_services(usage: dict[str, Any], load: dict[str, Any]) -> dict[str, Any]:
    """A CPU window with the cluster's PostgreSQL backends (and a private Redis) named
    apart, and taken out of `other_cpu`: `load` is what `service_load` gave for it."""
    seconds = usage.get("seconds") or 0.0
    if not seconds:
        return usage
    postgres = load["postgres"]["cpu_seconds"] / seconds
    redis = load["redis"]["cpu_seconds"] / seconds if load["redis"]["private"] else 0.0
    usage = {**usage, "postgres_cpu": round(postgres, 3)}
    if load["redis"]["private"]:
        usage["redis_cpu"] = round(redis, 3)
    usage["other_cpu"] = round(max(0.0, usage["other_cpu"] - postgres - redis), 3)
    return usage


class WaitSampler:
    """What the cluster's PostgreSQL backends are doing, sampled every `interval` s.

    Each sample reads `pg_stat_activity` for the cluster's database (from a
    connection to another database, so the readings do not count as the
    cluster's): per backend, running (active, no wait), waiting on a lock,
    on I/O (WAL writes and syncs), or on the node (idle in a transaction,
    between two statements of a batch), or idle.
    """

    def __init__(self, spec: dict[str, Any], interval: float = 0.02) -> None:
        self._spec = spec
        self._interval = interval
        self._counts: Counter[str] = Counter()
        self._samples = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> dict[str, Any]:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        total = sum(self._counts.values())
        return {
            "samples": self._samples,
            "backends_per_sample": round(total / self._samples, 2) if self._samples else 0.0,
            "shares": {name: round(count / total, 3) for name, count in self._counts.most_common()}
            if total
            else {},
        }

    async def _run(self) -> None:
        connection = await asyncpg.connect(self._spec["admin_url"])
        try:
            while True:
                rows = await connection.fetch(
                    "SELECT state, wait_event_type, wait_event FROM pg_stat_activity "
                    "WHERE datname = $1 AND backend_type = 'client backend' "
                    "AND pid <> pg_backend_pid()",
                    self._spec["database"],
                )
                self._samples += 1
                for row in rows:
                    self._counts[_activity(row)] += 1
                await asyncio.sleep(self._interval)
        finally:
            await connection.close()


def _activity(row: asyncpg.Record) -> str:
    state, kind, event = row["state"], row["wait_event_type"], row["wait_event"]
    if state == "idle":
        return "idle"
    if state == "idle in transaction":
        return "in a transaction, waiting for the node"
    if kind is None:
        return "running"
    return f"waiting: {kind}/{event}"


class ServiceMeter:
    """Readings around one measured stretch: Redis's at its ends, PostgreSQL's once every
    backend has published its counters (`settle_seconds` after each end, when exact),
    and what PostgreSQL's backends were doing meanwhile."""

    def __init__(self, probe: ServiceProbe, settle_seconds: float) -> None:
        self._probe = probe
        self._settle = settle_seconds
        self._before: Snapshot | None = None
        self._waits = WaitSampler(probe.spec)

    async def begin(self) -> None:
        if self._settle:
            await asyncio.sleep(self._settle)
        self._before = await self._probe.snapshot()
        self._waits.start()

    async def end(self, messages: int) -> dict[str, Any]:
        if self._before is None:
            raise RuntimeError("end before begin")
        waits = await self._waits.stop()
        redis_after = await self._probe.snapshot()
        postgres_after = redis_after
        if self._settle:
            await asyncio.sleep(self._settle)
            postgres_after = await self._probe.snapshot()
        spec = self._probe.spec
        return {
            "postgres": postgres_load(
                self._before, postgres_after, messages, shared=spec["database_shared"]
            ),
            "redis": redis_load(self._before, redis_after, messages, private=spec["redis_private"]),
            "postgres_activity": waits,
            "stats_settle_seconds": self._settle,
        }
