"""The report's table for each scenario, A to F."""

from __future__ import annotations

from bench.report_tables import (
    Results,
    cpu_columns,
    latencies,
    number,
    percent,
    table,
)

Runs = list[tuple[str, Results]]
"""The same scenario on each server that ran it: ("embedded" or "3 nodes", its results)."""


def scenario_sections(results: Results) -> list[str]:
    scenarios = results["scenarios"]
    cluster = results.get("cluster") or {}
    ceiling = results["ceiling"]
    lines: list[str] = []
    for letter in "ABCDEF":
        if letter in "DF":
            if letter in scenarios:
                lines += (_d if letter == "D" else _f)(scenarios[letter], ceiling.get(letter))
            continue
        runs = [
            (name, found[letter]) for name, found in _modes(scenarios, cluster) if letter in found
        ]
        if runs:
            lines += _SIDE_BY_SIDE[letter](runs, bool(cluster))
    return lines


def _modes(scenarios: Results, cluster: Results) -> list[tuple[str, Results]]:
    return [("embedded", scenarios), ("3 nodes", cluster)]


def _server(name: str, both: bool) -> list[str]:
    return [name] if both else []


def _a(runs: Runs, both: bool) -> list[str]:
    rows = []
    for name, result in runs:
        rows += _a_rows(name, result, both)
    header = [
        *_server("server", both),
        "msg/s offered",
        "sent",
        "acked",
        "delivered",
        "lost",
        "dup",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
        "ack p99 ms",
        "server CPU",
        "generator CPU",
        "other CPU",
    ]
    users = runs[0][1]["users"]
    return [
        "## A, latency",
        "",
        f"{users} users in {users // 2} pairs, one device each, both sides "
        "sending to each other at a fixed total rate, after a warm-up second. Latency: "
        "send to the partner's receipt of the `message` frame." + (_SPREAD if both else ""),
        "",
        *table(header, rows),
    ]


_SPREAD = (
    " On three nodes, the two users of a pair are on different nodes, so every delivery "
    "crosses the cluster; server CPU is the three nodes' together (1 = one core)."
)


def _a_rows(name: str, result: Results, both: bool) -> list[list[str]]:
    rows = []
    for phase in result["rates"]:
        rows.append(
            [
                *_server(name, both),
                f"{phase['offered_rate']:,.0f}",
                number(phase["sent"]),
                number(phase["acked"]),
                number(phase["delivered"]),
                number(phase["lost"]),
                number(phase["duplicated"]),
                *latencies(phase),
                number(phase["ack_latency_ms"].get("p99")),
                *cpu_columns(phase),
            ]
        )
    return rows


def _b(runs: Runs, both: bool) -> list[str]:
    rows = [_b_row(name, result, both) for name, result in runs]
    header = [
        *_server("server", both),
        "senders",
        "window",
        "acked msg/s",
        "delivered msg/s",
        "acked per server CPU-second",
        "server CPU",
        "generator CPU",
        "other CPU",
        "p50 ms",
        "p99 ms",
        "lost",
        "dup",
    ]
    return [
        "## B, throughput",
        "",
        "The same pairs, each sender keeping at most `window` sends unacknowledged, for a fixed "
        'time. The embedded server is pinned to one core; "acked per server CPU-second" is what '
        "a fully busy core would give at this efficiency"
        + (
            " (on three nodes, per CPU-second of the three nodes together, PostgreSQL and "
            "Redis not counted: see below)."
            if both
            else "."
        ),
        "",
        *table(header, rows),
    ]


def _b_row(name: str, result: Results, both: bool) -> list[str]:
    return [
        *_server(name, both),
        number(result["senders"]),
        number(result["window"]),
        number(result["acked_per_s"]),
        number(result["delivered_per_s"]),
        number(result.get("acked_per_server_cpu_second")),
        *cpu_columns(result),
        number(result["delivery_latency_ms"].get("p50")),
        number(result["delivery_latency_ms"].get("p99")),
        number(result["lost"]),
        number(result["duplicated"]),
    ]


def _c(runs: Runs, both: bool) -> list[str]:
    rows = []
    for name, result in runs:
        rows += _c_rows(name, result, both)
    header = [
        *_server("server", both),
        "phase",
        "msg/s offered",
        "acked msg/s",
        "deliveries/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
        "lost",
        "dup",
        "server CPU",
        "generator CPU",
        "other CPU",
    ]
    result = runs[0][1]
    return [
        "## C, group fan-out",
        "",
        f"One group of {result['members']} members, one device each; {result['senders']} of them "
        "send. Each message is delivered to every other member. Latency is per recipient."
        + (" On three nodes, a third of the members are on each node." if both else ""),
        "",
        *table(header, rows),
    ]


def _c_rows(name: str, result: Results, both: bool) -> list[list[str]]:
    rows = []
    for label, key in (
        ("fixed rate", "fixed_rate"),
        ("as fast as acks allow", "as_fast_as_acks_allow"),
    ):
        phase = result[key]
        offered = phase.get("offered_rate")
        rows.append(
            [
                *_server(name, both),
                label,
                number(offered) if offered else f"window {phase.get('window')}",
                number(phase["acked_per_s"]),
                number(phase["delivered_per_s"]),
                *latencies(phase),
                number(phase["lost"]),
                number(phase["duplicated"]),
                *cpu_columns(phase),
            ]
        )
    return rows


