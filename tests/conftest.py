"""Markers by level, so a fast subset can be picked: `-m unit`, `-m "not slow"`.

Each test is marked with the folder it lives in (unit, integration, e2e).
End-to-end tests that start server processes, drive a browser or fuzz for
long are also marked slow.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

LEVELS = ("unit", "integration", "e2e")
SLOW_FILES = {
    "test_cli_reaches_server.py",
    "test_cluster_faults.py",
    "test_cluster_push.py",
    "test_crash_safety.py",
    "test_demo.py",
    "test_durability.py",
    "test_hostile_websocket.py",
    "test_integrity.py",
    "test_process.py",
    "test_schemathesis.py",
    "test_startup_errors.py",
    "test_storage_faults.py",
    "test_testing_plugin.py",
    "test_web_client.py",
    "test_web_client_cluster.py",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(str(item.path))
        level = path.parent.name
        if level in LEVELS:
            item.add_marker(getattr(pytest.mark, level))
        if path.name in SLOW_FILES:
            item.add_marker(pytest.mark.slow)
