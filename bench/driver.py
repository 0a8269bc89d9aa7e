"""`python -m bench`: run the scenarios, write the JSON results and the Markdown report.

Every scenario gets a server process of its own on a fresh data folder and a
generator process of its own. Before each of A to D the same generator job
runs against the echo relay (`bench.echo_server`), which measures the
generator's own ceiling under the same conditions. With `--mode cluster` or
`both`, A, B, C and E also run, right after the embedded server's turn,
against three nodes on PostgreSQL and Redis (`bench.cluster`), with the same
generator job spread over the nodes.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import machine, procstat
from bench.cluster_runs import choose_mode, open_services, run_on_cluster, start_shared
from bench.coldstart import measure_cold_start
from bench.jobs import CLUSTER_SCENARIOS, JOB_MARGIN_SECONDS, job
from bench.processes import ROOT, Placement, pin_self_to_client_side, raise_open_files_limit
from bench.report import render_report
from bench.session import Bench
from bench.sizes import Sizes
from bench.targets import judge_all, problems

RESULTS = ROOT / "bench" / "results"
DOCS_REPORT = ROOT / "docs" / "benchmarks.md"
ALL_SCENARIOS = "ABCDEF"
ECHO_COMPARED = "ABCD"
MODES = ("embedded", "cluster", "both")
# The report docs/benchmarks.md holds both modes side by side: only a run of both replaces it.
CANONICAL_MODE = "both"
# Before each part, wait (this long at most) for other programs to leave the CPUs idle.
QUIET_WAIT_SECONDS = 5.0
QUIET_BELOW_CPUS = 0.2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark the chat server over real WebSockets (see docs/benchmarks.md).",
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes: seconds, for CI")
    parser.add_argument(
        "--mode",
        choices=MODES,
        help="the embedded server, a three-node cluster (A, B, C, E), or both "
        "(default: embedded; with --quick, both where PostgreSQL and Redis can be reached)",
    )
    parser.add_argument(
        "--cluster-placement",
        choices=("spread", "pinned"),
        default="spread",
        help="the cluster's nodes and Redis on every CPU (default), or on the server's CPU "
        "only; the generator keeps its own CPU either way",
    )
    parser.add_argument(
        "--scenarios", default=ALL_SCENARIOS, help="which to run, e.g. A,B (default: all)"
    )
    parser.add_argument(
        "--size",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="change one size, e.g. --size idle_steps=1000,2000 (see bench/sizes.py)",
    )
    parser.add_argument(
        "--bystanders",
        type=int,
        default=0,
        metavar="N",
        help="start N more cluster nodes that hold no connection, to measure what hearing "
        "every event costs a node",
    )
    parser.add_argument(
        "--no-ceiling",
        action="store_true",
        help="skip the generator-ceiling runs on the echo relay",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample the server with py-spy; flame graphs go to bench/results/profiles/",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="DIR",
        help="also run every scenario on the chatapp package in DIR, and report after/before",
    )
    parser.add_argument("--json", type=Path, help="where to write the results")
    parser.add_argument("--markdown", type=Path, help="where to write the report")
    parser.add_argument(
        "--keep-data", action="store_true", help="keep the data folders and logs of the run"
    )
    parser.add_argument(
        "--report-from",
        type=Path,
        metavar="JSON",
        help="measure nothing: write the report again from a results file (to the same place)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.report_from is not None:
        return _report_again(args.report_from, args.markdown)
    try:
        sizes = (Sizes.quick() if args.quick else Sizes()).with_overrides(
            dict(item.split("=", 1) for item in args.size)
        )
        scenarios = _scenarios(args.scenarios)
    except ValueError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    mode, cluster_skipped = choose_mode(args.mode, quick=args.quick)
    if mode is None:
        print(f"bench: {cluster_skipped}", file=sys.stderr)
        return 1
    if cluster_skipped:
        print(f"bench: {cluster_skipped}", file=sys.stderr)
    canonical = (
        not (
            args.quick
            or args.size
            or args.profile
            or args.baseline
            or args.no_ceiling
            or args.bystanders
        )
        and scenarios == list(ALL_SCENARIOS)
        and mode == CANONICAL_MODE
        and args.cluster_placement == "spread"
    )
    json_path, markdown_path = _outputs(args, canonical)

    placement = Placement.for_this_machine()
    open_files = raise_open_files_limit()
    pin_self_to_client_side(placement)
    work_dir = RESULTS / "work"
    if work_dir.exists():
        shutil.rmtree(work_dir)
    profile_dir = RESULTS / "profiles" if args.profile else None
    current = Bench(work_dir, placement, profile_dir=profile_dir)
    baseline = (
        Bench(work_dir, placement, profile_dir, source=args.baseline.resolve(), label="baseline")
        if args.baseline
        else None
    )

    started = time.monotonic()
    results: dict[str, Any] = {
        "meta": {
            "started_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "command": " ".join(["python -m bench", *(argv if argv is not None else sys.argv[1:])]),
            "quick": args.quick,
            "canonical": canonical,
            "machine": machine.describe(ROOT),
            "placement": placement.describe(),
            "open_files_limit": open_files,
            "load_average_at_start": list(os.getloadavg()),
            "sizes": sizes.as_dict(),
            "baseline": str(args.baseline) if args.baseline else None,
            "mode": mode,
            "cluster": {"skipped": cluster_skipped} if cluster_skipped else None,
        },
        "scenarios": {},
        "cluster": {},
        "ceiling": {},
        "baseline": {},
        "errors": {},
    }
    embedded = mode in ("embedded", "both")
    clustered = [letter for letter in scenarios if letter in CLUSTER_SCENARIOS]
    services = None
    if mode in ("cluster", "both") and clustered:
        services = open_services(results, work_dir, placement, args.cluster_placement)
    shared_cluster = None
    if services is not None and args.quick:
        # CI's minute: the quick run's scenarios share one cluster (their users differ).
        shared_cluster = start_shared(results, current, services, args.cluster_placement)
        if shared_cluster is None:
            services = None
    # CI's quick run does not wait: its numbers mean nothing anyway.
    quiet_wait = 0.0 if args.quick else QUIET_WAIT_SECONDS
    try:
        for letter in scenarios:
            if not embedded and letter not in clustered:
                continue
            _progress(f"scenario {letter}")
            if letter in ECHO_COMPARED and not args.no_ceiling:
                _attempt(
                    results,
                    f"{letter} (echo)",
                    results["ceiling"],
                    letter,
                    functools.partial(_run, current, letter, "echo", sizes),
                    quiet_wait,
                )
            if embedded:
                _attempt(
                    results,
                    letter,
                    results["scenarios"],
                    letter,
                    functools.partial(_run, current, letter, "chat", sizes),
                    quiet_wait,
                )
            if services is not None and letter in clustered:
                _attempt(
                    results,
                    f"{letter} (cluster)",
                    results["cluster"],
                    letter,
                    functools.partial(
                        run_on_cluster,
                        current,
                        services,
                        letter,
                        sizes,
                        args.cluster_placement,
                        shared_cluster,
                        args.bystanders,
                    ),
                    quiet_wait,
                )
            if baseline is not None and embedded:
                _attempt(
                    results,
                    f"{letter} (baseline)",
                    results["baseline"],
                    letter,
                    functools.partial(_run, baseline, letter, "chat", sizes),
                    quiet_wait,
                )
    finally:
        try:
            if shared_cluster is not None:
                shared_cluster.stop()
        finally:
            if services is not None:
                services.close()
    results["meta"]["seconds"] = round(time.monotonic() - started, 1)
    results["targets"] = judge_all(results, sizes.as_dict())
    results["problems"] = problems(results)

    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    markdown_path.parent.mkdir(parents=True, exist_ok=True)
    markdown_path.write_text(render_report(results))
    if not args.keep_data and not results["errors"]:
        shutil.rmtree(work_dir, ignore_errors=True)
    print(f"bench: results in {_shown(json_path)}, report in {_shown(markdown_path)}")
    for problem in results["problems"]:
        print(f"bench: problem: {problem}", file=sys.stderr)
    for name, error in results["errors"].items():
        print(f"bench: {name} failed: {error}", file=sys.stderr)
    if results["errors"]:
        return 1
    return 3 if results["problems"] else 0


def _report_again(json_path: Path, markdown_path: Path | None) -> int:
    results = json.loads(json_path.read_text())
    # Judged again: the targets are the project's current ones, the figures the run's.
    results["targets"] = judge_all(results, results["meta"]["sizes"])
    if markdown_path is None:
        canonical = results["meta"].get("canonical", False)
        markdown_path = DOCS_REPORT if canonical else json_path.with_suffix(".md")
    markdown_path.write_text(render_report(results))
    print(f"bench: report in {_shown(markdown_path)}, from {_shown(json_path)}")
    return 0


def _scenarios(raw: str) -> list[str]:
    chosen = [char for char in raw.upper() if not char.isspace() and char != ","]
    unknown = [letter for letter in chosen if letter not in ALL_SCENARIOS]
    if unknown or not chosen:
        raise ValueError(f"scenarios are letters among {', '.join(ALL_SCENARIOS)}")
    return [letter for letter in ALL_SCENARIOS if letter in chosen]


def _outputs(args: argparse.Namespace, canonical: bool) -> tuple[Path, Path]:
    """Only the full default run replaces the committed report; other runs write beside it."""
    if canonical:
        stem = "latest"
        markdown = DOCS_REPORT
    else:
        stem = "quick" if args.quick else "profile" if args.profile else "last-run"
        markdown = RESULTS / f"{stem}.md"
    return args.json or RESULTS / f"{stem}.json", args.markdown or markdown


def _run(bench: Bench, letter: str, kind: str, sizes: Sizes) -> dict[str, Any]:
    if letter == "F":
        return measure_cold_start(bench, sizes.cold_messages, sizes.cold_repeats, RESULTS / "cache")
    scenario, params, seconds = job(letter, sizes)
    if letter == "D" and kind == "echo":
        # The relay is measured for its connect rate and memory; its idle CPU says nothing.
        params["idle_seconds"] = min(1.0, sizes.idle_seconds)
    return bench.drive(
        f"{letter}-{kind}", kind, scenario, params, timeout=seconds + JOB_MARGIN_SECONDS
    )


def _attempt(
    results: dict[str, Any],
    name: str,
    into: dict[str, Any],
    key: str,
    work: Callable[[], dict[str, Any]],
    quiet_wait: float,
) -> None:
    """Run one part; a failure is recorded and the run goes on with the next."""
    quiet = procstat.wait_for_quiet(quiet_wait, QUIET_BELOW_CPUS) if quiet_wait > 0 else None
    began = time.monotonic()
    try:
        into[key] = work()
        into[key]["machine_before"] = quiet
    except Exception as exc:
        results["errors"][name] = f"{type(exc).__name__}: {exc}"
        _progress(f"  {name}: failed: {exc}")
        return
    _progress(f"  {name}: {time.monotonic() - began:.0f} s")


def _progress(text: str) -> None:
    print(f"bench: {text}", file=sys.stderr, flush=True)


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