def _d(result: Results, echo: Results | None) -> list[str]:
    echo_steps = {step["connections"]: step for step in (echo or {}).get("steps", [])}
    rows = []
    for step in result["steps"]:
        other = echo_steps.get(step["connections"], {})
        rows.append(
            [
                number(step["connections"]),
                number(step["open"]),
                number(step["connect_seconds"]),
                number(step["connects_per_s"]),
                number(step["server_rss_mib"]),
                number(step["rss_per_connection_kib"]),
                percent(step["idle_server_cpu"]),
                number(step["heartbeats_per_s"]),
                number(other.get("rss_per_connection_kib")),
            ]
        )
    header = [
        "connections",
        "open",
        "seconds to connect the step",
        "connects/s",
        "server RSS MiB",
        "RSS per connection KiB",
        "server CPU while idle",
        "heartbeats/s",
        "echo relay KiB per connection",
    ]
    logins = result.get("logins", 0)
    return [
        "## D, idle connections",
        "",
        f"{result['users']} users with {result['devices_per_user']} devices each "
        f"({number(logins)} logins, {number(result['login_seconds'])} s, not counted below). "
        "Connections are added in steps; each is authenticated (`hello` → `synced`) and sends "
        f"`heartbeat` every {number(result['heartbeat_interval_s'])} s. RSS per connection is "
        "the growth over "
        f"the server's RSS before the first WebSocket ({number(result['baseline_rss_mib'])} MiB), "
        "divided by the connections open.",
        "",
        *table(header, rows),
    ]


def _e(runs: Runs, both: bool) -> list[str]:
    rows = [_e_row(name, result, both) for name, result in runs]
    header = [
        *_server("server", both),
        "devices",
        "msg/s flowing",
        "s until all synced",
        "resync p50 ms",
        "resync p99 ms",
        "resynced",
        "sent",
        "acked",
        "delivered",
        "owed",
        "lost",
        "dup",
        "server CPU",
        "generator CPU",
        "other CPU",
    ]
    result = runs[0][1]
    return [
        "## E, reconnect storm",
        "",
        f"{result['users']} users with {result['devices'] // max(1, result['users'])} devices "
        f"each, all connected; {result['senders']} senders keep messages flowing into their "
        "direct channels. Every device drops its TCP connection at once (no closing handshake) "
        'and reconnects at once with `hello last_seq`; "until all synced" runs from the drop '
        "to the last `synced`. Owed: deliveries due to the devices for the acknowledged "
        "messages, across the drop."
        + (
            " On three nodes, every device comes back on the next node, as after its node "
            "went away, and resyncs from PostgreSQL there."
            if both
            else ""
        ),
        "",
        *table(header, rows),
    ]


def _e_row(name: str, result: Results, both: bool) -> list[str]:
    resync = result.get("resync_ms") or {}
    return [
        *_server(name, both),
        number(result["devices"]),
        number(result["offered_rate"]),
        number(result.get("seconds_until_all_synced")),
        number(resync.get("p50")),
        number(resync.get("p99")),
        number(result.get("resynced")),
        number(result["sent"]),
        number(result["acked"]),
        number(result["delivered"]),
        number(result["owed"]),
        number(result["lost"]),
        number(result["duplicated"]),
        *cpu_columns(result),
    ]


def _f(result: Results, echo: Results | None) -> list[str]:
    build = result["build"]
    rows = [
        [
            "empty (new folder each start)",
            "0",
            number(result["empty"]["median_seconds"]),
            number(result["empty"]["max_seconds"]),
            number(len(result["empty"]["starts"])),
        ],
        [
            f"{build['users']} users, {build['channels']} channels",
            number(result["messages"]),
            number(result["seeded"]["median_seconds"]),
            number(result["seeded"]["max_seconds"]),
            number(len(result["seeded"]["starts"])),
        ],
    ]
    made = "copied from the cache of an earlier run" if build.get("cached") else "built in this run"
    return [
        "## F, cold start",
        "",
        "From starting `python -m chatapp serve` to the first 200 from `/readyz` (polled every "
        "2 ms), interpreter start-up included.",
        "",
        *table(["data folder", "messages", "median s", "max s", "starts"], rows),
        f"The large folder was {made}: accounts and channels over HTTP, then "
        f"{number(build['messages'])} messages through `LevelDBMessageStore` (large concurrent "
        f"batches, {build['parts']} stores on disjoint channels at once, then their records "
        f"merged) in {number(build['fill_seconds'])} + {number(build['merge_seconds'])} s "
        f"({number(build['messages_per_s'])} msg/s), "
        f"{number(round(build['bytes_on_disk'] / 2**20))} MiB on disk.",
        "",
    ]


_SIDE_BY_SIDE = {"A": _a, "B": _b, "C": _c, "E": _e}
