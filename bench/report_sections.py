"""The report's generator-ceiling and before/after sections."""

from __future__ import annotations

from bench.report_tables import (
    GENERATOR_BOUND,
    Results,
    latencies,
    number,
    percent,
    table,
)
from bench.targets import TARGETS


def _acked_rate(result: Results) -> float | None:
    value = result.get("acked_per_s")
    return None if value is None else float(value)


def _fixed_deliveries(result: Results) -> float | None:
    value = (result.get("fixed_rate") or {}).get("delivered_per_s")
    return None if value is None else float(value)


def _fastest_deliveries(result: Results) -> float | None:
    value = (result.get("as_fast_as_acks_allow") or {}).get("delivered_per_s")
    return None if value is None else float(value)


def _connect_rate(result: Results) -> float | None:
    value = ((result.get("steps") or [{}])[-1]).get("connects_per_s")
    return None if value is None else float(value)


def _latency_bound(echo: Results, server: Results) -> str:
    echo_p99 = (echo.get("delivery_latency_ms") or {}).get("p99")
    server_p99 = (server.get("delivery_latency_ms") or {}).get("p99")
    if echo_p99 is None or server_p99 is None:
        return "—"
    return "**yes**" if server_p99 <= echo_p99 / GENERATOR_BOUND else "no"


def _rate_bound(echo: float | None, measured: float | None) -> str:
    if not echo or measured is None:
        return "—"
    return "**yes**" if measured >= GENERATOR_BOUND * echo else "no"


def _other(result: Results | None, phase: str | None) -> str:
    if not result:
        return "—"
    part = result.get(phase) or {} if phase else result
    return percent((part.get("cpu") or {}).get("other_cpu"))


def _phase_at(result: Results | None, rate: float) -> Results:
    phases = (result or {}).get("rates", [])
    found: Results = next((p for p in phases if p["offered_rate"] == rate), {})
    return found


def _p50_p99(phase: Results) -> str:
    if not phase:
        return "—"
    return f"{latencies(phase)[0]} / {latencies(phase)[2]} ms"


