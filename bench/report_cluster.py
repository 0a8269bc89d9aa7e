"""The report's cluster sections: where the CPU went, PostgreSQL and Redis per message."""

from __future__ import annotations

from typing import Any

from bench.report_tables import Results, number, percent, table

_PHASES = (
    ("A", "A at {rate:,.0f} msg/s"),
    ("B", "B"),
    ("C", "C fixed rate"),
    ("E", "E"),
)


def cluster_sections(results: Results) -> list[str]:
    cluster = results.get("cluster") or {}
    if not cluster:
        return []
    return [
        *_cpu_section(cluster),
        *_services_section(results["meta"].get("cluster") or {}, cluster),
        *_cross_node_section(cluster),
    ]


def _phases(cluster: Results) -> list[tuple[str, Results]]:
    found: list[tuple[str, Results]] = []
    for letter, label in _PHASES:
        result = cluster.get(letter)
        if not result:
            continue
        if letter == "A":
            found += [(label.format(rate=p["offered_rate"]), p) for p in result["rates"]]
        elif letter == "C":
            found.append((label, result["fixed_rate"]))
        else:
            found.append((label, result))
    return found


def _cpu_section(cluster: Results) -> list[str]:
    rows = []
    for label, phase in _phases(cluster):
        cpu = phase.get("cpu") or {}
        nodes = cpu.get("node_cpu") or []
        rows.append(
            [
                label,
                " / ".join(percent(share) for share in nodes) or "—",
                percent(cpu.get("server_cpu")),
                percent(cpu.get("postgres_cpu")),
                percent(cpu.get("redis_cpu")),
                percent(cpu.get("generator_cpu")),
                percent(cpu.get("other_cpu")),
                " / ".join(number(rss) for rss in cpu.get("node_rss_mib") or []) or "—",
                " / ".join(percent(share) for share in cpu.get("bystander_cpu") or []) or "—",
            ]
        )
    header = [
        "phase",
        "each node's CPU",
        "nodes together",
        "PostgreSQL (the cluster's backends)",
        "Redis",
        "generator",
        "other",
        "node RSS MiB",
        "bystander nodes (`--bystanders`)",
    ]
    return [
        "## Cluster: where the CPU went",
        "",
        "CPU as a share of one core over each measured stretch. PostgreSQL is the backends "
        "serving the cluster's database (from `/proc`); Redis is the run's own `redis-server` "
        "(`INFO cpu`), blank when it was shared. `other` is what is left of the machine's busy "
        "time: other programs, PostgreSQL's own background processes, and kernel network work.",
        "",
        *table(header, rows),
    ]


def _services_section(meta: Results, cluster: Results) -> list[str]:
    loads = [
        ("B, 1:1", (cluster.get("B") or {}).get("services"), cluster.get("B")),
        (
            f"C, {(cluster.get('C') or {}).get('members', '?')}-member group",
            ((cluster.get("C") or {}).get("fixed_rate") or {}).get("services"),
            (cluster.get("C") or {}).get("fixed_rate"),
        ),
    ]
    present = [(label, load, phase) for label, load, phase in loads if load and phase]
    storm = cluster.get("E") or {}
    if not present and not storm.get("redis_per_connection"):
        return []
    rows = [[name, *(read(load, phase) for _, load, phase in present)] for name, read in _MEASURES]
    lines = [
        "## Cluster: PostgreSQL and Redis per message",
        "",
        f"PostgreSQL {meta.get('postgres_version', '?')} ({meta.get('database', '?')}: "
        "`pg_stat_database` and `pg_stat_user_tables` deltas, read once every backend had "
        f"published its counters); Redis {meta.get('redis_version', '?')} "
        f"({meta.get('redis', '?')}: `INFO commandstats`, `stats`, `cpu` deltas; commands "
        "run inside Lua scripts are counted as well as the `EVALSHA` that ran them). Divided "
        "by the messages acknowledged in the measured stretch.",
        "",
        *(table(["per message", *(label for label, _, _ in present)], rows) if present else []),
    ]
    tables = sorted(
        {name for _, load, _ in present for name in load["postgres"]["tables_per_message"]}
    )
    if tables:
        table_rows = []
        for name in tables:
            cells = []
            for _, load, _ in present:
                counts = load["postgres"]["tables_per_message"].get(name) or {}
                cells.append(
                    " / ".join(
                        number(counts.get(key, 0))
                        for key in ("inserted", "updated", "deleted", "index_scans", "seq_scans")
                    )
                )
            table_rows.append([f"`{name}`", *cells])
        lines += [
            "Per message, by table: rows inserted / updated / deleted, then index scans / "
            "sequential scans (reads and the lookups of updates):",
            "",
            *table(["table", *(label for label, _, _ in present)], table_rows),
        ]
    opened = storm.get("redis_per_connection")
    if opened:
        lines += [
            f"Opening E's {number(opened['messages'])} connections (each a `hello` on a node) "
            f"cost Redis {number(opened['per_message']['commands'])} commands each and "
            f"{number(opened['memory_bytes_change'] / max(1, opened['messages']))} bytes of "
            "memory each while open (presence: the device's set, deadline and connection "
            "entries).",
            "",
        ]
    beats = storm.get("idle_heartbeats")
    if beats:
        redis = beats["redis_per_heartbeat"]
        lines += [
            f"Before the storm, the {number(beats['connections'])} connections only heartbeat "
            f"(every {number(beats['interval_s'])} s) for {number(beats['cpu']['seconds'])} s: "
            f"{number(beats['heartbeats'])} heartbeats cost Redis "
            f"{number(redis['per_message']['commands'])} commands each ("
            + ", ".join(
                f"`{name}` {number(count)}"
                for name, count in list(redis["commands_per_message"].items())[:4]
            )
            + f"), {number(redis['cpu_ms_per_1000_messages'])} ms of Redis CPU per 1,000, and "
            f"the nodes {number(beats['node_cpu_us_per_heartbeat'])} µs of CPU each.",
            "",
        ]
    return lines


