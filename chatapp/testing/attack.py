"""Watching a server subprocess while a test attacks it: its memory, /healthz, bystanders.

    with AttackWatch(server.process.pid, server.url) as watch:
        ...the attack...
    report = watch.report()
    assert report.memory.growth_mib < BOUND, report.describe()

Memory comes from /proc/<pid>/status: VmRSS sampled every `memory_interval`, and
VmHWM, the kernel's own high-water mark (reset when the watch starts, where the
kernel allows it), so a peak between two samples is not missed. /healthz is asked
by a thread of its own on one kept-alive connection, so its latency is the
server's, not that of the test's event loop. A `DeliveryProbe` is a bystander
pair: one sends small messages, the other must get each at once.
"""

from __future__ import annotations

import http.client
import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

from chatapp.testing.wire_socket import WireClosed, WireSocket


@dataclass(frozen=True)
class Memory:
    """One reading of /proc/<pid>/status, in KiB."""

    rss_kib: int
    hwm_kib: int

    @property
    def rss_mib(self) -> float:
        return self.rss_kib / 1024


def memory_of(pid: int) -> Memory:
    """VmRSS (resident now) and VmHWM (the most resident since start or the last reset)."""
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return Memory(rss_kib=fields["VmRSS"], hwm_kib=fields["VmHWM"])


def reset_peak(pid: int) -> bool:
    """Reset the process's VmHWM to its VmRSS (Linux 4.0 on); False where not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile: the smallest value at least `fraction` of them reach."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


@dataclass(frozen=True)
class Latencies:
    """Seconds each request took; a failed request counts with the time it took to fail."""

    seconds: tuple[float, ...]
    failures: int = 0

    @property
    def p50(self) -> float:
        return percentile(list(self.seconds), 0.50)

    @property
    def p99(self) -> float:
        return percentile(list(self.seconds), 0.99)

    @property
    def max(self) -> float:
        return max(self.seconds, default=math.nan)

    def describe(self) -> str:
        return (
            f"{len(self.seconds)} samples, p50 {self.p50 * 1000:.0f} ms, "
            f"p99 {self.p99 * 1000:.0f} ms, max {self.max * 1000:.0f} ms, "
            f"{self.failures} failed"
        )


@dataclass(frozen=True)
class MemoryReport:
    """Resident memory before the attack, at its peak, and when the watch stopped."""

    before_kib: int
    peak_kib: int
    after_kib: int

    @property
    def growth_mib(self) -> float:
        """How far the peak rose above the resident memory before the attack."""
        return (self.peak_kib - self.before_kib) / 1024

    @property
    def kept_mib(self) -> float:
        """How much more was resident when the watch stopped than before the attack."""
        return (self.after_kib - self.before_kib) / 1024

    def describe(self) -> str:
        return (
            f"RSS {self.before_kib / 1024:.0f} MiB before, peak {self.peak_kib / 1024:.0f} MiB"
            f" (+{self.growth_mib:.0f}), {self.after_kib / 1024:.0f} MiB at the end"
        )


@dataclass(frozen=True)
class AttackReport:
    memory: MemoryReport
    healthz: Latencies
    seconds: float

    def describe(self) -> str:
        return f"{self.memory.describe()}; /healthz {self.healthz.describe()}; {self.seconds:.1f} s"


class AttackWatch:
    """Samples a process's memory and its /healthz latency from threads until stopped."""

    def __init__(
        self,
        pid: int,
        url: str,
        *,
        healthz_interval: float = 0.025,
        memory_interval: float = 0.02,
        healthz_timeout: float = 10.0,
    ) -> None:
        self.pid = pid
        self._url = urlsplit(url)
        self._healthz_interval = healthz_interval
        self._memory_interval = memory_interval
        self._healthz_timeout = healthz_timeout
        self._stop = threading.Event()
        self._latencies: list[float] = []
        self._failures = 0
        self._peak_rss_kib = 0
        self._before = memory_of(pid)
        self._hwm_reset = False
        self._started = 0.0
        self._ended: float | None = None
        self._threads = [
            threading.Thread(target=self._sample_memory, name="attack-memory", daemon=True),
            threading.Thread(target=self._probe_healthz, name="attack-healthz", daemon=True),
        ]

    def start(self) -> Self:
        self._before = memory_of(self.pid)
        self._hwm_reset = reset_peak(self.pid)
        self._peak_rss_kib = self._before.rss_kib
        self._started = time.monotonic()
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> AttackReport:
        """Stop sampling (idempotent) and say what was seen."""
        if self._ended is None:
            self._stop.set()
            for thread in self._threads:
                thread.join(self._healthz_timeout + 5)
            self._ended = time.monotonic()
            self._after = memory_of(self.pid)
        return self.report()

    def report(self) -> AttackReport:
        """What was seen so far (everything, once stopped)."""
        now = memory_of(self.pid) if self._ended is None else self._after
        # The kernel's high-water mark covers the moments between samples, but
        # counts from start-up unless it could be reset when the watch started.
        peak = max(self._peak_rss_kib, now.rss_kib, now.hwm_kib if self._hwm_reset else 0)
        ended = self._ended if self._ended is not None else time.monotonic()
        return AttackReport(
            memory=MemoryReport(self._before.rss_kib, peak, now.rss_kib),
            healthz=Latencies(tuple(self._latencies), self._failures),
            seconds=ended - self._started,
        )

    def _sample_memory(self) -> None:
        while not self._stop.is_set():
            try:
                rss = memory_of(self.pid).rss_kib
            except (OSError, KeyError):  # the process is gone: nothing more to see
                return
            self._peak_rss_kib = max(self._peak_rss_kib, rss)
            self._stop.wait(self._memory_interval)

    def _probe_healthz(self) -> None:
        connection: http.client.HTTPConnection | None = None
        while not self._stop.is_set():
            if connection is None:
                connection = http.client.HTTPConnection(
                    self._url.hostname or "127.0.0.1",
                    self._url.port or 80,
                    timeout=self._healthz_timeout,
                )
            started = time.monotonic()
            try:
                connection.request("GET", "/healthz")
                answer = connection.getresponse()
                answer.read()
                ok = answer.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
            self._latencies.append(time.monotonic() - started)
            if not ok:
                self._failures += 1
                connection.close()
                connection = None
            self._stop.wait(self._healthz_interval)
        if connection is not None:
            connection.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


