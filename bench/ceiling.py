"""`python -m bench.ceiling`: the generator's own ceiling on the echo relay, and another's.

The generator jobs of A, B and C (at the run's sizes) against a fresh echo
relay each time, pinned as in `python -m bench`. With `--baseline DIR` the
generator of another checkout (`git worktree add /tmp/lg-base <commit>`)
runs the very same jobs against the same relay, alternating with this
one's, round after round, so that both meet the same machine; the report is
the median of the rounds and the ratio this / baseline.

On a shared machine the rates move with whatever else runs; a rate per
CPU-second of the generator moves less, and is reported beside each rate.
Results go to `bench/results/ceiling.{json,md}` (or `--json` / `--markdown`).

    python -m bench.ceiling --baseline /tmp/lg-base --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import machine, procstat
from bench.jobs import JOB_MARGIN_SECONDS, job
from bench.processes import ROOT, Placement, pin_self_to_client_side, raise_open_files_limit
from bench.report_tables import number, table
from bench.session import Bench
from bench.sizes import Sizes

RESULTS = ROOT / "bench" / "results"
SCENARIOS = "ABC"

Reading = Callable[[dict[str, Any]], float | None]


def _cpu_rate(rate: float | None, cpu: dict[str, Any] | None) -> float | None:
    """A rate per CPU-second of the generator: what its core would give, fully busy."""
    share = (cpu or {}).get("generator_cpu")
    return round(rate / share, 1) if rate is not None and share else None


def _b_acked(result: dict[str, Any]) -> float | None:
    value = result.get("acked_per_s")
    return None if value is None else float(value)


def _b_acked_per_cpu(result: dict[str, Any]) -> float | None:
    return _cpu_rate(_b_acked(result), result.get("cpu"))


def _b_cpu(side: str) -> Reading:
    def read(result: dict[str, Any]) -> float | None:
        value = (result.get("cpu") or {}).get(side)
        return None if value is None else float(value)

    return read


def _c_fastest(result: dict[str, Any]) -> float | None:
    value = (result.get("as_fast_as_acks_allow") or {}).get("delivered_per_s")
    return None if value is None else float(value)


def _c_fastest_per_cpu(result: dict[str, Any]) -> float | None:
    return _cpu_rate(_c_fastest(result), (result.get("as_fast_as_acks_allow") or {}).get("cpu"))


def _a_p99(rate: float) -> Reading:
    def read(result: dict[str, Any]) -> float | None:
        for phase in result.get("rates", []):
            if phase["offered_rate"] == rate:
                value = (phase.get("delivery_latency_ms") or {}).get("p99")
                return None if value is None else float(value)
        return None

    return read


def measures(sizes: Sizes) -> list[tuple[str, str, Reading, bool]]:
    """(scenario, what, how to read it from the generator's result, higher is better)."""
    rows: list[tuple[str, str, Reading, bool]] = [
        ("A", f"A p99 latency ms at {rate:,.0f} msg/s", _a_p99(rate), False) for rate in sizes.rates
    ]
    return [
        *rows,
        ("B", "B acknowledged msg/s", _b_acked, True),
        ("B", "B acknowledged per generator CPU-second", _b_acked_per_cpu, True),
        # A relay near 1 (a whole core) would be the limit, not the generator.
        ("B", "B generator CPU (1 = a core)", _b_cpu("generator_cpu"), False),
        ("B", "B echo relay CPU (1 = a core)", _b_cpu("server_cpu"), False),
        ("C", "C deliveries/s, as fast as acks allow", _c_fastest, True),
        ("C", "C deliveries per generator CPU-second", _c_fastest_per_cpu, True),
    ]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ceiling",
        description="The generator's ceiling on the echo relay, optionally beside another's.",
    )
    parser.add_argument("--baseline", type=Path, metavar="DIR", help="a checkout whose generator")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each (default 3)")
    parser.add_argument("--scenarios", default=SCENARIOS, help="among A, B, C (default all)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: seconds, for CI")
    parser.add_argument("--json", type=Path, help="where to write the results")
    parser.add_argument("--markdown", type=Path, help="where to write the report")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    letters = [letter for letter in SCENARIOS if letter in args.scenarios.upper()]
    if not letters or args.rounds < 1:
        print("bench.ceiling: scenarios among A, B, C and at least one round", file=sys.stderr)
        return 2
    sizes = Sizes.quick() if args.quick else Sizes()
    placement = Placement.for_this_machine()
    raise_open_files_limit()
    pin_self_to_client_side(placement)
    work_dir = RESULTS / "work-ceiling"
    if work_dir.exists():
        shutil.rmtree(work_dir)
    generators = {"current": Bench(work_dir, placement)}
    if args.baseline is not None:
        generators["baseline"] = Bench(
            work_dir, placement, label="baseline", generator_source=args.baseline.resolve()
        )
    results: dict[str, Any] = {
        "meta": {
            "started_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "command": " ".join(
                ["python -m bench.ceiling", *(argv if argv is not None else sys.argv[1:])]
            ),
            "machine": machine.describe(ROOT),
            "placement": placement.describe(),
            "load_average_at_start": list(os.getloadavg()),
            "baseline": str(args.baseline) if args.baseline else None,
            "rounds": args.rounds,
        },
        "runs": {label: {letter: [] for letter in letters} for label in generators},
    }
    started = time.monotonic()
    for round_number in range(args.rounds):
        for letter in letters:
            for label, bench in generators.items():
                scenario, params, seconds = job(letter, sizes)
                progress = f"round {round_number + 1}, {letter}, {label}"
                print(f"bench.ceiling: {progress}", file=sys.stderr, flush=True)
                before = procstat.machine_busy_seconds()
                began = time.monotonic()
                result = bench.drive(
                    f"{letter}-echo-{round_number}",
                    "echo",
                    scenario,
                    params,
                    timeout=seconds + JOB_MARGIN_SECONDS,
                )
                busy = (procstat.machine_busy_seconds() - before) / (time.monotonic() - began)
                result["machine_busy_cpus"] = round(busy, 2)
                results["runs"][label][letter].append(result)
    results["meta"]["seconds"] = round(time.monotonic() - started, 1)
    results["summary"] = summarise(results, sizes)
    json_path = args.json or RESULTS / "ceiling.json"
    markdown_path = args.markdown or RESULTS / "ceiling.md"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(results, indent=2) + "\n")
    markdown_path.write_text("\n".join(render(results)) + "\n")
    shutil.rmtree(work_dir, ignore_errors=True)
    print("\n".join(render(results)))
    return 0


