"""The open-file limit, through the real server in a subprocess started with a low RLIMIT_NOFILE.

At start-up `max_connections` is fitted to the limit (raised to the hard
limit, then lowered, or refused); and when idle sockets take every
descriptor while another user sends, the stores fail (EMFILE) and come back
by themselves once the sockets are gone, with nothing acknowledged lost.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from chatapp.bootstrap.open_files import reserved_files
from chatapp.client import ChatApiError, ChatClient
from chatapp.config import load_settings
from chatapp.testing import RawSocket, ServerProcess, wait_until_ready
from chatapp.testing.server import DEFAULT_PASSWORD, TEST_SETTINGS

pytestmark = pytest.mark.slow

RESERVE = reserved_files(load_settings(environ={}, overrides=TEST_SETTINGS))
LIMIT = 512
"""Room for a hundred connections beside the reserve: a flood of a few hundred sockets fills it."""

RECOVERY_DEADLINE = 30.0
"""Seconds /readyz may take to answer 200 once the sockets are gone (measured: under 1.5 s)."""

# Long texts fill LevelDB's 4 MiB memtable every ~70 sends, so that it needs a new file
# while the descriptors are gone.
TEXT = "y" * 60_000


def events(server: ServerProcess) -> list[dict[str, Any]]:
    """The server's log lines (JSON, one event each)."""
    found = []
    for line in server.log().splitlines():
        if line.startswith("{"):
            found.append(json.loads(line))
    return found


def open_descriptors(server: ServerProcess) -> int:
    assert server.process is not None
    return len(os.listdir(f"/proc/{server.process.pid}/fd"))


def skip_unless_this_process_can_open(count: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < LIMIT:
        pytest.skip(f"the hard open-file limit ({hard}) is below the server's ({LIMIT})")
    if soft != resource.RLIM_INFINITY and soft < count:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(count, hard), hard))


async def signed_in(url: str, name: str) -> ChatClient:
    client = ChatClient(url)
    await client.signup(name, DEFAULT_PASSWORD)
    await client.login(name, DEFAULT_PASSWORD)
    return client


async def test_max_connections_is_fitted_to_the_open_file_limit(tmp_path: Path) -> None:
    """With a soft limit of 256 and a hard one of 512, the server raises its soft limit to 512,
    then lowers max_connections from 16,000 to what 512 holds beside the reserve, in one
    warning naming both numbers; one WebSocket more than that is closed 4429."""
    skip_unless_this_process_can_open(4 * LIMIT)
    fits = LIMIT - RESERVE
    server = ServerProcess(
        tmp_path / "data",
        open_files=(256, LIMIT),
        env={"CHATAPP_MAX_CONNECTIONS": "16000", "CHATAPP_LOG_LEVEL": "info"},
    ).start()
    try:
        logged = events(server)
        raised = [e for e in logged if e["event"] == "open_file_limit_raised"]
        assert [(e["was"], e["soft_limit"]) for e in raised] == [(256, LIMIT)]
        lowered = [e for e in logged if e["event"] == "max_connections_lowered"]
        assert len(lowered) == 1, logged
        assert lowered[0]["level"] == "warning"
        assert (lowered[0]["max_connections"], lowered[0]["lowered_to"]) == (16_000, fits)
        assert lowered[0]["open_file_limit"] == LIMIT
        assert lowered[0]["reserved_files"] == RESERVE

        # No connector limit: each WebSocket holds one of the client's connections.
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            ws_url = server.url.replace("http", "ws", 1) + "/ws"
            held = [await session.ws_connect(ws_url) for _ in range(fits)]
            one_more = await session.ws_connect(ws_url)
            closing = await one_more.receive(timeout=10)
            assert (closing.type, closing.data) == (aiohttp.WSMsgType.CLOSE, 4429)
            for connection in held:
                await connection.close()
    finally:
        server.stop()


async def test_a_limit_below_the_reserve_refuses_the_start_in_one_line(tmp_path: Path) -> None:
    """A hard limit of 256, below the reserve, leaves room for no connection: the server
    refuses to start with one line naming the limit and how to raise it, and exit code 2."""
    server = ServerProcess(tmp_path / "data", open_files=(256, 256)).start(wait_ready=0)
    assert server.process is not None
    assert server.process.wait(30) == 2
    lines = server.log().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("chatapp: cannot start: the open-file limit is 256")
    assert f"the {RESERVE} files the server keeps" in lines[0]
    assert "ulimit -n" in lines[0]


@dataclass
class Traffic:
    """What alice's sends and bob's reads met while the sockets came and went."""

    acked: list[str] = field(default_factory=list)
    refusals: list[tuple[str, int, str]] = field(default_factory=list)
    dropped: int = 0
    reads: int = 0
    _more: asyncio.Event = field(default_factory=asyncio.Event)

    def acknowledge(self, client_msg_id: str) -> None:
        self.acked.append(client_msg_id)
        self._more.set()

    async def until_acked(self, count: int) -> None:
        while len(self.acked) < count:
            self._more.clear()
            await self._more.wait()

    def note(self, what: str, error: BaseException) -> None:
        if isinstance(error, ChatApiError):
            self.refusals.append((what, error.status, error.code))
        else:  # the connection itself was refused or reset: no answer at all
            self.dropped += 1


async def keep_sending(
    alice: ChatClient, channel_id: int, traffic: Traffic, stop: asyncio.Event
) -> None:
    """Send one message after another, each retried with its client_msg_id until acknowledged."""
    number = 0
    while not stop.is_set():
        client_msg_id = f"m{number}"
        try:
            await asyncio.wait_for(alice.send_message(channel_id, TEXT, client_msg_id), 10)
        except (ChatApiError, aiohttp.ClientError, OSError, TimeoutError) as error:
            traffic.note("send", error)
            await asyncio.sleep(0.02)
            continue
        traffic.acknowledge(client_msg_id)
        number += 1


