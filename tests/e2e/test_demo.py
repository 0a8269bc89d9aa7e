"""`run.py --demo`: demo data seeded by the real server process, printed, and seeded only once."""

from __future__ import annotations

import asyncio
import shlex
import subprocess
from pathlib import Path

from chatapp.client import ChatClient
from chatapp.demo import DEMO_GROUP, DEMO_PASSWORD, DEMO_USERS
from chatapp.testing import ServerProcess


async def test_demo_seeds_once_and_prints_how_to_log_in(tmp_path: Path) -> None:
    """Two starts with --demo leave one set of users, chats and messages; each prints the logins."""
    data = tmp_path / "demo-data"
    for start in (1, 2):
        with ServerProcess(data, args=("--demo",)) as server:
            async with ChatClient(server.url) as alice:
                await alice.login("alice", DEMO_PASSWORD)
                channels = await alice.channels()
                assert sorted(channel.kind for channel in channels) == ["direct", "direct", "group"]
                [group] = [channel for channel in channels if channel.kind == "group"]
                assert group.name == DEMO_GROUP
                assert len(group.members) == len(DEMO_USERS)
                history = await alice.messages(group.channel_id)
                assert len(history.messages) == 5
            assert server.stop() == 0
        log = server.log()
        assert log.count("Demo data is ready") == start
        for username in DEMO_USERS:
            assert f"  {username:<8} password: {DEMO_PASSWORD}" in log


async def test_demo_prints_a_command_that_makes_alice_an_admin(tmp_path: Path) -> None:
    """The demo's start-up lines end with the command that makes alice a server admin; run
    as printed while the server runs, it does, at once."""
    data = tmp_path / "demo-data"
    with ServerProcess(data, args=("--demo",)) as server:
        [line] = [line for line in server.log().splitlines() if "an admin" in line]
        command = line.partition(": ")[2]
        assert "grant-admin alice --data-dir" in command
        ran = await asyncio.to_thread(
            subprocess.run, shlex.split(command), capture_output=True, text=True, timeout=60
        )
        assert ran.returncode == 0, ran.stderr
        async with ChatClient(server.url) as alice:
            await alice.login("alice", DEMO_PASSWORD)
            assert (await alice.me()).role == "admin"