@dataclass
class DeliveryProbe:
    """Two bystanders on their own channel: `sender` sends a short message every
    `interval`, and the time until `reader` gets it is kept, from a thread.

    Both heartbeat as they go, so an idle timeout never ends them. `failure` holds
    what stopped the probe early; `acked` the client_msg_ids acknowledged.
    """

    ws_url: str
    sender_token: str
    reader_token: str
    channel_id: int
    interval: float = 0.1
    timeout: float = 10.0
    latencies: list[float] = field(default_factory=list)
    acked: list[str] = field(default_factory=list)
    failure: BaseException | None = None

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="delivery-probe", daemon=True)

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> Latencies:
        self._stop.set()
        self._thread.join(self.timeout + 5)
        return Latencies(tuple(self.latencies))

    def describe(self) -> str:
        failure = f", stopped by {self.failure!r}" if self.failure else ""
        return f"bystanders: {Latencies(tuple(self.latencies)).describe()}{failure}"

    def _run(self) -> None:
        try:
            with (
                WireSocket.open(self.ws_url, self.sender_token) as sender,
                WireSocket.open(self.ws_url, self.reader_token) as reader,
            ):
                while not self._stop.is_set():
                    self._exchange(sender, reader, f"probe-{time.monotonic_ns()}")
                    self._stop.wait(self.interval)
        except BaseException as exc:
            self.failure = exc

    def _exchange(self, sender: WireSocket, reader: WireSocket, cmid: str) -> None:
        started = time.monotonic()
        sender.send_json(
            {"type": "send", "client_msg_id": cmid, "channel_id": self.channel_id, "text": cmid}
        )
        reader.send_json({"type": "heartbeat"})
        while True:
            frame = reader.receive_json(self.timeout)
            if frame.get("type") == "message" and frame["message"]["client_msg_id"] == cmid:
                break
        self.latencies.append(time.monotonic() - started)
        while True:
            frame = sender.receive_json(self.timeout)
            if frame.get("type") == "ack" and frame["client_msg_id"] == cmid:
                self.acked.append(cmid)
                return
            if frame.get("type") == "error":
                raise AssertionError(f"the bystander's send was refused: {frame}")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class ReadingMember:
    """A member whose client reads at once, from a thread: it keeps the client_msg_id of
    every `message` frame, in order, until it has `expected` of them.

    `close_code` is set if the server closed it first, `failure` if something else
    ended it (a timeout: the frames stopped coming).
    """

    def __init__(self, ws_url: str, token: str, expected: int, *, timeout: float = 15.0):
        self.wire = WireSocket.open(ws_url, token)
        self.expected = expected
        self.timeout = timeout
        self.received: list[str] = []
        self.close_code: int | None = None
        self.failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="reading-member", daemon=True)

    def start(self) -> Self:
        self._thread.start()
        return self

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(self.timeout + 5 if timeout is None else timeout)

    def close(self) -> None:
        self.wire.close()

    def _run(self) -> None:
        try:
            while len(self.received) < self.expected:
                frame = self.wire.receive_json(self.timeout)
                if frame.get("type") == "message":
                    self.received.append(frame["message"]["client_msg_id"])
        except WireClosed as closed:
            self.close_code = closed.code
        except BaseException as exc:
            self.failure = exc
