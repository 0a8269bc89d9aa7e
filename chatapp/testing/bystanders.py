"""A hostile user and two bystanders on a server subprocess, and the bystanders' checks.

Tests that attack the server as `mallory` end with
`assert_bystanders_unaffected(cast)`: the process lives and logged no error,
/healthz answers, and alice and bob still exchange messages at once.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from chatapp.client import ChatClient
from chatapp.testing.hostile_strategies import Targets
from chatapp.testing.process import ServerProcess
from chatapp.testing.server import DEFAULT_PASSWORD
from chatapp.testing.wire_socket import WireClosed, WireSocket


@dataclass(frozen=True)
class Account:
    username: str
    user_id: int
    token: str


@dataclass(frozen=True)
class Cast:
    """The server, mallory (hostile), alice and bob (bystanders), and their channels."""

    server: ServerProcess
    ws_url: str
    mallory: Account
    alice: Account
    bob: Account
    own_channel: int
    """mallory and alice's direct channel."""
    foreign_channel: int
    """alice and bob's direct channel: mallory is not a member."""

    @property
    def targets(self) -> Targets:
        return Targets(self.mallory.token, self.own_channel, self.foreign_channel)


async def _sign_up_cast(url: str) -> tuple[dict[str, Account], int, int]:
    accounts: dict[str, Account] = {}
    for name in ("mallory", "alice", "bob"):
        async with ChatClient(url) as client:
            await client.signup(name, DEFAULT_PASSWORD)
            await client.login(name, DEFAULT_PASSWORD)
            accounts[name] = Account(name, client.user_id, client.token or "")
    async with ChatClient(url, token=accounts["alice"].token) as alice:
        own = await alice.open_direct(accounts["mallory"].user_id)
        foreign = await alice.open_direct(accounts["bob"].user_id)
    return accounts, own.channel_id, foreign.channel_id


def start_cast(data_dir: Path, env: dict[str, str] | None = None) -> Iterator[Cast]:
    with ServerProcess(data_dir, env=env) as server:
        accounts, own, foreign = asyncio.run(_sign_up_cast(server.url))
        ws_url = server.url.replace("http://", "ws://") + "/ws"
        yield Cast(server, ws_url, accounts["mallory"], accounts["alice"], accounts["bob"], own,
                   foreign)  # fmt: skip


def resident_kib(pid: int) -> int:
    """The process's resident memory (VmRSS), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def logged_errors(server: ServerProcess) -> list[str]:
    """Lines of the server's log at level error or above, or not JSON (a raw traceback)."""
    found = []
    for line in server.log().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            found.append(line)
            continue
        if not isinstance(record, dict) or record.get("level") in ("error", "critical"):
            found.append(line[:2000])
    return found


def heartbeat_round_trip(wire: WireSocket, ref: str, timeout: float = 10.0) -> float:
    """Seconds from a heartbeat to its heartbeat_ack (other frames are skipped)."""
    started = time.monotonic()
    wire.send_json({"type": "heartbeat", "ref": ref})
    while True:
        frame = wire.receive_json(timeout)
        if frame.get("type") == "heartbeat_ack" and frame.get("ref") == ref:
            return time.monotonic() - started


def frames_until_closed(wire: WireSocket, limit: int) -> tuple[list[dict[str, object]], int | None]:
    """Frames read until the server closes (and its code), or `limit` frames without a close."""
    frames: list[dict[str, object]] = []
    while len(frames) < limit:
        try:
            frames.append(wire.receive_json(5))
        except WireClosed as closed:
            return frames, closed.code
    return frames, None


def assert_bystanders_unaffected(cast: Cast) -> None:
    """The process lives and logged no error; /healthz answers; alice and bob still chat."""
    assert cast.server.process is not None
    assert cast.server.process.poll() is None, "the server process died"
    with urllib.request.urlopen(cast.server.url + "/healthz", timeout=5) as answer:
        assert (answer.status, json.loads(answer.read())) == (200, {"status": "ok"})
    with (
        WireSocket.open(cast.ws_url, cast.alice.token) as alice,
        WireSocket.open(cast.ws_url, cast.bob.token) as bob,
    ):
        assert heartbeat_round_trip(alice, "still-there") < 2.0
        cmid = f"bystander-{time.monotonic_ns()}"
        alice.send_json(
            {"type": "send", "client_msg_id": cmid, "channel_id": cast.foreign_channel,
             "text": "are you there?"}
        )  # fmt: skip
        acks = [f for f in alice.until("ack", 10) if f.get("type") == "ack"]
        assert acks[-1]["client_msg_id"] == cmid
        delivered = bob.until("message", 10)[-1]
        assert delivered["message"]["client_msg_id"] == cmid
    errors = logged_errors(cast.server)
    assert not errors, "the server logged errors:\n" + "\n".join(errors[:5])


class Stopwatch:
    """Heartbeat round trips of a bystander, measured in a thread while a flood runs."""

    def __init__(self, wire: WireSocket) -> None:
        self.wire = wire
        self.round_trips: list[float] = []
        self.failure: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Stopwatch:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                ref = f"beat-{len(self.round_trips)}"
                self.round_trips.append(heartbeat_round_trip(self.wire, ref))
                self._stop.wait(0.02)
        except BaseException as exc:
            self.failure = exc
