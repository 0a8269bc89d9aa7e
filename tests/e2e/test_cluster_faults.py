"""A cluster whose nodes lose Redis or PostgreSQL for a while, through a real TCP relay.

The nodes reach each service through a `TcpProxy` that the test cuts (every
connection reset, new ones refused for a few seconds), as a restart of the
service or a broken network path would. What is acknowledged is never lost
or doubled, and the nodes come back by themselves.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from chatapp.client import ChatApiError, ChatClient
from chatapp.testing import RawSocket
from chatapp.testing.cluster import LocalCluster, local_cluster
from chatapp.testing.proxy import TcpProxy

OUTAGE_SECONDS = 3.0
NODES = ("n1", "n2")


class Inbox:
    """The `message` frames one socket receives, read by a task of its own."""

    def __init__(self, raw: RawSocket) -> None:
        self.raw = raw
        self.frames: list[dict[str, Any]] = []
        self.closed: str | None = None
        self._task = asyncio.create_task(self._read())
        self._beat = asyncio.create_task(self._heartbeat())

    async def _heartbeat(self) -> None:
        """A live device heartbeats; a silent one is closed 4408 after twice the timeout."""
        while True:
            await asyncio.sleep(0.5)
            await self.raw.send({"type": "heartbeat"})

    async def _read(self) -> None:
        try:
            while True:
                frame = await self.raw.receive(timeout=60)
                if frame["type"] == "message":
                    self.frames.append(frame)
        except (ConnectionError, TimeoutError) as ended:
            self.closed = repr(ended)

    async def until_has(self, message_ids: list[int], within: float) -> None:
        deadline = time.monotonic() + within
        while sorted({f["message"]["message_id"] for f in self.frames}) != sorted(message_ids):
            assert self.closed is None, f"the socket closed: {self.closed}"
            assert time.monotonic() < deadline, (
                f"{len(self.frames)} frames of {len(message_ids)} messages arrived"
            )
            await asyncio.sleep(0.05)

    def assert_once_in_order(self, message_ids: list[int]) -> None:
        seqs = [frame["seq"] for frame in self.frames]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), f"seqs {seqs}"
        assert [frame["message"]["message_id"] for frame in self.frames] == message_ids

    async def close(self) -> None:
        self._task.cancel()
        self._beat.cancel()
        await asyncio.gather(self._task, self._beat, return_exceptions=True)
        await self.raw.close()


async def pair(cluster: LocalCluster) -> tuple[ChatClient, int, Inbox]:
    """alice on n1 and bob on n2 in a direct channel; bob's socket on n2."""
    alice = await cluster.user("alice", "n1")
    bob = await cluster.user("bob", "n2")
    channel_id = (await alice.open_direct(bob.user_id)).channel_id
    return alice, channel_id, Inbox(await RawSocket.open(cluster.ws_url("n2"), bob.token or ""))


async def send(alice: ChatClient, channel_id: int, n: int) -> int:
    sent = await alice.send_message(channel_id, f"message {n}", client_msg_id=f"m{n}")
    return sent.message.message_id


async def history_ids(client: ChatClient, channel_id: int) -> list[int]:
    page = await client.messages(channel_id, limit=200)
    return [message.message_id for message in page.messages]


def expect_unavailable(error: ChatApiError) -> None:
    """The one refusal allowed while a store is away: never a 500, never another code."""
    assert (error.status, error.code) == (503, "store_unavailable"), error


async def within(seconds: float, attempt: Callable[[], Awaitable[int]]) -> int:
    """`attempt()` until it succeeds; answers other than 503 store_unavailable fail the test."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return await attempt()
        except ChatApiError as refused:
            expect_unavailable(refused)
            assert time.monotonic() < deadline, "the node did not come back by itself"
            await asyncio.sleep(0.1)


async def test_delivery_across_nodes_resumes_after_redis_is_cut_and_misses_nothing(
    tmp_path: Path,
) -> None:
    """n2 loses Redis while alice keeps sending to n1, which still reaches it: what n1
    publishes meanwhile never reaches n2 (pub/sub keeps nothing for an absent subscriber),
    yet bob's socket on n2 gets every message exactly once and in seq order, because n2
    fills the gap from the store when it hears the cluster again."""
    async with (
        TcpProxy(6379) as n2_redis,
        local_cluster(tmp_path, nodes=("n1",)) as cluster,
    ):
        # n2 alone reaches Redis through the relay, so that only n2 is cut off.
        cluster.redis_url = n2_redis.through(cluster.redis_url)
        await cluster.start("n2")
        alice, channel_id, inbox = await pair(cluster)
        try:
            acked = [await send(alice, channel_id, n) for n in range(10)]
            await inbox.until_has(acked, within=10)
            assert n2_redis.cut(refuse_for=OUTAGE_SECONDS) > 0
            outage_ends = time.monotonic() + OUTAGE_SECONDS
            n = 10
            while time.monotonic() < outage_ends:
                acked.append(await send(alice, channel_id, n))
                n += 1
                await asyncio.sleep(0.05)
            acked += [await send(alice, channel_id, n + extra) for extra in range(10)]
            await inbox.until_has(acked, within=20)
            await asyncio.sleep(1.0)  # anything repeated late would be here by now
            inbox.assert_once_in_order(acked)
            assert acked == list(range(1, len(acked) + 1))
        finally:
            await inbox.close()


async def test_sends_answer_503_while_postgresql_is_cut_and_resume_by_themselves(
    tmp_path: Path,
) -> None:
    """PostgreSQL is cut off both nodes: sends answer 503 store_unavailable (never 500) or
    succeed, a refused send repeated afterwards is stored once, service resumes by itself,
    and history and bob's socket hold every acknowledged message once, ids contiguous."""
    async with (
        TcpProxy(5432) as postgres,
        local_cluster(tmp_path, nodes=NODES, database_via=postgres.through) as cluster,
    ):
        alice, channel_id, inbox = await pair(cluster)
        try:
            acked = [await send(alice, channel_id, n) for n in range(10)]
            assert postgres.cut(refuse_for=OUTAGE_SECONDS) > 0
            # A device saying hello meanwhile is told to come back (1013), not that its
            # token is bad (4401) nor that the server failed (1011).
            async with await RawSocket.connect(cluster.ws_url("n1")) as late:
                await late.send({"type": "hello", "token": alice.token, "last_seq": 0})
                assert await late.closed_with(timeout=10) == 1013
            refused: list[int] = []
            outage_ends = time.monotonic() + OUTAGE_SECONDS
            n = 10
            while time.monotonic() < outage_ends:
                try:
                    acked.append(await send(alice, channel_id, n))
                except ChatApiError as error:
                    expect_unavailable(error)
                    refused.append(n)
                n += 1
                await asyncio.sleep(0.1)
            assert refused, "no send was refused while PostgreSQL was away"
            for repeat in refused:
                again = functools.partial(send, alice, channel_id, repeat)
                acked.append(await within(15, again))
            acked += [await send(alice, channel_id, n + extra) for extra in range(5)]
            acked.sort()
            assert acked == list(range(1, len(acked) + 1))
            assert await history_ids(alice, channel_id) == acked
            await inbox.until_has(acked, within=20)
            assert sorted(frame["message"]["message_id"] for frame in inbox.frames) == acked
        finally:
            await inbox.close()
