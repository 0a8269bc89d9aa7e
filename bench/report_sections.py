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


def _other(result: Results | None, phase: str | None) -> str:
    if result is None:
        return "—"
    part = result.get(phase) or {} if phase else result
    return percent((part.get("cpu") or {}).get("other_cpu"))


def ceiling_section(results: Results) -> list[str]:
    ceiling = results["ceiling"]
    if not ceiling:
        return []
    lines = [
        "## The generator's ceiling",
        "",
        "The same generator jobs against the echo relay (no storage, no checks), in the same "
        "run. Where the server's number comes within "
        f"{100 * GENERATOR_BOUND:.0f}% of the relay's, the generator is the limit. Both runs "
        "share the machine with whatever else runs on it: a ceiling measured while `other CPU` "
        "was high is low, and only shows what the generator managed then.",
        "",
    ]
    rows = []
    scenarios = results["scenarios"]
    for phase in (ceiling.get("A") or {}).get("rates", []):
        rate = phase["offered_rate"]
        server: Results = next(
            (p for p in (scenarios.get("A") or {}).get("rates", []) if p["offered_rate"] == rate),
            {},
        )
        rows.append(
            [
                f"A latency p50 / p99 at {rate:,.0f} msg/s",
                f"{latencies(phase)[0]} / {latencies(phase)[2]} ms",
                f"{latencies(server)[0]} / {latencies(server)[2]} ms",
                _latency_bound(phase, server),
                f"{_other(phase, None)} / {_other(server, None) if server else '—'}",
            ]
        )
    for letter, label, read, phase in (
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
        echo = read(echo_result) if echo_result else None
        measured = read(server_result) if server_result else None
        bound = "—"
        if phase == "fixed_rate":
            bound = "n/a: both deliver what is offered"
        elif echo and measured is not None:
            bound = "**yes**" if measured >= GENERATOR_BOUND * echo else "no"
        others = f"{_other(echo_result, phase)} / {_other(server_result, phase)}"
        rows.append([label, number(echo), number(measured), bound, others])
    echo_rate = _connect_rate(ceiling["D"]) if "D" in ceiling else None
    server_rate = _connect_rate(scenarios["D"]) if "D" in scenarios else None
    if echo_rate is not None or server_rate is not None:
        bound = "—"
        if echo_rate and server_rate is not None:
            bound = "**yes**" if server_rate >= GENERATOR_BOUND * echo_rate else "no"
        rows.append(
            [
                "D connections opened per second (largest step)",
                number(echo_rate),
                number(server_rate),
                bound,
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
                "reference: a bare aiohttp relay",
                "—",
            ]
        )
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
    for target in TARGETS:
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
