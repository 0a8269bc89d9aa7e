"""`python -m bench.loadgen JOB.json RESULT.json`: run one scenario, write its numbers."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench import procstat
from bench.loadgen.backend import Target
from bench.loadgen.scenarios import connections, fanout, latency, reconnect, seed, throughput
from bench.processes import raise_open_files_limit

Runner = Callable[[Target, Any], Awaitable[dict[str, Any]]]

SCENARIOS: dict[str, tuple[type[Any], Runner]] = {
    "latency": (latency.Params, latency.run),
    "throughput": (throughput.Params, throughput.run),
    "fanout": (fanout.Params, fanout.run),
    "connections": (connections.Params, connections.run),
    "reconnect": (reconnect.Params, reconnect.run),
    "seed": (seed.Params, seed.run),
}


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    params_type, runner = SCENARIOS[job["scenario"]]
    known = {field.name for field in dataclasses.fields(params_type)}
    params = params_type(**{k: v for k, v in job["params"].items() if k in known})
    target = Target(**job["target"])
    started = time.perf_counter()
    result = _run(runner(target, params))
    result["generator"] = {
        "seconds": round(time.perf_counter() - started, 2),
        "peak_rss_mib": round(_peak_rss_bytes() / 2**20, 1),
        "open_files_limit": raise_open_files_limit(),
        "cpus": sorted(os.sched_getaffinity(0)),
    }
    return result


def _run(work: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    async def main() -> dict[str, Any]:
        return await work

    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:
        runner = asyncio.Runner()
    with runner:
        return runner.run(main())


def _peak_rss_bytes() -> int:
    for line in Path(f"/proc/{os.getpid()}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return procstat.sample(os.getpid()).rss_bytes


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m bench.loadgen JOB.json RESULT.json", file=sys.stderr)
        return 2
    raise_open_files_limit()
    job = json.loads(Path(argv[0]).read_text())
    result = run_job(job)
    Path(argv[1]).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
