"""A CLI command that changes state takes effect in the running server at once."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chatapp.client import ChatApiError, ChatClient
from chatapp.testing import RawSocket, ServerProcess

HASH_COST = {"CHATAPP_PASSWORD_HASH_MEMORY_KIB": "1024"}


async def run_cli(*args: str, data_dir: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "chatapp", *args, "--data-dir", str(data_dir)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **HASH_COST},
    )


async def test_reset_password_closes_the_users_sockets_with_4401_within_a_second(
    tmp_path: Path,
) -> None:
    """`chatapp reset-password` in its own process closes every open socket of the user.

    Both of alice's devices are connected when the command runs; each socket
    is closed with 4401 within a second of the command's end, and the old
    tokens can neither say hello again, nor send, nor read over HTTP. Bob's
    socket, another user's, stays open and keeps receiving.
    """
    data = tmp_path / "d"
    with ServerProcess(data, env=HASH_COST) as server:
        alice_phone, alice_laptop, bob = (ChatClient(server.url) for _ in range(3))
        try:
            await alice_phone.signup("alice", "first-password")
            await alice_phone.login("alice", "first-password")
            await alice_laptop.login("alice", "first-password")
            await bob.signup("bob", "bob-password")
            bob_id = (await bob.login("bob", "bob-password")).user.user_id
            channel = await alice_phone.open_direct(bob_id)
            sockets = [
                await RawSocket.open(client.ws_url, client.token or "")
                for client in (alice_phone, alice_laptop, bob)
            ]
            for socket in sockets:
                await socket.until("synced")

            reset = await run_cli(
                "reset-password", "alice", "--password-stdin", data_dir=data, stdin="second-pw\n"
            )
            finished = time.monotonic()
            assert reset.returncode == 0, reset.stderr
            assert "the running server closed their connections" in reset.stdout
            for socket in sockets[:2]:
                assert await socket.closed_with(timeout=1.0) == 4401
            assert time.monotonic() - finished < 1.0

            # The old tokens are dead on every path.
            again = await RawSocket.connect(alice_phone.ws_url)
            await again.send({"type": "hello", "token": alice_phone.token})
            assert await again.closed_with() == 4401
            await again.close()
            with pytest.raises(ChatApiError) as refused:
                await alice_laptop.send_message(channel.channel_id, "still here?")
            assert refused.value.status == 401
            with pytest.raises(ChatApiError):
                await alice_phone.messages(channel.channel_id)

            # Bob's connection is untouched and still delivers.
            await alice_phone.login("alice", "second-pw")
            await alice_phone.send_message(channel.channel_id, "new password, same me")
            delivered = await sockets[2].expect("message")
            assert delivered["message"]["text"] == "new password, same me"
        finally:
            for socket in sockets:
                await socket.close()
            for client in (alice_phone, alice_laptop, bob):
                await client.close()


async def test_the_control_socket_is_the_owners_only(tmp_path: Path) -> None:
    """The running server's control socket is in the data folder, mode 0600, gone after stop."""
    data = tmp_path / "d"
    with ServerProcess(data) as server:
        mode = (data / "control.sock").stat().st_mode
        assert stat.S_ISSOCK(mode)
        assert stat.S_IMODE(mode) == 0o600
        server.stop()
    assert not (data / "control.sock").exists()


async def test_a_command_after_a_crash_does_not_wait_for_a_dead_server(tmp_path: Path) -> None:
    """A socket file left by a killed server is recognised as nobody listening."""
    data = tmp_path / "d"
    created = await run_cli(
        "create-user", "carol", "--password-stdin", data_dir=data, stdin="carol-password\n"
    )
    assert created.returncode == 0, created.stderr
    with ServerProcess(data, env=HASH_COST) as server:
        carol = ChatClient(server.url)
        try:
            await carol.login("carol", "carol-password")
        finally:
            await carol.close()
        server.kill()
    assert (data / "control.sock").exists()
    started = time.monotonic()
    reset = await run_cli(
        "reset-password", "carol", "--password-stdin", data_dir=data, stdin="carol-second\n"
    )
    assert reset.returncode == 0, reset.stderr
    assert "closed their connections" not in reset.stdout
    assert time.monotonic() - started < 30


