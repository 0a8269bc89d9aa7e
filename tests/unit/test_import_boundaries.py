"""The client, the wire models and every module's contracts load no storage engine or driver."""

from __future__ import annotations

import json
import subprocess
import sys

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
