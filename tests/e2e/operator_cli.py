"""`python -m chatapp ...` against the server a test runs: the embedded one's data folder, or
the cluster's database and Redis (for the operators' tests, on either kind of server)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from typing import Any

from chatapp.testing.cluster_server import ClusterServer

# The embedded test server's cheap hashing, for the users a command creates.
HASH_COST = {"CHATAPP_PASSWORD_HASH_MEMORY_KIB": "1024", "CHATAPP_PASSWORD_HASH_TIME_COST": "1"}


async def run_cli(server: Any, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """Run a command where `server` keeps its data, while it runs."""
    if isinstance(server, ClusterServer):
        return await server.cluster.run_cli(*args, stdin=stdin)
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "chatapp", *args, "--data-dir", str(server.data_dir)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **HASH_COST},
    )


async def cli_ok(server: Any, *args: str, stdin: str = "") -> str:
    """The command's output; fails the test when it does not exit 0."""
    done = await run_cli(server, *args, stdin=stdin)
    assert done.returncode == 0, f"chatapp {' '.join(args)}: {done.stderr}"
    return done.stdout
