"""What a process costs, read from /proc: CPU time and resident memory."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Sample:
    """One reading of a process: its CPU seconds so far, its RSS, and when it was taken."""

    at: float
    cpu_seconds: float
    rss_bytes: int
    threads: int


def sample(pid: int) -> Sample:
    """Read /proc/<pid>/stat (utime + stime, all threads) and /proc/<pid>/status (VmRSS)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name may hold spaces and parentheses; the fields follow the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    cpu_ticks = int(fields[11]) + int(fields[12])
    rss = 0
    threads = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) * 1024
        elif line.startswith("Threads:"):
            threads = int(line.split()[1])
    return Sample(
        at=time.monotonic(),
        cpu_seconds=cpu_ticks / _TICKS_PER_SECOND,
        rss_bytes=rss,
        threads=threads,
    )


def cpu_share(before: Sample, after: Sample) -> float:
    """CPU used between two samples, as a fraction of one core (1.0 = one core busy)."""
    wall = after.at - before.at
    return (after.cpu_seconds - before.cpu_seconds) / wall if wall > 0 else 0.0


def wait_for_quiet(max_wait: float, threshold: float, window: float = 1.0) -> dict[str, float]:
    """Wait (at most `max_wait` s) until the machine's busy time over `window` s is below
    `threshold` CPUs; the seconds waited and how busy the last window was."""
    started = time.monotonic()
    busy = 0.0
    while True:
        before = machine_busy_seconds()
        time.sleep(window)
        busy = (machine_busy_seconds() - before) / window
        waited = time.monotonic() - started
        if busy < threshold or waited >= max_wait:
            return {"waited_seconds": round(waited, 1), "busy_cpus": round(busy, 2)}


def machine_busy_seconds() -> float:
    """CPU seconds all CPUs have spent busy since boot (everything but idle and iowait)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(value) for value in fields[:8]]
    idle = ticks[3] + ticks[4]
    return (sum(ticks) - idle) / _TICKS_PER_SECOND
