"""The composition root: the one place that builds the running server from its settings.

Nothing is opened at import time. `build_app` returns an aiohttp application
whose stores and modules are opened when it starts and closed when it stops,
so tests build the server exactly as production does, on a temporary folder.
The CLI builds what its commands need through the same pieces.

- `stores`: the engines behind each store protocol (where PostgreSQL plugs in);
- `modules`: the modules, each given its collaborators;
- `push`: the notify module's providers, queues and notifier;
- `wiring`: every bus subscription and background task;
- `app`: the server as a whole; `commands`: what the CLI runs.
"""

from chatapp.bootstrap.app import MAX_BODY_BYTES, build_app, open_server
from chatapp.bootstrap.commands import (
    CommandOutcome,
    migrate,
    run_accounts_command,
    run_operators_command,
)

__all__ = [
    "MAX_BODY_BYTES",
    "CommandOutcome",
    "build_app",
    "migrate",
    "open_server",
    "run_accounts_command",
    "run_operators_command",
]
