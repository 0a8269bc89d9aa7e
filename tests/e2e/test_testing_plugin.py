"""Another project's test suite can use the server through the installed pytest plugin."""

from __future__ import annotations

import re
from pathlib import Path

import pytest


def test_plugin_fixture_serves_a_real_server(pytester: pytest.Pytester) -> None:
    """A foreign test file using only `chat_server` signs up, logs in and calls the API."""
    pytester.makepyfile(
        test_foreign="""
        import pytest

        @pytest.mark.asyncio
        async def test_two_users(chat_server):
            alice = await chat_server.user("alice")
            bob = await chat_server.user("bob")
            assert (await bob.user(alice.user_id)).username == "alice"
            assert chat_server.url.startswith("http://127.0.0.1:")
            assert (chat_server.data_dir / "users.sqlite3").exists()

        @pytest.fixture
        def chat_server_settings():
            return {"public_url": "https://chat.example.test"}

        @pytest.mark.asyncio
        async def test_settings_can_be_overridden(chat_server):
            client = await chat_server.user()
            assert client.ws_url == "wss://chat.example.test/ws"
        """
    )
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "error")
    result.assert_outcomes(passed=2)


def test_the_readmes_test_examples_run_in_a_fresh_project(pytester: pytest.Pytester) -> None:
    """Every `async def test_` snippet in the README passes, pasted into a project of its own."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    snippets = [
        block
        for block in re.findall(r"```python\n(.*?)```", readme, flags=re.DOTALL)
        if "async def test_" in block
    ]
    assert len(snippets) >= 2
    for number, snippet in enumerate(snippets):
        pytester.makepyfile(**{f"test_readme_{number}": snippet})
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "error")
    result.assert_outcomes(passed=len(snippets))
