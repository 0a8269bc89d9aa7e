"""The pytest plugin (registered under the `pytest11` entry point).

Fixtures:
- `chat_server_settings`: a dict of setting overrides; override it to change them.
- `chat_server`: a `RunningServer` on a free port with a temporary data folder.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from chatapp.testing.server import RunningServer, run_server

try:
    import pytest_asyncio

    HAVE_PYTEST_ASYNCIO = True
except ImportError:  # the async fixtures need pytest-asyncio; without it, offer none
    HAVE_PYTEST_ASYNCIO = False


@pytest.fixture
def chat_server_settings() -> dict[str, Any]:
    """Settings for `chat_server`; a test module overrides this fixture to change them."""
    return {}


if HAVE_PYTEST_ASYNCIO:

    @pytest_asyncio.fixture
    async def chat_server(
        tmp_path: Path, chat_server_settings: dict[str, Any]
    ) -> AsyncIterator[RunningServer]:
        """A real chat server on 127.0.0.1, its data in a temporary folder."""
        async with run_server(tmp_path / "chat-data", **chat_server_settings) as server:
            yield server