def ceiling_section(results: Results) -> list[str]:
    ceiling = results["ceiling"]
    if not ceiling:
        return []
    cluster = results.get("cluster") or {}
    with_cluster = bool(cluster)
    lines = [
        "## The generator's ceiling" + (", and both servers side by side" if with_cluster else ""),
        "",
        "The same generator jobs against the echo relay (no storage, no checks), in the same "
        "run. Where the server's number comes within "
        f"{100 * GENERATOR_BOUND:.0f}% of the relay's, the generator is the limit. Both runs "
        "share the machine with whatever else runs on it: a ceiling measured while `other CPU` "
        "was high is low, and only shows what the generator managed then.",
        "",
    ]
    if with_cluster:
        lines += [
            "The three nodes get the very same jobs, their connections spread over the nodes "
            "in turn (link `i` on node `i mod 3`), so both users of a pair are on different "
            "nodes and every A and B delivery crosses the cluster.",
            "",
        ]
    scenarios = results["scenarios"]
    rows = []
    for phase in (ceiling.get("A") or {}).get("rates", []):
        rate = phase["offered_rate"]
        server = _phase_at(scenarios.get("A"), rate)
        nodes = _phase_at(cluster.get("A"), rate)
        row = [f"A latency p50 / p99 at {rate:,.0f} msg/s", _p50_p99(phase), _p50_p99(server)]
        bound = _latency_bound(phase, server) if server else "—"
        others = [_other(phase, None), _other(server, None)]
        if with_cluster:
            row.append(_p50_p99(nodes))
            bound += " / " + (_latency_bound(phase, nodes) if nodes else "—")
            others.append(_other(nodes, None))
        rows.append([*row, bound, " / ".join(others)])
    for letter, label, read, phase_key in (
        ("B", "B acknowledged msg/s", _acked_rate, None),
        ("C", "C deliveries/s, fixed rate", _fixed_deliveries, "fixed_rate"),
        (
            "C",
            "C deliveries/s, as fast as acks allow",
            _fastest_deliveries,
            "as_fast_as_acks_allow",
        ),
    ):
        echo_result = ceiling.get(letter)
        server_result = scenarios.get(letter)
        cluster_result = cluster.get(letter)
        echo = read(echo_result) if echo_result else None
        measured = read(server_result) if server_result else None
        clustered = read(cluster_result) if cluster_result else None
        row = [label, number(echo), number(measured)]
        if phase_key == "fixed_rate":
            bound = "n/a: all deliver what is offered"
        else:
            bound = _rate_bound(echo, measured)
            if with_cluster:
                bound += " / " + _rate_bound(echo, clustered)
        others = [_other(echo_result, phase_key), _other(server_result, phase_key)]
        if with_cluster:
            row.append(number(clustered))
            others.append(_other(cluster_result, phase_key))
        rows.append([*row, bound, " / ".join(others)])
    blank = ["—"] if with_cluster else []
    echo_rate = _connect_rate(ceiling["D"]) if "D" in ceiling else None
    server_rate = _connect_rate(scenarios["D"]) if "D" in scenarios else None
    if echo_rate is not None or server_rate is not None:
        rows.append(
            [
                "D connections opened per second (largest step)",
                number(echo_rate),
                number(server_rate),
                *blank,
                _rate_bound(echo_rate, server_rate),
                "—",
            ]
        )
    if "D" in ceiling:
        echo_step = (ceiling["D"].get("steps") or [{}])[-1]
        server_step = ((scenarios.get("D") or {}).get("steps") or [{}])[-1]
        rows.append(
            [
                f"D RSS per idle connection at {number(echo_step.get('connections'))}",
                f"{number(echo_step.get('rss_per_connection_kib'))} KiB",
                f"{number(server_step.get('rss_per_connection_kib'))} KiB",
                *blank,
                "reference: a bare aiohttp relay",
                "—",
            ]
        )
    if with_cluster and ("E" in scenarios or "E" in cluster):
        rows.append(
            [
                "E seconds until all devices resynced",
                "—",
                number((scenarios.get("E") or {}).get("seconds_until_all_synced")),
                number((cluster.get("E") or {}).get("seconds_until_all_synced")),
                "—",
                " / ".join(["—", _other(scenarios.get("E"), None), _other(cluster.get("E"), None)]),
            ]
        )
    if with_cluster:
        header = [
            "measure",
            "echo relay",
            "embedded",
            "3 nodes",
            "generator-bound? (embedded / 3 nodes)",
            "other CPU (echo / embedded / 3 nodes)",
        ]
    else:
        header = [
            "measure",
            "echo relay",
            "chat server",
            "generator-bound?",
            "other CPU (echo / server)",
        ]
    return [*lines, *table(header, rows)]


def baseline_section(results: Results) -> list[str]:
    baseline = results.get("baseline") or {}
    if not baseline:
        return []
    rows = []
    # The baseline runs on the embedded server only; a cluster target's figure
    # would be read off the embedded results.
    for target in (target for target in TARGETS if target.mode == "embedded"):
        before = baseline.get(target.scenario)
        after = results["scenarios"].get(target.scenario)
        old = target.read(before) if before else None
        new = target.read(after) if after else None
        ratio = "—"
        if old and new is not None:
            change = new / old
            better = change > 1 if target.higher_is_better else change < 1
            ratio = f"{change:.2f}x ({'better' if better else 'worse'})"
        if old is not None or new is not None:
            rows.append([target.scenario, target.what, number(old), number(new), ratio])
    return [
        "## Before and after",
        "",
        "Every scenario also ran, in this same run and right after the current server's "
        f"turn, on the server in `{results['meta']['baseline']}`.",
        "",
        *table(["scenario", "what", "before", "after", "after / before"], rows),
    ]
