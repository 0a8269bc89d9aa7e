"""The machine a run was measured on: cores, memory, CPU model, Python and library versions."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

LIBRARIES = (
    "aiohttp",
    "plyvel",
    "pydantic",
    "uvloop",
    "msgpack",
    "msgspec",
    "structlog",
    "asyncpg",
    "redis",
)


def describe(root: Path) -> dict[str, Any]:
    """Facts about this machine and checkout, for the report's header."""
    return {
        "cores": os.cpu_count() or 0,
        "usable_cores": len(os.sched_getaffinity(0)),
        "memory_gib": round(_memory_kib() / 1024 / 1024, 1),
        "cpu_model": _cpu_model(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "libraries": {name: _version(name) for name in LIBRARIES},
        "leveldb": _leveldb_version(),
        "commit": _commit(root),
        "work_tree_changed": _work_tree_changed(root),
    }


def _memory_kib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1])
    return 0


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _leveldb_version() -> str:
    try:
        import plyvel

        return f"{plyvel.__leveldb_version__}"
    except (ImportError, AttributeError):
        return "unknown"


def _git(root: Path, *args: str) -> str:
    try:
        done = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip()


def _commit(root: Path) -> str:
    return _git(root, "rev-parse", "--short", "HEAD") or "unknown"


def _work_tree_changed(root: Path) -> bool:
    """True when the server's source differs from the commit (the numbers are then of the tree)."""
    return bool(_git(root, "status", "--porcelain", "--", "chatapp", "migrations"))
