"""Real write failures: the server process gets a file-size limit, as a full disk would."""

from __future__ import annotations

import asyncio
import resource
import time
from pathlib import Path

import pytest

from chatapp.client import ChatApiError, ChatClient
from chatapp.protocol.http import SendAnswer
from chatapp.testing import ServerProcess

UNLIMITED = resource.RLIM_INFINITY


def limit_file_size(server: ServerProcess, size: int) -> None:
    """Writes past `size` bytes in any file now fail with EFBIG, like a full disk."""
    assert server.process is not None
    resource.prlimit(server.process.pid, resource.RLIMIT_FSIZE, (size, UNLIMITED))


async def signed_in(url: str, name: str) -> ChatClient:
    client = ChatClient(url)
    await client.signup(name, "password1")
    await client.login(name, "password1")
    return client


async def send_once_recovered(
    client: ChatClient, channel_id: int, client_msg_id: str, within: float = 5.0
) -> SendAnswer:
    """Send, repeating (same client_msg_id) while the store answers 503, for `within` s."""
    deadline = time.monotonic() + within
    while True:
        try:
            return await client.send_message(channel_id, "after", client_msg_id=client_msg_id)
        except ChatApiError as error:
            if (error.status, error.code) != (503, "store_unavailable"):
                raise
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.05)


async def test_failed_writes_refuse_sends_and_recover(tmp_path: Path) -> None:
    """Sends that cannot be written get 503 store_unavailable; nothing is half-written; after
    the fault is gone sends succeed with no gap in ids, also after a crash and restart."""
    data = tmp_path / "data"
    server = ServerProcess(data).start()
    alice, bob = await signed_in(server.url, "alice"), await signed_in(server.url, "bob")
    try:
        channel_id = (await alice.open_direct(bob.user_id)).channel_id
        for i in range(3):
            await alice.send_message(channel_id, "before", client_msg_id=f"b{i}")
        largest = max(p.stat().st_size for p in data.rglob("*") if p.is_file())
        limit_file_size(server, largest + 100_000)

        accepted: list[int] = []
        refused: list[str] = []
        failures: list[tuple[int, str]] = []
        for i in range(40):
            try:
                answer = await alice.send_message(channel_id, "x" * 20_000, client_msg_id=f"f{i}")
            except ChatApiError as error:
                failures.append((error.status, error.code))
                refused.append(f"f{i}")
            else:
                accepted.append(answer.message.message_id)
        assert set(failures) <= {(503, "store_unavailable")}
        assert refused, "the file-size limit never made a write fail"
        assert accepted == list(range(4, 4 + len(accepted)))

        limit_file_size(server, UNLIMITED)
        # The store reopens by itself after a failed write, retrying at growing intervals
        # (at most a second apart): until then a send is refused, as during the fault.
        after = await send_once_recovered(alice, channel_id, "after")
        assert after.message.message_id == 4 + len(accepted)
        retried = await alice.send_message(channel_id, "x", client_msg_id=refused[0])
        assert retried.message.message_id == after.message.message_id + 1

        server.kill()
        server.start()
        history = await bob.messages(channel_id, limit=200)
        ids = [m.message_id for m in history.messages]
        assert ids == list(range(1, retried.message.message_id + 1))
        cmids = [m.client_msg_id for m in history.messages]
        assert set(refused[1:]).isdisjoint(cmids)
        inbox = await bob.sync(since=0, limit=1000)
        assert [e.seq for e in inbox.events] == ids
    finally:
        await alice.close()
        await bob.close()
        server.stop()


async def test_failed_account_writes_are_refused_then_recover(tmp_path: Path) -> None:
    """When SQLite cannot write, signup and login answer 503 (never 500) and work again later."""
    server = ServerProcess(tmp_path / "data").start()
    client = ChatClient(server.url)
    try:
        await client.signup("first", "password1")
        limit_file_size(server, 1)
        for call in (client.signup("second", "password1"), client.login("first", "password1")):
            with pytest.raises(ChatApiError) as caught:
                await call
            assert (caught.value.status, caught.value.code) == (503, "store_unavailable")
        limit_file_size(server, UNLIMITED)
        await client.signup("second", "password1")
        await client.login("first", "password1")
    finally:
        await client.close()
        server.stop()
