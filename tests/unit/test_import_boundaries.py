"""The client, the wire models and every module's contracts load no storage engine or driver."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ENGINES = ("plyvel", "aiosqlite", "argon2", "pywebpush", "py_vapid", "asyncpg", "redis")
CONTRACTS = [
    "chatapp.client",
    "chatapp.protocol",
    "chatapp.events",
    "chatapp.bus",
    "chatapp.accounts",
    "chatapp.accounts.events",
    "chatapp.accounts.store",
    "chatapp.messaging",
    "chatapp.messaging.events",
    "chatapp.messaging.store",
    "chatapp.social",
    "chatapp.social.events",
    "chatapp.social.store",
    "chatapp.presence",
    "chatapp.presence.events",
    "chatapp.presence.tracker",
    "chatapp.gateway",
    "chatapp.gateway.events",
    "chatapp.notify.provider",
    "chatapp.search",
    "chatapp.search.index",
]


def loaded_after_import(*modules: str) -> list[str]:
    """The modules a fresh interpreter has loaded after importing `modules`."""
    script = f"import sys, json, {', '.join(modules)}; print(json.dumps(sorted(sys.modules)))"
    answer = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    loaded: list[str] = json.loads(answer.stdout)
    return loaded


def test_contracts_load_no_engine() -> None:
    """Importing every contract module loads none of plyvel, aiosqlite, argon2, pywebpush, py_vapid.

    All in one interpreter: if together they load no engine, neither does any one of them.
    """
    loaded = loaded_after_import(*CONTRACTS)
    engines = [name for name in loaded if name.split(".")[0] in ENGINES]
    assert engines == []
    assert "aiohttp.web" not in loaded


def test_the_client_loads_nothing_of_the_server() -> None:
    """`chatapp.client` needs only itself and the wire models (`chatapp.protocol`)."""
    loaded = loaded_after_import("chatapp.client")
    ours = {name.split(".")[1] for name in loaded if name.startswith("chatapp.")}
    ours &= {"accounts", "api", "bus", "gateway", "messaging", "notify", "presence", "social"}
    assert ours == set()


def test_the_embedded_server_loads_no_cluster_driver() -> None:
    """The server and its CLI import asyncpg and redis only when cluster mode is configured."""
    loaded = loaded_after_import("chatapp.bootstrap", "chatapp.cli")
    assert [name for name in loaded if name.split(".")[0] in ("asyncpg", "redis")] == []


# What a started embedded server with the default `log` push provider must not have
# loaded: Web Push's libraries, and the code of the commands that `serve` never runs.
NOT_LOADED_AT_START = (
    "pywebpush",
    "py_vapid",
    "cryptography",
    "requests",
    "chatapp.notify.providers.webpush",
    "chatapp.notify.vapid",
    "chatapp.bootstrap.backup",
    "chatapp.bootstrap.restore",
    "chatapp.bootstrap.maintenance",
    "chatapp.bootstrap.transfer",
    "chatapp.bootstrap.archive",
    "chatapp.demo",
)

_START_SERVER = """
import asyncio, json, sys
from aiohttp import web
from chatapp.bootstrap import build_app
from chatapp.config import load_settings

# Not chatapp.testing's settings: that package loads cryptography for its push receiver.
CHEAP_HASHING = {"password_hash_time_cost": 1, "password_hash_memory_kib": 1024}

async def started() -> list[str]:
    settings = load_settings(overrides={**CHEAP_HASHING, "data_dir": sys.argv[1], "port": 0})
    runner = web.AppRunner(build_app(settings))
    await runner.setup()  # every store opened, every module built, as `serve` does
    try:
        return sorted(sys.modules)
    finally:
        await runner.cleanup()

print(json.dumps(asyncio.run(started())))
"""


def test_a_started_embedded_server_loads_no_push_library_it_does_not_use(tmp_path: Path) -> None:
    """With the `log` provider, Web Push's pywebpush, py_vapid and cryptography (about a
    tenth of the import time) stay unloaded, and so does what only the other commands use."""
    answer = subprocess.run(
        [sys.executable, "-c", _START_SERVER, str(tmp_path / "data")],
        capture_output=True,
        text=True,
        check=True,
    )
    # The last line: the server's log lines come before it.
    loaded: list[str] = json.loads(answer.stdout.splitlines()[-1])
    assert "chatapp.bootstrap.app" in loaded  # the server was built
    unwanted = [
        name
        for name in loaded
        if any(name == root or name.startswith(root + ".") for root in NOT_LOADED_AT_START)
    ]
    assert unwanted == []
