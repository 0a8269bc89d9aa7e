"""The server as operators run it: a separate process, its CLI, its signals."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from chatapp.client import ChatClient
from chatapp.storage import find_migrations
from chatapp.testing import RawSocket, ServerProcess, free_port, wait_until_ready
from chatapp.testing.wire_socket import WireSocket

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, data_dir: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chatapp", *args, "--data-dir", str(data_dir)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "CHATAPP_PASSWORD_HASH_MEMORY_KIB": "1024"},
    )


def post(url: str, body: dict[str, str]) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_run_py_serves_with_data_in_the_working_folder(tmp_path: Path) -> None:
    """`python run.py` creates ./data on first run and serves; SIGTERM stops it cleanly."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "run.py")],
        cwd=tmp_path,
        env={**os.environ, "CHATAPP_PORT": str(port)},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until_ready(f"http://127.0.0.1:{port}", 20, process)
        assert (tmp_path / "data" / "users.sqlite3").exists()
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, stderr
    events = [json.loads(line)["event"] for line in stderr.splitlines() if line.startswith("{")]
    assert events[0] == "server_started"
    assert events[-1] == "server_stopped"


def test_bad_configuration_is_refused_with_one_line(tmp_path: Path) -> None:
    """A bad CHATAPP_* value stops start-up with exit code 2 and one line naming it."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "run.py")],
        cwd=tmp_path,
        env={**os.environ, "CHATAPP_PORT": "not-a-port"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "CHATAPP_PORT" in lines[0]
    assert not (tmp_path / "data").exists()


def test_config_file_option(tmp_path: Path) -> None:
    """`--config FILE` sets values; a bad value in it is refused naming the key."""
    config = tmp_path / "bad.toml"
    config.write_text('[server]\nheartbeat_interval_ms = "often"\n')
    result = subprocess.run(
        [sys.executable, str(ROOT / "run.py"), "--config", str(config)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "heartbeat_interval_ms" in result.stderr


def test_migrate_is_idempotent(tmp_path: Path) -> None:
    """`migrate` applies the schema once; running it again applies nothing."""
    first = run_cli("migrate", data_dir=tmp_path / "d")
    assert first.returncode == 0, first.stderr
    every = [migration.version for migration in find_migrations()]
    assert f"applied migrations: {every}" in first.stdout
    second = run_cli("migrate", data_dir=tmp_path / "d")
    assert "none (up to date)" in second.stdout


def test_create_user_and_reset_password(tmp_path: Path) -> None:
    """`create-user` makes an account that can log in; `reset-password` changes its password."""
    data = tmp_path / "d"
    created = run_cli(
        "create-user", "Admin", "--password-stdin", data_dir=data, stdin="first-pass\n"
    )
    assert created.returncode == 0, created.stderr
    assert "created user admin" in created.stdout
    taken = run_cli("create-user", "admin", data_dir=data, stdin="other-pass\n")
    assert taken.returncode == 1
    assert "username_taken" in taken.stderr
    weak = run_cli("reset-password", "admin", data_dir=data, stdin="short\n")
    assert "weak_password" in weak.stderr
    with ServerProcess(data) as server:
        status, answer = post(
            server.url + "/api/v1/auth/login", {"username": "admin", "password": "first-pass"}
        )
        assert status == 200
        reset = run_cli("reset-password", "admin", data_dir=data, stdin="second-pass\n")
        assert reset.returncode == 0, reset.stderr
        status, _ = post(
            server.url + "/api/v1/auth/login", {"username": "admin", "password": "first-pass"}
        )
        assert status == 401
        status, _ = post(
            server.url + "/api/v1/auth/login", {"username": "admin", "password": "second-pass"}
        )
        assert status == 200
        request = urllib.request.Request(
            server.url + "/api/v1/me", headers={"Authorization": f"Bearer {answer['token']}"}
        )
        with pytest.raises(urllib.error.HTTPError, match="401"):
            urllib.request.urlopen(request, timeout=10)


async def test_sigterm_closes_websockets_with_1001_and_exits_quickly(tmp_path: Path) -> None:
    """On SIGTERM connected clients get 1001 (going away) and the process exits in seconds."""
    with ServerProcess(tmp_path / "d") as server:
        client = ChatClient(server.url)
        try:
            await client.signup("alice", "password1")
            await client.login("alice", "password1")
            raw = await RawSocket.open(client.ws_url, client.token or "")
            await raw.until("synced")
            started = time.monotonic()
            assert server.process is not None
            server.process.send_signal(signal.SIGTERM)
            assert await raw.closed_with(timeout=10) == 1001
            await raw.close()
            assert await asyncio.to_thread(server.process.wait, 20) == 0
            assert time.monotonic() - started < 10
        finally:
            await client.close()


def test_sigterm_closes_a_socket_that_has_not_said_hello_too(tmp_path: Path) -> None:
    """A socket upgraded but still before its hello is no connection yet; shutdown tells
    it 1001 as well, and does not wait out its hello timeout."""
    with ServerProcess(tmp_path / "d") as server:
        silent = WireSocket.connect(server.url.replace("http://", "ws://") + "/ws")
        try:
            assert server.process is not None
            server.process.send_signal(signal.SIGTERM)
            assert silent.closed_with(timeout=10) == 1001
            silent.close()
            assert server.process.wait(20) == 0
        finally:
            silent.abort()


def test_a_test_server_whose_port_was_taken_meanwhile_starts_on_another(tmp_path: Path) -> None:
    """`ServerProcess` picks a free port; when another process binds it before the server
    does (suites running side by side), the server is started again on a fresh one."""
    server = ServerProcess(tmp_path / "data")
    taken_port = server.port
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", taken_port))
        taken.listen()
        with server:
            assert server.port != taken_port
            with urllib.request.urlopen(server.url + "/readyz", timeout=5) as answer:
                assert answer.status == 200
