"""Damaged data folders on real files: refused at start-up or reported, never served as whole.

Each test damages a stopped (or copied) folder the way a disk fault would,
then starts a real server on it, runs `chatapp check` and `chatapp repair`,
and checks that no id is handed out twice afterwards.
"""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import plyvel
import pytest

from chatapp.client import ChatApiError, ChatClient
from chatapp.testing import ServerProcess, free_port
from chatapp.testing.server import TEST_SETTINGS

PASSWORD = "password1"


def cli(command: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chatapp", command, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def refused_start(data_dir: Path) -> str:
    """Start a server that must refuse: exit 2 and one line on stderr, which is returned."""
    env = {
        **os.environ,
        **{f"CHATAPP_{k.upper()}": str(v) for k, v in TEST_SETTINGS.items() if k != "log_level"},
        "CHATAPP_PORT": str(free_port()),
        "CHATAPP_DATA_DIR": str(data_dir),
    }
    done = subprocess.run(
        [sys.executable, "-m", "chatapp", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = done.stderr.splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1, lines
    assert lines[0].startswith("chatapp: cannot start: ")
    assert "chatapp check" in lines[0]
    assert "chatapp repair" in lines[0]
    return lines[0]


def answers_readyz(server: ServerProcess, within: float = 20) -> bool:
    """Wait until the server answers /readyz (whatever the status): True; False when the
    process ended first."""
    assert server.process is not None
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            return False
        try:
            readyz(server.url)
            return True
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.05)
    raise TimeoutError(f"the server neither answered nor ended: {server.log()}")


def readyz(url: str) -> int:
    try:
        with urllib.request.urlopen(url + "/readyz", timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return error.code


async def signed_in(url: str, name: str) -> ChatClient:
    client = ChatClient(url)
    await client.signup(name, PASSWORD)
    await client.login(name, PASSWORD)
    return client


async def logged_in(url: str, name: str) -> ChatClient:
    client = ChatClient(url)
    await client.login(name, PASSWORD)
    return client


async def converse(url: str, count: int, text: str = "hello") -> tuple[int, list[int]]:
    """alice and bob sign up and alice sends `count` messages; the channel and their ids."""
    alice, bob = await signed_in(url, "alice"), await signed_in(url, "bob")
    try:
        channel_id = (await alice.open_direct(bob.user_id)).channel_id
        ids = [
            (
                await alice.send_message(channel_id, f"{text} {n}", client_msg_id=f"m{n}")
            ).message.message_id
            for n in range(count)
        ]
    finally:
        await alice.close()
        await bob.close()
    return channel_id, ids


async def first_refusal(pages: Sequence[Callable[[], Awaitable[object]]]) -> ChatApiError | None:
    """The error of the first page the server refuses, reading them in order; None if none."""
    for page in pages:
        try:
            await page()
        except ChatApiError as error:
            return error
    return None


def check_then_repair(data: Path) -> str:
    """`check` reports damage (exit 1); `repair` leaves the folder whole (exit 0), as `check`
    then confirms; returns what repair said."""
    checked = cli("check", data)
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert "DAMAGED" in checked.stdout
    repaired = cli("repair", data)
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    again = cli("check", data)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "whole" in again.stdout
    return repaired.stdout


async def next_ids_are_new(url: str, channel_id: int, seen: list[int]) -> None:
    """A new send gets an id above every id handed out before, and old client_msg_ids that
    survived are still answered as duplicates of their original."""
    alice = await logged_in(url, "alice")
    try:
        fresh = await alice.send_message(channel_id, "after repair", client_msg_id="after")
        assert fresh.message.message_id > max(seen)
        history = await alice.messages(channel_id, limit=200)
        kept = {m.client_msg_id: m for m in history.messages if m.client_msg_id != "after"}
        for client_msg_id, original in kept.items():
            again = await alice.send_message(channel_id, "x", client_msg_id=client_msg_id)
            assert again.message == original
    finally:
        await alice.close()


def message_log(data: Path) -> Path:
    (log,) = sorted((data / "messages").glob("*.log"), key=lambda p: p.stat().st_size)[-1:]
    return log


async def test_a_truncated_log_is_refused_and_repair_never_reuses_ids(tmp_path: Path) -> None:
    """The LevelDB log cut in half loses the last messages silently inside LevelDB; the start
    is refused (lost writes), check reports it, and after repair new ids skip the lost ones."""
    data = tmp_path / "data"
    with ServerProcess(data) as server:
        channel_id, ids = await converse(server.url, 30)
        server.stop()
    log = message_log(data)
    os.truncate(log, log.stat().st_size // 2)

    assert "lost writes" in refused_start(data)
    said = check_then_repair(data)
    assert "lost" in said

    with ServerProcess(data) as server:
        await next_ids_are_new(server.url, channel_id, ids)


async def test_a_deleted_current_file_is_refused_and_repair_keeps_every_message(
    tmp_path: Path,
) -> None:
    """Without `CURRENT` LevelDB would start an empty database over the old tables; the start
    is refused naming the file, and repair rebuilds the database with every message."""
    data = tmp_path / "data"
    with ServerProcess(data) as server:
        channel_id, ids = await converse(server.url, 10)
        server.stop()
    (data / "messages" / "CURRENT").unlink()

    assert "CURRENT" in refused_start(data)
    check_then_repair(data)

    with ServerProcess(data) as server:
        alice = await logged_in(server.url, "alice")
        try:
            history = await alice.messages(channel_id, limit=100)
            assert [m.message_id for m in history.messages] == ids
        finally:
            await alice.close()
        await next_ids_are_new(server.url, channel_id, ids)


async def test_flipped_bytes_in_a_table_are_refused_or_answered_503(tmp_path: Path) -> None:
    """256 bytes flipped in a table: checksums catch it. The server either refuses to start or
    answers reads with 503 and turns /readyz 503 — never 500, never garbled history."""
    data = tmp_path / "data"
    with ServerProcess(data) as server:
        channel_id, ids = await converse(server.url, 300, text="x" * 200)
        server.stop()
    # Opening turns the log into a table.
    ServerProcess(data).start().stop()
    (table,) = list((data / "messages").glob("*.ldb"))[:1]
    blob = bytearray(table.read_bytes())
    middle = len(blob) // 2
    blob[middle : middle + 256] = bytes(b ^ 0xFF for b in blob[middle : middle + 256])
    table.write_bytes(bytes(blob))

    server = ServerProcess(data).start(wait_ready=0)
    try:
        # Ready for a moment, or 503 from the start: the background check of every
        # message may reach the damaged block before the first /readyz.
        if not answers_readyz(server):
            assert server.process is not None
            assert server.process.returncode == 2
            assert "damaged" in server.log()
        else:
            bob = await logged_in(server.url, "bob")
            try:
                # Every message, both ways, a page of 200 at a time: wherever the
                # flipped block lies among the 300, some page of each must meet it.
                reads: dict[str, list[Callable[[], Awaitable[object]]]] = {
                    "history": [
                        functools.partial(bob.messages, channel_id, after=after, limit=200)
                        for after in (0, 200)
                    ],
                    "sync": [functools.partial(bob.sync, since, 200) for since in (0, 200)],
                }
                statuses = set()
                for name, pages in reads.items():
                    refusal = await first_refusal(pages)
                    assert refusal is not None, f"{name}: every page read from the damaged table"
                    statuses.add((refusal.status, refusal.code))
                assert statuses == {(503, "store_unavailable")}
            finally:
                await bob.close()
            assert readyz(server.url) == 503
    finally:
        server.stop()

    said = check_then_repair(data)
    assert "rebuilt" in said
    with ServerProcess(data) as server:
        assert readyz(server.url) == 200
        await next_ids_are_new(server.url, channel_id, ids)


async def test_a_lost_sqlite_wal_is_refused_and_lost_ids_are_never_handed_out(
    tmp_path: Path,
) -> None:
    """users.sqlite3 copied mid-run without its WAL forgets the newest users and channels;
    the start is refused, and after repair a newcomer gets neither a lost user's id (and
    inbox) nor a lost channel's id (and history)."""
    data = tmp_path / "data"
    with ServerProcess(data) as server:
        await (await signed_in(server.url, "early")).close()  # checkpointed on stop
        server.stop()
    with ServerProcess(data) as server:
        channel_id, _ids = await converse(server.url, 5, text="secret")
        copy = tmp_path / "copy"
        shutil.copytree(data, copy, ignore=shutil.ignore_patterns("control.sock"))
        server.stop()
    assert (copy / "users.sqlite3-wal").exists()
    (copy / "users.sqlite3-wal").unlink()

    assert "users.sqlite3 lost users" in refused_start(copy)
    said = check_then_repair(copy)
    assert "placeholders" in said

    with ServerProcess(copy) as server:
        newcomer = await signed_in(server.url, "newcomer")
        other = await signed_in(server.url, "other")
        try:
            assert newcomer.user_id is not None
            assert newcomer.user_id > 3
            assert (await newcomer.sync(since=0, limit=200)).events == []
            direct = await newcomer.open_direct(other.user_id)
            assert direct.channel_id > channel_id
            assert (await newcomer.messages(direct.channel_id, limit=100)).messages == []
            with pytest.raises(ChatApiError):
                await newcomer.messages(channel_id, limit=100)
        finally:
            await newcomer.close()
            await other.close()


async def test_a_record_lost_where_the_start_up_check_does_not_look_is_found_while_serving(
    tmp_path: Path,
) -> None:
    """An idempotency record lost in the middle of the store: the server starts (the
    start-up check reads the ends only), then its background check of every message finds
    it: /readyz turns 503 and the log names it, until the stopped folder is repaired."""
    data = tmp_path / "data"
    with ServerProcess(data) as server:
        channel_id, ids = await converse(server.url, 50)
        server.stop()
    db = plyvel.DB(str(data / "messages"))
    db.delete(b"d" + (1).to_bytes(8, "big") + b"m20")  # alice's 21st message's record
    db.close()

    server = ServerProcess(data).start(wait_ready=0)
    try:
        assert answers_readyz(server)
        deadline = time.monotonic() + 10
        while readyz(server.url) != 503:
            assert time.monotonic() < deadline, f"the damage was never found: {server.log()}"
            await asyncio.sleep(0.05)
        assert f"({channel_id}, {ids[20]})" in server.log()
    finally:
        server.stop()

    check_then_repair(data)
    with ServerProcess(data) as server:
        assert readyz(server.url) == 200
        await next_ids_are_new(server.url, channel_id, ids)