def _commands(load: Results, phase: Results) -> str:
    top = load["redis"]["commands_per_message"]
    return ", ".join(f"`{name}` {number(count)}" for name, count in list(top.items())[:6]) or "—"


def _activity(load: Results, phase: Results) -> str:
    """What the cluster's backends were doing, in shares of backend-samples."""
    activity = load.get("postgres_activity") or {}
    shares = activity.get("shares") or {}
    if not shares:
        return "—"
    locks = sum(v for k, v in shares.items() if k.startswith("waiting: Lock"))
    io = sum(v for k, v in shares.items() if k.startswith("waiting: IO"))
    parts = [
        ("running", shares.get("running", 0.0)),
        (
            "in a transaction, waiting for the node",
            shares.get("in a transaction, waiting for the node", 0.0),
        ),
        ("lock waits", locks),
        ("I/O waits", io),
        ("idle", shares.get("idle", 0.0)),
    ]
    backends = activity.get("backends_per_sample", 0)
    return f"{number(backends)} backends: " + ", ".join(
        f"{name} {percent(share)}" for name, share in parts
    )


def _node_cpu_ms(load: Results, phase: Results) -> str:
    cpu = phase.get("cpu") or {}
    seconds, share = cpu.get("seconds"), cpu.get("server_cpu")
    acked = phase.get("acked_per_s")
    if not seconds or share is None or not acked:
        return "—"
    return number(1e6 * share / acked)


def _bystander_us(load: Results, phase: Results) -> str:
    """CPU per message of a node that hears every event and holds no connection."""
    shares = (phase.get("cpu") or {}).get("bystander_cpu") or []
    acked = phase.get("acked_per_s")
    if not shares or not acked:
        return "— (run with --bystanders 1)"
    return number(1e6 * (sum(shares) / len(shares)) / acked)


def _pg(key: str) -> Any:
    return lambda load, phase: number(load["postgres"]["per_message"][key])


def _redis(key: str) -> Any:
    return lambda load, phase: number(load["redis"]["per_message"][key])


_MEASURES = [
    ("messages measured", lambda load, phase: number(load["postgres"]["messages"])),
    ("PostgreSQL transactions committed", _pg("transactions")),
    ("PostgreSQL rows inserted", _pg("rows_inserted")),
    ("PostgreSQL rows updated", _pg("rows_updated")),
    ("PostgreSQL rows fetched", _pg("rows_fetched")),
    ("PostgreSQL bytes on disk (tables and indexes)", _pg("table_bytes")),
    (
        "PostgreSQL CPU, ms per 1,000 messages",
        lambda load, phase: number(load["postgres"]["cpu_ms_per_1000_messages"]),
    ),
    ("PostgreSQL backends' time (not per message)", _activity),
    ("Redis commands", _redis("commands")),
    ("Redis commands, the most frequent", _commands),
    (
        "Redis bytes in / out",
        lambda load, phase: (
            f"{_redis('net_input_bytes')(load, phase)} / {_redis('net_output_bytes')(load, phase)}"
        ),
    ),
    (
        "Redis CPU, ms per 1,000 messages",
        lambda load, phase: (
            number(load["redis"]["cpu_ms_per_1000_messages"])
            if load["redis"]["private"]
            else "— (shared Redis)"
        ),
    ),
    ("the nodes' CPU, ms per 1,000 messages", _node_cpu_ms),
    ("a node holding no recipient, CPU µs per message", _bystander_us),
]


def _cross_node_section(cluster: Results) -> list[str]:
    rows = []
    for label, phase in _phases(cluster):
        cross = phase.get("cross_node")
        if not cross:
            continue
        latency = cross.get("latency_ms") or {}
        rows.append(
            [
                label,
                number(cross["delivered"]),
                number(cross["same_node_delivered"]),
                number(latency.get("p50")),
                number(latency.get("p99")),
                number((phase.get("delivery_latency_ms") or {}).get("p99")),
            ]
        )
    if not rows:
        return []
    header = [
        "phase",
        "deliveries across nodes",
        "on the sender's node",
        "across: p50 ms",
        "across: p99 ms",
        "all: p99 ms",
    ]
    return [
        "## Cluster: deliveries across nodes",
        "",
        "A delivery crossed nodes when the sender's connection and the recipient's were on "
        "different nodes (it went through Redis pub/sub); the generator knows each "
        "connection's node.",
        "",
        *table(header, rows),
    ]
