"""Starting the processes of a run: the server (or the echo relay), the generator, helpers.

The server and the generator never share an interpreter. Where the machine
has two CPUs or more, the server is pinned to the first and everything the
driver starts for the client side to the second, so "one core" means one core.
"""

from __future__ import annotations

import functools
import json
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from chatapp.testing.process import wait_until_ready
from chatapp.testing.server import TEST_SETTINGS, free_port

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


@dataclass(frozen=True)
class Placement:
    """Which CPUs the server side and the client side may run on."""

    server_cpus: frozenset[int] | None
    client_cpus: frozenset[int] | None
    every_cpu: frozenset[int] | None = None
    """All the CPUs the run may use: the cluster's nodes, spread, are pinned to these
    explicitly, since a child left unpinned inherits the driver's own CPU."""

    @classmethod
    def for_this_machine(cls) -> Placement:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            return cls(None, None)
        return cls(frozenset({cpus[0]}), frozenset({cpus[1]}), frozenset(cpus))

    def spread(self) -> Placement:
        """The server side on every CPU, the client side where it was."""
        return Placement(self.every_cpu, self.client_cpus, self.every_cpu)

    def describe(self) -> str:
        if self.server_cpus is None or self.client_cpus is None:
            return "not pinned (fewer than two CPUs): server and generator share the CPU"
        return (
            f"server pinned to CPU {_cpus(self.server_cpus)}, "
            f"generator and helpers to CPU {_cpus(self.client_cpus)}"
        )


def _cpus(cpus: frozenset[int]) -> str:
    return ",".join(str(cpu) for cpu in sorted(cpus))


def raise_open_files_limit() -> int:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit; children inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1_048_576)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def pinned_to(cpus: frozenset[int] | None) -> Callable[[], None] | None:
    if cpus is None:
        return None
    chosen = set(cpus)

    def pin() -> None:
        os.sched_setaffinity(0, chosen)

    return pin


@functools.cache
def test_settings(source: Path | None) -> dict[str, Any]:
    """The test settings of the server that will run: this tree's, or another checkout's own."""
    if source is None:
        return dict(TEST_SETTINGS)
    done = subprocess.run(
        [PYTHON, "-c", _PRINT_TEST_SETTINGS],
        env={**os.environ, "PYTHONPATH": str(source)},
        cwd=source,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    settings: dict[str, Any] = json.loads(done.stdout)
    return settings


_PRINT_TEST_SETTINGS = (
    "import json; from chatapp.testing.server import TEST_SETTINGS as s; "
    "print(json.dumps(s, default=str))"
)


def server_environment(
    port: int, data_dir: Path, extra: dict[str, str], source: Path | None = None
) -> dict[str, str]:
    """The test settings (cheap password hashing, loose rate limits) as CHATAPP_* variables."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("CHATAPP_")}
    env.update(
        {f"CHATAPP_{key.upper()}": str(value) for key, value in test_settings(source).items()}
    )
    env.update(
        {
            "CHATAPP_HOST": "127.0.0.1",
            "CHATAPP_PORT": str(port),
            "CHATAPP_DATA_DIR": str(data_dir),
        }
    )
    env.update(extra)
    return env


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float) -> float:
    """Poll `/readyz` every 2 ms (cold start is timed by it); seconds until it answered 200."""
    return wait_until_ready(url, timeout, process, poll_interval=0.002)


class ServerUnderTest:
    """`python -m chatapp serve`, or the echo relay, as a pinned child process on a free port."""

    def __init__(
        self,
        kind: str,
        data_dir: Path,
        log_path: Path,
        placement: Placement,
        *,
        source: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        if kind not in ("chat", "echo"):
            raise ValueError(f"unknown server kind {kind!r}")
        self.kind = kind
        self.data_dir = data_dir
        self.log_path = log_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/ws"
        self._placement = placement
        self._source = source
        self._extra_env = env or {}
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.ready_after = 0.0

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError("not started")
        return self.process.pid

    def target(self) -> dict[str, Any]:
        """Where the generator points, in its job file (`bench.loadgen.backend.Target`)."""
        return {"kind": self.kind, "urls": [self.url], "ws_urls": [self.ws_url], "pids": [self.pid]}

    def start(self, *, ready_timeout: float = 60.0) -> Self:
        """Start the process and wait for `/readyz`; `ready_after` is the seconds it took."""
        source = self._source if self.kind == "chat" else None
        env = server_environment(self.port, self.data_dir, self._extra_env, source)
        if self.kind == "chat":
            command: Sequence[str] = [PYTHON, "-m", "chatapp", "serve"]
            if self._source is not None:
                env["PYTHONPATH"] = str(self._source)
        else:
            command = [PYTHON, "-m", "bench.echo_server", "--port", str(self.port)]
            env["PYTHONPATH"] = str(ROOT)
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.started_at = time.monotonic()
            self.process = subprocess.Popen(
                command,
                env=env,
                cwd=self.data_dir.parent,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=pinned_to(self._placement.server_cpus),
            )
        try:
            wait_ready(self.url, self.process, ready_timeout)
        except (RuntimeError, TimeoutError) as exc:
            self.kill()
            raise RuntimeError(f"{exc}; its log: {self.log_path}") from None
        self.ready_after = time.monotonic() - self.started_at
        return self

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM, then SIGKILL if it has not stopped within `timeout`."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def run_client_side(
    module: str,
    args: Sequence[str],
    placement: Placement,
    *,
    timeout: float,
    log_path: Path,
    source: Path | None = None,
) -> None:
    """Run `python -m <module> <args>` on the client CPUs; raise if it fails or overruns.

    `source` is another checkout to run the module from (an earlier generator).
    """
    root = source or ROOT
    env = {**os.environ, "PYTHONPATH": str(root)}
    with log_path.open("ab") as log:
        try:
            done = subprocess.run(
                [PYTHON, "-m", module, *args],
                env=env,
                cwd=root,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                preexec_fn=pinned_to(placement.client_cpus),
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise RuntimeError(
                f"{module} ran over its {timeout:.0f} s bound; see {log_path}"
            ) from None
    if done.returncode != 0:
        raise RuntimeError(f"{module} exited with {done.returncode}; see {log_path}")


def run_in_parallel(jobs: Sequence[tuple[str, Sequence[str], Path]], *, timeout: float) -> None:
    """Run `python -m <module> <args>` for each job at once, one CPU each, for helpers
    that run while no server is measured; raise if one fails or they overrun."""
    cpus = sorted(os.sched_getaffinity(0) | set(range(os.cpu_count() or 1)))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    running: list[tuple[subprocess.Popen[bytes], Path]] = []
    deadline = time.monotonic() + timeout
    try:
        for index, (module, args, log_path) in enumerate(jobs):
            with log_path.open("ab") as log:
                process = subprocess.Popen(
                    [PYTHON, "-m", module, *args],
                    env=env,
                    cwd=ROOT,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    preexec_fn=pinned_to(frozenset({cpus[index % len(cpus)]})),
                )
            running.append((process, log_path))
        for process, log_path in running:
            code = process.wait(max(1.0, deadline - time.monotonic()))
            if code != 0:
                raise RuntimeError(f"a helper exited with {code}; see {log_path}")
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"helpers ran over their {timeout:.0f} s bound") from None
    finally:
        for process, _ in running:
            if process.poll() is None:
                process.kill()
                process.wait(10)


def pin_self_to_client_side(placement: Placement) -> None:
    """The driver itself does little, but it should not steal the server's CPU."""
    if placement.client_cpus is not None:
        os.sched_setaffinity(0, set(placement.client_cpus))