# -- roles --------------------------------------------------------------------------------


async def role_and_cluster_answer(client: ChatClient) -> tuple[str, int]:
    """The client's role as /me shows it, and the status of GET /admin/cluster for it."""
    role = (await client.me()).role
    answer = await client.raw_request("GET", "/api/v1/admin/cluster")
    return role, answer.status


async def test_roles_set_on_a_stopped_folder_hold_when_the_server_starts(
    tmp_path: Path,
) -> None:
    """`create-user --admin`, `grant-admin` and `revoke-admin` on a folder no server runs on:
    the server started afterwards shows each user's role and lets only the admins in."""
    data = tmp_path / "d"
    outputs = []
    for args in (("create-user", "root", "--admin"), ("create-user", "bob"),
                 ("create-user", "carol", "--admin")):  # fmt: skip
        created = await run_cli(*args, "--password-stdin", data_dir=data, stdin="a-password\n")
        assert created.returncode == 0, created.stderr
        outputs.append(created.stdout.strip())
    assert outputs == [
        "created admin root (user_id 1)",
        "created user bob (user_id 2)",
        "created admin carol (user_id 3)",
    ]
    granted = await run_cli("grant-admin", "BOB", data_dir=data)
    assert granted.returncode == 0, granted.stderr
    assert "bob (user_id 2) is now an admin" in granted.stdout
    revoked = await run_cli("revoke-admin", "carol", data_dir=data)
    assert revoked.returncode == 0, revoked.stderr
    assert "carol (user_id 3) is now a member" in revoked.stdout
    unknown = await run_cli("grant-admin", "nobody", data_dir=data)
    assert (unknown.returncode, unknown.stdout) == (1, "")
    assert "not_found" in unknown.stderr

    with ServerProcess(data, env=HASH_COST) as server:
        expected = {"root": ("admin", 200), "bob": ("admin", 200), "carol": ("member", 403)}
        for username, answer in expected.items():
            async with ChatClient(server.url) as client:
                login = await client.login(username, "a-password")
                assert login.user.role == answer[0]
                assert await role_and_cluster_answer(client) == answer, username


async def test_role_changes_reach_the_running_server_at_once(tmp_path: Path) -> None:
    """While the server runs: `grant-admin` lets a signed-in member's token into the admin
    API on its very next call, `revoke-admin` shuts it out again just as fast, and an
    admin made by `create-user --admin` meanwhile logs in as an admin."""
    data = tmp_path / "d"
    with ServerProcess(data, env=HASH_COST) as server:
        alice = ChatClient(server.url)
        try:
            await alice.signup("alice", "alice-password")
            await alice.login("alice", "alice-password")
            assert await role_and_cluster_answer(alice) == ("member", 403)

            granted = await run_cli("grant-admin", "alice", data_dir=data)
            assert granted.returncode == 0, granted.stderr
            assert await role_and_cluster_answer(alice) == ("admin", 200)
            [node] = await alice.cluster_nodes()
            assert node.ws_url == alice.ws_url

            revoked = await run_cli("revoke-admin", "alice", data_dir=data)
            assert revoked.returncode == 0, revoked.stderr
            assert await role_and_cluster_answer(alice) == ("member", 403)

            created = await run_cli(
                "create-user", "root", "--admin", "--password-stdin",
                data_dir=data, stdin="root-password\n",
            )  # fmt: skip
            assert created.returncode == 0, created.stderr
            assert "created admin root" in created.stdout
            async with ChatClient(server.url) as root:
                await root.login("root", "root-password")
                assert await role_and_cluster_answer(root) == ("admin", 200)
        finally:
            await alice.close()
