"""The server as a separate process: for start-up, signal and crash tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Self

from chatapp.testing.server import TEST_SETTINGS, free_port

# The server's command, run by a parent that first sets the open-file limit it
# was given (soft, hard). A preexec_fn would do the same between fork and
# exec, which is not safe in a test process that runs threads.
_LIMITED = (
    "import resource, runpy, sys;"
    "soft, hard = int(sys.argv.pop(1)), int(sys.argv.pop(1));"
    "resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard));"
    "runpy.run_module('chatapp', run_name='__main__', alter_sys=True)"
)


def wait_until_ready(
    url: str,
    timeout: float,
    process: subprocess.Popen[bytes] | subprocess.Popen[str] | None = None,
    *,
    poll_interval: float = 0.01,
) -> float:
    """Poll `/readyz` until it answers 200; return the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=1) as answer:
                if answer.status == 200:
                    return time.monotonic() - started
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(poll_interval)
    raise TimeoutError(f"server not ready after {timeout}s")


PORT_ATTEMPTS = 3
"""Starts tried on fresh ports when the port chosen was taken meanwhile."""


class ServerProcess:
    """`python -m chatapp serve` on a free port and a given data folder."""

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        env: dict[str, str] | None = None,
        args: tuple[str, ...] = (),
        open_files: tuple[int, int] | None = None,
    ) -> None:
        """`open_files` is the (soft, hard) RLIMIT_NOFILE to start with; this process's if None."""
        self.data_dir = data_dir
        self._port_given = port is not None
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._extra_env = env or {}
        self._args = args
        self._open_files = open_files
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"{data_dir.name}-server.log"

    def start(self, *, wait_ready: float = 20.0) -> Self:
        env = {
            **os.environ,
            **{f"CHATAPP_{key.upper()}": str(value) for key, value in TEST_SETTINGS.items()},
            "CHATAPP_HOST": "127.0.0.1",
            "CHATAPP_PORT": str(self.port),
            "CHATAPP_DATA_DIR": str(self.data_dir),
            **self._extra_env,
        }
        command = [sys.executable, "-m", "chatapp"]
        if self._open_files is not None:
            command = [sys.executable, "-c", _LIMITED, *map(str, self._open_files)]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*command, "serve", *self._args],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if wait_ready:
            self.wait_ready(wait_ready)
        return self

    def wait_ready(self, timeout: float) -> None:
        for attempt in range(PORT_ATTEMPTS):
            try:
                wait_until_ready(self.url, timeout, self.process)
                return
            except (RuntimeError, TimeoutError) as exc:
                if not self._lost_its_port() or attempt == PORT_ATTEMPTS - 1:
                    raise type(exc)(f"{exc}: {self.log()}") from None
            # A free port found is only free until someone else binds it: on a machine
            # running other suites, another process may take it first. Try another.
            self.port = free_port()
            self.url = f"http://127.0.0.1:{self.port}"
            self.start(wait_ready=0)

    def _lost_its_port(self) -> bool:
        return (
            not self._port_given
            and self.process is not None
            and self.process.poll() == 2
            and f"port {self.port} " in self.log()
            and "is in use by another process" in self.log()
        )

    def kill(self) -> None:
        """SIGKILL: the crash that gives the process no chance to tidy up."""
        self._signal(signal.SIGKILL)

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        self._signal(signal.SIGTERM, timeout)
        assert self.process is not None
        return self.process.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def _signal(self, signum: int, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signum)
        self.process.wait(timeout)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill()