async def keep_reading(
    bob: ChatClient, channel_id: int, traffic: Traffic, stop: asyncio.Event
) -> None:
    """Read the newest history page and the inbox from its start, over and over."""
    while not stop.is_set():
        try:
            await asyncio.wait_for(bob.messages(channel_id, limit=20), 10)
            await asyncio.wait_for(bob.sync(since=0, limit=20), 10)
        except (ChatApiError, aiohttp.ClientError, OSError, TimeoutError) as error:
            traffic.note("read", error)
        else:
            traffic.reads += 1
        await asyncio.sleep(0.02)


@dataclass
class Flood:
    """Idle TCP connections to the server, never sending a byte."""

    port: int
    sockets: list[socket.socket] = field(default_factory=list)

    def open(self, count: int) -> None:
        for _ in range(count):
            connection = socket.socket()
            connection.setblocking(False)
            connection.connect_ex(("127.0.0.1", self.port))
            self.sockets.append(connection)

    def close(self) -> None:
        for connection in self.sockets:
            connection.close()
        self.sockets.clear()


def met_emfile(server: ServerProcess) -> bool:
    return "Too many open files" in server.log()


async def test_running_out_of_files_stops_nothing_for_good(tmp_path: Path) -> None:
    """Idle sockets take every descriptor while alice sends and bob reads: LevelDB fails for
    want of a file (EMFILE), sends and reads are refused with 503 (never 500) or go
    unanswered, and once the sockets close the server is ready again within seconds by
    itself. Then sends, history, sync, hello and a new signup work, and every message
    acknowledged before, during and after is in history once, with contiguous ids and
    inbox seqs."""
    skip_unless_this_process_can_open(4 * LIMIT)
    server = ServerProcess(tmp_path / "data", open_files=(LIMIT, LIMIT)).start()
    alice, bob = await signed_in(server.url, "alice"), await signed_in(server.url, "bob")
    flood = Flood(server.port)
    stop = asyncio.Event()
    traffic = Traffic()
    try:
        channel_id = (await alice.open_direct(bob.user_id)).channel_id
        tasks = [
            asyncio.create_task(keep_sending(alice, channel_id, traffic, stop)),
            asyncio.create_task(keep_reading(bob, channel_id, traffic, stop)),
        ]
        await traffic.until_acked(10)
        before = len(traffic.acked)

        most_descriptors = 0
        deadline = time.monotonic() + 60
        while not met_emfile(server):
            assert time.monotonic() < deadline, "the store never ran out of files"
            if len(flood.sockets) < 2 * LIMIT:
                flood.open(20)
            await asyncio.sleep(0.05)
            most_descriptors = max(most_descriptors, open_descriptors(server))
        opened = len(flood.sockets)
        # Held a little longer, so that sends and reads meet the store while it is short.
        await asyncio.sleep(1.0)
        during = len(traffic.acked) - before
        flood.close()

        recovered_in = await asyncio.to_thread(
            wait_until_ready, server.url, RECOVERY_DEADLINE, server.process
        )
        after_ready = len(traffic.acked)
        await traffic.until_acked(after_ready + 10)
        stop.set()
        await asyncio.gather(*tasks)

        carol = await signed_in(server.url, "carol")
        await carol.close()
        ws_url = server.url.replace("http", "ws", 1) + "/ws"
        async with await RawSocket.open(ws_url, bob.token or "", last_seq=0) as raw:
            assert raw.ready["type"] == "ready"
        history = await all_history(bob, channel_id)
        inbox = await all_inbox(bob)
    finally:
        stop.set()
        flood.close()
        await alice.close()
        await bob.close()
        server.stop()

    print(
        f"\nEMFILE met after {opened} idle sockets (server at {most_descriptors} of {LIMIT});"
        f" acknowledged {before} before, {during} while flooded, {len(traffic.acked)} in all;"
        f" refused {len(traffic.refusals)}, unanswered {traffic.dropped};"
        f" ready again {recovered_in:.2f} s after the sockets closed"
    )
    assert {(status, code) for _, status, code in traffic.refusals} <= {(503, "store_unavailable")}
    logged = events(server)
    assert any(e["event"] == "message_store_reopened" for e in logged) or any(
        "Too many open files" in str(e.get("error", "")) for e in logged
    )
    assert not any(e["event"] == "message_store_damaged" for e in logged)

    assert [m.client_msg_id for m in history] == traffic.acked
    assert [m.message_id for m in history] == list(range(1, len(traffic.acked) + 1))
    assert [seq for seq, _ in inbox] == list(range(1, len(traffic.acked) + 1))
    assert [message_id for _, message_id in inbox] == [m.message_id for m in history]


async def all_history(client: ChatClient, channel_id: int) -> list[Any]:
    messages: list[Any] = []
    while True:
        after = messages[-1].message_id if messages else 0
        page = await client.messages(channel_id, after=after, limit=200)
        messages += page.messages
        if not page.has_more:
            return messages


async def all_inbox(client: ChatClient) -> list[tuple[int, int]]:
    """(seq, message_id) of every inbox entry."""
    entries: list[tuple[int, int]] = []
    while True:
        since = entries[-1][0] if entries else 0
        answer = await client.sync(since=since, limit=200)
        entries += [(e.seq, e.message.message_id) for e in answer.events if e.message is not None]
        if not answer.has_more:
            return entries
