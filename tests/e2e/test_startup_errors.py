"""Every failure to start is one line on stderr naming its cause, and exit code 2."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from chatapp.testing import ServerProcess, free_port
from chatapp.testing.server import TEST_SETTINGS


def serve(data_dir: Path, *, port: int | None = None, **settings: str) -> tuple[int, list[str]]:
    """Run `chatapp serve` at the default log level; its exit code and stderr lines."""
    env = {
        **os.environ,
        **{f"CHATAPP_{k.upper()}": str(v) for k, v in TEST_SETTINGS.items() if k != "log_level"},
        "CHATAPP_HOST": "127.0.0.1",
        "CHATAPP_PORT": str(port or free_port()),
        "CHATAPP_DATA_DIR": str(data_dir),
        **{f"CHATAPP_{k.upper()}": v for k, v in settings.items()},
    }
    done = subprocess.run(
        [sys.executable, "-m", "chatapp", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, done.stderr.splitlines()


def cli(command: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chatapp", command, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_second_server_on_the_same_folder_is_refused_in_one_line(tmp_path: Path) -> None:
    """While a server runs, another on its folder, `check` and `repair` each refuse with one line
    naming the folder as in use (exit 2), and the first server goes on serving."""
    data = tmp_path / "data"
    with ServerProcess(data) as first:
        code, lines = serve(data)
        assert code == 2
        assert len(lines) == 1, lines
        assert lines[0].startswith("chatapp: cannot start: the data folder")
        assert "in use by another chatapp process" in lines[0]
        for command in ("check", "repair"):
            done = cli(command, data)
            assert done.returncode == 2, done
            assert done.stderr.count("\n") == 1, done.stderr
            assert "in use" in done.stderr
        first.wait_ready(5)


def test_a_port_in_use_is_refused_before_anything_is_opened(tmp_path: Path) -> None:
    """A port another process listens on: one line naming the port, exit 2, and the data folder
    is never touched (no `server_started` / `server_stopped` and no traceback)."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, lines = serve(tmp_path / "data", port=port)
    assert code == 2
    assert lines == [
        f"chatapp: cannot start: port {port} on 127.0.0.1 is in use by another process"
    ]
    assert not (tmp_path / "data").exists()


def test_a_corrupt_vapid_key_is_refused_in_one_line(tmp_path: Path) -> None:
    """With Web Push enabled, an unreadable `vapid_private.pem` stops the start with one line
    naming the file (exit 2); the key is left as it was, never replaced."""
    data = tmp_path / "data"
    data.mkdir()
    key = data / "vapid_private.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
    code, lines = serve(data, push_providers="webpush", push_vapid_subject="mailto:ops@example.org")
    assert code == 2
    assert len(lines) == 1, lines
    assert lines[0].startswith("chatapp: cannot start: ")
    assert str(key) in lines[0]
    assert "VAPID" in lines[0]
    assert key.read_text().startswith("-----BEGIN PRIVATE KEY-----\nbm90")
