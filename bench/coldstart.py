"""F, cold start: process start to `/readyz` on an empty and on a large data folder.

The large folder gets its accounts and channels through the HTTP API and
its messages through the server's own store class (`bench.dataset`). The
result is kept in `results/cache/`, keyed by the message count and the
source of the store and the schema, so later runs copy it instead of
building it again; every start is made on a fresh copy.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.processes import PYTHON, ROOT, run_in_parallel
from bench.session import Bench, log_findings

SEED_USERS = 100
# Stores filled at once, one per CPU, then merged into the folder's.
PARTS = 2
BUILD_TIMEOUT = 600.0


def measure_cold_start(
    bench: Bench, messages: int, repeats: int, cache_dir: Path
) -> dict[str, Any]:
    _compile(bench.source or ROOT)
    empty = [_start_once(bench, f"F-empty-{n}", None) for n in range(repeats)]
    seeded_dir, build = _large_folder(bench, messages, cache_dir)
    seeded = [_start_once(bench, f"F-seeded-{n}", seeded_dir) for n in range(repeats)]
    return {
        "messages": messages,
        "build": build,
        "empty": _summary(empty),
        "seeded": _summary(seeded),
    }


def _compile(source: Path) -> None:
    """Write the bytecode of the `chatapp` the server runs, as installing it would.

    With PYTHONDONTWRITEBYTECODE set and no bytecode yet, every start would
    compile the whole package (seconds), and F would time the compiler.
    """
    subprocess.run(
        [PYTHON, "-m", "compileall", "-q", str(source / "chatapp")],
        check=True,
        stdout=subprocess.DEVNULL,
        env={key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"},
    )


def _start_once(bench: Bench, name: str, template: Path | None) -> dict[str, Any]:
    folder = bench.folder(name)
    data_dir = folder / "data"
    if template is not None:
        shutil.copytree(template, data_dir)
    server = bench.server("chat", folder, data_dir).start()
    ready = server.ready_after
    exit_code = server.stop()
    return {
        "ready_seconds": round(ready, 4),
        "exit_code": exit_code,
        **log_findings(server.log_path),
    }


def _summary(starts: list[dict[str, Any]]) -> dict[str, Any]:
    times = [start["ready_seconds"] for start in starts]
    return {
        "starts": starts,
        "median_seconds": round(statistics.median(times), 4),
        "max_seconds": round(max(times), 4),
    }


def _large_folder(bench: Bench, messages: int, cache_dir: Path) -> tuple[Path, dict[str, Any]]:
    key = _cache_key(messages)
    cached = cache_dir / f"cold-{messages}-{key}"
    meta_path = cached / "build.json"
    if meta_path.exists():
        return cached / "data", {**json.loads(meta_path.read_text()), "cached": True}
    if cached.exists():
        shutil.rmtree(cached)
    folder = bench.folder("F-build")
    started = time.monotonic()
    server = bench.server("chat", folder).start()
    try:
        seed = bench.generate(folder, server, "seed", {"users": SEED_USERS}, timeout=BUILD_TIMEOUT)
    finally:
        server.stop()
    accounts_seconds = time.monotonic() - started
    fill_seconds, merge_seconds = _fill(folder, seed["channels"], messages)
    messages_dir = folder / "data" / "messages"
    build = {
        "users": seed["users"],
        "channels": len(seed["channels"]),
        "messages": messages,
        "accounts_seconds": round(accounts_seconds, 2),
        "parts": PARTS,
        "fill_seconds": round(fill_seconds, 2),
        "merge_seconds": round(merge_seconds, 2),
        "messages_per_s": round(messages / (fill_seconds + merge_seconds), 1),
        "bytes_on_disk": sum(path.stat().st_size for path in messages_dir.iterdir()),
        "total_seconds": round(time.monotonic() - started, 2),
    }
    cached.mkdir(parents=True)
    shutil.copytree(folder / "data", cached / "data")
    meta_path.write_text(json.dumps(build, indent=2))
    return cached / "data", {**build, "cached": False}


def _fill(folder: Path, channels: list[dict[str, Any]], messages: int) -> tuple[float, float]:
    """Messages into PARTS stores at once (disjoint channels, so disjoint inboxes), then merged."""
    started = time.monotonic()
    jobs = []
    parts = []
    for index in range(PARTS):
        share = channels[index::PARTS]
        count = messages // PARTS + (1 if index < messages % PARTS else 0)
        part = folder / f"part-{index}"
        channels_path = folder / f"channels-{index}.json"
        channels_path.write_text(json.dumps(share))
        args = [
            "fill",
            str(part),
            str(channels_path),
            str(count),
            str(folder / f"fill-{index}.json"),
        ]
        jobs.append(("bench.dataset", args, folder / f"fill-{index}.log"))
        parts.append(part)
    run_in_parallel(jobs, timeout=BUILD_TIMEOUT)
    filled = time.monotonic()
    run_in_parallel(
        [
            (
                "bench.dataset",
                ["merge", str(folder / "data" / "messages"), *map(str, parts)],
                folder / "merge.log",
            )
        ],
        timeout=BUILD_TIMEOUT,
    )
    for part in parts:
        shutil.rmtree(part)
    return filled - started, time.monotonic() - filled


def _cache_key(messages: int) -> str:
    """Changes whenever the code that writes or reads the folder's layout changes."""
    digest = hashlib.sha256(str(messages).encode())
    sources = [
        *sorted((ROOT / "chatapp" / "messaging").glob("*.py")),
        *sorted((ROOT / "migrations").glob("*")),
        ROOT / "bench" / "dataset.py",
        ROOT / "bench" / "loadgen" / "scenarios" / "seed.py",
    ]
    for path in sources:
        if path.is_file():
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]