def summarise(results: dict[str, Any], sizes: Sizes) -> list[dict[str, Any]]:
    """Per measure: each generator's median over the rounds, and current / baseline."""
    rows = []
    runs = results["runs"]
    for letter, what, read, higher in measures(sizes):
        row: dict[str, Any] = {"scenario": letter, "what": what, "higher_is_better": higher}
        for label, by_letter in runs.items():
            values = [v for v in (read(r) for r in by_letter.get(letter, [])) if v is not None]
            row[label] = round(statistics.median(values), 3) if values else None
            row[f"{label}_rounds"] = values
        if letter not in runs["current"]:
            continue
        current, baseline = row.get("current"), row.get("baseline")
        row["ratio"] = round(current / baseline, 2) if current and baseline else None
        rows.append(row)
    return rows


def render(results: dict[str, Any]) -> list[str]:
    meta = results["meta"]
    described = meta["machine"]
    with_baseline = meta["baseline"] is not None
    header = ["measure", "this generator"]
    if with_baseline:
        header += [f"baseline ({meta['baseline']})", "this / baseline"]
    rows = []
    for row in results["summary"]:
        line = [row["what"], number(row["current"])]
        if with_baseline:
            ratio = row["ratio"]
            line += [number(row["baseline"]), "—" if ratio is None else f"{ratio:.2f}x"]
        rows.append(line)
    busy = [
        result["machine_busy_cpus"]
        for by_letter in results["runs"].values()
        for runs in by_letter.values()
        for result in runs
    ]
    return [
        "# The generator's ceiling on the echo relay",
        "",
        f"Measured {meta['started_at']} on commit `{described['commit']}`, "
        f"{described['cores']} cores ({described['cpu_model']}), Python {described['python']}, "
        f"{meta['placement']}; load average at start "
        f"{', '.join(f'{x:.2f}' for x in meta['load_average_at_start'])}; the whole machine "
        f"was busy {min(busy):.2f} to {max(busy):.2f} CPUs during the runs. "
        f"Median of {meta['rounds']} rounds; command: `{meta['command']}`.",
        "",
        *table(header, rows),
    ]


if __name__ == "__main__":
    sys.exit(main())
