"""`--profile`: py-spy samples the server while a scenario runs.

Each scenario leaves `results/profiles/<letter>.speedscope.json` (a flame
graph: open it at speedscope.app or with `npx speedscope`) and
`<letter>.txt`, the functions that held the CPU longest, by own time and
with their callees.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

SAMPLES_PER_SECOND = 250
TOP = 30


def py_spy() -> str:
    """The py-spy executable beside this interpreter, or on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if found is None:
        raise RuntimeError("--profile needs py-spy: .venv/bin/pip install py-spy")
    return found


class Profiler:
    """py-spy attached to one process until `stop`."""

    def __init__(self, pid: int, out_dir: Path, name: str) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        self.speedscope = out_dir / f"{name}.speedscope.json"
        self.summary = out_dir / f"{name}.txt"
        self._log = out_dir / f"{name}.py-spy.log"
        with self._log.open("wb") as log:
            self._process = subprocess.Popen(
                [
                    py_spy(),
                    "record",
                    # Not pausing the server for each sample: a pause lands in a system call
                    # and lengthens it, so py-spy charged a function that called getpid() 4.7%
                    # of the time with 58% of the samples (5.7% without pausing; measured on
                    # 2026-12-04, docs/benchmarks-profile.md).
                    "--nonblocking",
                    "--pid",
                    str(pid),
                    "--rate",
                    str(SAMPLES_PER_SECOND),
                    "--format",
                    "speedscope",
                    "--output",
                    str(self.speedscope),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def stop(self) -> dict[str, Any]:
        """Stop sampling (py-spy writes its file on SIGINT) and summarise what it saw."""
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)
        try:
            self._process.wait(30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(10)
        if not self.speedscope.exists():
            return {"error": f"py-spy wrote no profile; see {self._log}"}
        top = summarise(json.loads(self.speedscope.read_text()))
        self.summary.write_text(render(top))
        return {"flame_graph": str(self.speedscope), "summary": str(self.summary), **top}


# Where a worker thread waits for work: py-spy cannot always tell these samples are idle.
IDLE_LEAVES = frozenset(
    {
        ("_worker", "thread.py"),
        ("_connection_worker_thread", "core.py"),
    }
)


def summarise(document: dict[str, Any]) -> dict[str, Any]:
    """Own and inclusive time per function, for each thread that did any work.

    Samples whose innermost frame is a worker thread's wait for work are left
    out. On the event loop's thread, the own time of the outermost aiohttp
    frame (`run_app`) is uvloop itself: waiting for and doing socket I/O, in C.
    """
    frames = document["shared"]["frames"]
    names = [f"{frame['name']} ({Path(frame.get('file', '?')).name})" for frame in frames]
    idle = {
        index
        for index, frame in enumerate(frames)
        if (frame["name"], Path(frame.get("file", "?")).name) in IDLE_LEAVES
    }
    threads = []
    for profile in document["profiles"]:
        own: Counter[str] = Counter()
        inclusive: Counter[str] = Counter()
        total = 0.0
        for stack, weight in zip(profile["samples"], profile["weights"], strict=True):
            if not stack or stack[-1] in idle:
                continue
            total += weight
            own[names[stack[-1]]] += weight
            for name in {names[index] for index in stack}:
                inclusive[name] += weight
        if total > 0:
            threads.append(
                {
                    "thread": profile["name"],
                    "seconds": round(total, 2),
                    "own": [[name, round(value, 3)] for name, value in own.most_common(TOP)],
                    "inclusive": [
                        [name, round(value, 3)] for name, value in inclusive.most_common(TOP)
                    ],
                }
            )
    threads.sort(key=lambda thread: -float(thread["seconds"]))
    return {"threads": threads}


def render(top: dict[str, Any]) -> str:
    lines = [
        f"py-spy at {SAMPLES_PER_SECOND} samples/s; per thread, time in seconds and share.",
        "On the event loop's thread, run_app's own time is uvloop (waiting and socket I/O, in C).",
    ]
    for thread in top["threads"]:
        total = max(1e-9, thread["seconds"])
        lines += ["", f"== {thread['thread']}: {thread['seconds']} s sampled", "own time:"]
        lines += [f"{100 * value / total:6.1f}%  {name}" for name, value in thread["own"]]
        lines += ["with callees:"]
        lines += [f"{100 * value / total:6.1f}%  {name}" for name, value in thread["inclusive"]]
    return "\n".join(lines) + "\n"
