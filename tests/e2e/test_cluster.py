"""The cluster end to end: three `chatapp serve` processes on one PostgreSQL and one Redis.

Each test starts its own nodes n1, n2 and n3 (`chatapp.testing.cluster.local_cluster`)
on a fresh schema and a fresh cluster name, with presence_timeout 2 s and
heartbeats every 0.5 s, and removes the schema and the Redis keys afterwards.
Clients speak to a node chosen by the test: HTTP through `ChatClient`, the
WebSocket through `RawSocket` frames read in the background (`Frames`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, Self, TypeVar

import aiohttp
import pytest

from chatapp.client import Ack, ChatApiError, ChatClient, RealtimeClient, RealtimeError, State
from chatapp.client.realtime import Backoff
from chatapp.cluster.connection import open_redis
from chatapp.protocol.http import MessageOut
from chatapp.testing import RawSocket, free_port
from chatapp.testing.cluster import LocalCluster, local_cluster

pytestmark = pytest.mark.slow

NODES = ("n1", "n2", "n3")
PRESENCE_TIMEOUT = 2.0  # seconds: CHATAPP_PRESENCE_TIMEOUT_MS of FAST_CLUSTER_SETTINGS
HEARTBEAT_INTERVAL = 0.5
# How long "nothing more arrives" is watched for, after what was expected has arrived.
QUIET = 0.3

T = TypeVar("T")


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[LocalCluster]:
    async with local_cluster(tmp_path, nodes=NODES) as running:
        yield running


# -- waiting ---------------------------------------------------------------------------------


async def until(check: Callable[[], bool], *, within: float, what: str) -> float:
    """Poll `check` until it holds; the seconds it took. AssertionError after `within` s."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > within:
            raise AssertionError(f"not within {within} s: {what}")
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def until_answer(
    probe: Callable[[], Awaitable[T]],
    accept: Callable[[T], bool],
    *,
    within: float,
    what: str,
    interval: float = 0.1,
) -> T:
    """Call `probe` until its answer is accepted; that answer."""
    deadline = time.monotonic() + within
    while True:
        answer = await probe()
        if accept(answer):
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within} s: {what}; last answer {answer!r}")
        await asyncio.sleep(interval)


# -- a socket read in the background ---------------------------------------------------------


class Frames:
    """A `RawSocket` whose frames a task reads as they come, keeping them in order.

    `heartbeat_acks` are counted, not kept. With `heartbeat` the socket sends a
    `heartbeat` that often, as a live device does.
    """

    def __init__(self, raw: RawSocket, name: str) -> None:
        self.raw = raw
        self.name = name
        self.frames: list[dict[str, Any]] = []
        self.heartbeat_acks = 0
        self.close_code: int | None = None
        self.closed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    async def open(
        cls,
        ws_url: str,
        token: str | None,
        *,
        name: str = "",
        last_seq: int | None = None,
        heartbeat: float | None = None,
    ) -> Self:
        """Connect, say hello, check that `ready` comes first and wait for `synced`."""
        assert token is not None
        raw = await RawSocket.connect(ws_url)
        frames = cls(raw, name or ws_url)
        try:
            hello: dict[str, Any] = {"type": "hello", "token": token}
            if last_seq is not None:
                hello["last_seq"] = last_seq
            await raw.send(hello)
            raw.ready = await raw.expect("ready", timeout=10)
        except BaseException:
            await raw.close()
            raise
        frames._tasks.append(asyncio.create_task(frames._read(), name=f"frames:{name}"))
        if heartbeat is not None:
            frames._tasks.append(asyncio.create_task(frames._beat(heartbeat)))
        await until(lambda: bool(frames.of("synced")), within=10, what=f"{name} synced")
        return frames

    @property
    def ready(self) -> dict[str, Any]:
        return self.raw.ready

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [frame for frame in self.frames if frame.get("type") == kind]

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.of("message")

    @property
    def acks(self) -> list[dict[str, Any]]:
        return self.of("ack")

    async def send(self, frame: dict[str, Any]) -> None:
        await self.raw.send(frame)

    def inbox_count(self) -> int:
        """Inbox entries seen: `message` frames and acks of this connection's own sends."""
        return len(self.messages) + len(self.acks)

    async def wait_inbox(self, count: int, *, within: float) -> None:
        await until(
            lambda: self.inbox_count() >= count, within=within, what=f"{self.name} has {count}"
        )

    async def wait_messages(self, count: int, *, within: float) -> None:
        await until(
            lambda: len(self.messages) >= count,
            within=within,
            what=f"{self.name} has {count} messages",
        )

    async def alive(self, within: float = 5.0) -> None:
        """A heartbeat is answered: the connection is open and served."""
        before = self.heartbeat_acks
        await self.raw.send({"type": "heartbeat"})
        await until(
            lambda: self.heartbeat_acks > before, within=within, what=f"{self.name} answers"
        )

    async def wait_closed(self, within: float) -> int | None:
        """The close code the server sent, once it has closed the socket."""
        async with asyncio.timeout(within):
            await self.closed.wait()
        return self.close_code

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.raw.close()

    async def _read(self) -> None:
        socket = self.raw.socket
        while True:
            message = await socket.receive()
            if message.type is aiohttp.WSMsgType.TEXT:
                frame: dict[str, Any] = json.loads(message.data)
                if frame.get("type") == "heartbeat_ack":
                    self.heartbeat_acks += 1
                else:
                    self.frames.append(frame)
                continue
            if message.type is aiohttp.WSMsgType.CLOSE:
                self.close_code = int(message.data)
            else:
                self.close_code = socket.close_code
            break
        self.closed.set()

    async def _beat(self, interval: float) -> None:
        with contextlib.suppress(ConnectionError, aiohttp.ClientError):
            while not self.closed.is_set():
                await self.raw.send({"type": "heartbeat"})
                await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def sockets_closed_after(*all_frames: Frames) -> AsyncIterator[None]:
    try:
        yield
    finally:
        for frames in all_frames:
            await frames.close()


async def quiet(
    *all_frames: Frames, seconds: float = QUIET, kinds: tuple[str, ...] | None = None
) -> None:
    """Nothing more (of these `kinds`) arrives on these sockets for `seconds`.

    For after everything expected has arrived: a window in which repeats would show.
    """
    counts = [len(frames.frames) for frames in all_frames]
    await asyncio.sleep(seconds)
    for frames, count in zip(all_frames, counts, strict=True):
        more = [f for f in frames.frames[count:] if kinds is None or f["type"] in kinds]
        assert more == [], f"{frames.name} got more: {more}"


async def channel_added(channel_id: int, *all_frames: Frames) -> None:
    """Wait until each socket has had `channel added` for the channel (every node fans it out)."""

    def added(frames: Frames) -> bool:
        return any(
            f["event"] == "added" and f["channel"]["channel_id"] == channel_id
            for f in frames.of("channel")
        )

    await until(
        lambda: all(added(frames) for frames in all_frames),
        within=15,
        what=f"channel {channel_id} added on every socket",
    )


# -- what a socket saw -----------------------------------------------------------------------


def assert_inbox_once_in_order(frames: Frames, expected_ids: set[int]) -> None:
    """The socket's `message` frames and `ack`s together are its inbox after `ready.max_seq`.

    Message frames come in increasing seq order; with the acks (of this
    connection's own sends) the seqs are contiguous and none repeats (an own send
    comes only as its `ack`, also when a gap fill reads it from the store before
    the ack is out); every expected message id arrives exactly once; and, the
    messages being of one channel, a higher seq is a higher message id.
    """
    base = frames.ready["max_seq"]
    live = [(frame["seq"], frame["message"]["message_id"]) for frame in frames.messages]
    acked = [(frame["seq"], frame["message"]["message_id"]) for frame in frames.acks]
    live_seqs = [seq for seq, _ in live]
    assert live_seqs == sorted(set(live_seqs)), f"{frames.name}: message seqs {live_seqs}"
    entries = sorted(live + acked)
    seqs = [seq for seq, _ in entries]
    assert seqs == list(range(base + 1, base + 1 + len(expected_ids))), (
        f"{frames.name}: seqs of messages and acks {seqs};"
        f" messages {live_seqs}, acks {[seq for seq, _ in acked]}"
    )
    ids = [message_id for _, message_id in entries]
    assert sorted(ids) == sorted(expected_ids), f"{frames.name}: message ids {ids}"
    assert ids == sorted(ids), f"{frames.name}: ids by seq {ids}"


async def history(client: ChatClient, channel_id: int) -> list[MessageOut]:
    """The channel's whole history, oldest first, paged with `after`."""
    messages: list[MessageOut] = []
    after = 0
    while True:
        page = await client.messages(channel_id, after=after, limit=200)
        messages.extend(page.messages)
        if not page.has_more or not page.messages:
            return messages
        after = page.messages[-1].message_id


async def synced_inbox(client: ChatClient) -> list[tuple[int, MessageOut]]:
    """The user's whole inbox from `/sync`, as (seq, message)."""
    entries: list[tuple[int, MessageOut]] = []
    since = 0
    while True:
        answer = await client.sync(since)
        entries.extend((e.seq, e.message) for e in answer.events if e.message is not None)
        if not answer.has_more:
            return entries
        since = answer.next_since


def send_frame(channel_id: int, client_msg_id: str, text: str | None = None) -> dict[str, Any]:
    return {
        "type": "send",
        "channel_id": channel_id,
        "client_msg_id": client_msg_id,
        "text": text or f"text of {client_msg_id}",
    }


async def befriend(one: ChatClient, other: ChatClient) -> None:
    await one.request("POST", "/api/v1/friends", {"user_id": other.user_id})
    answer = await other.request("POST", "/api/v1/friends", {"user_id": one.user_id})
    assert answer == {"status": "accepted"}


async def discovered(client: ChatClient) -> dict[str, str]:
    answer: dict[str, str] = await client.request("GET", "/api/v1/discovery")
    return answer


# -- 1. direct messages ----------------------------------------------------------------------


async def test_direct_messages_between_nodes_arrive_once_in_seq_order(
    cluster: LocalCluster,
) -> None:
    """Alice on n1 and bob on n2 each send five messages over their WebSocket at once.

    Both sockets get the new channel's `added`. Each gets an `ack` for each
    own send and a `message` frame for each of the other's, exactly once, in
    inbox seq order, the seqs contiguous; nothing else arrives afterwards;
    the channel's ids are 1..10.
    """
    alice = await cluster.user("alice", "n1")
    bob = await cluster.user("bob", "n2")
    on_n1 = await Frames.open(cluster.ws_url("n1"), alice.token, name="alice@n1")
    on_n2 = await Frames.open(cluster.ws_url("n2"), bob.token, name="bob@n2")
    async with sockets_closed_after(on_n1, on_n2):
        channel_id = (await alice.open_direct(bob.user_id)).channel_id
        await channel_added(channel_id, on_n1, on_n2)

        async def send_five(frames: Frames, who: str) -> None:
            for n in range(5):
                await frames.send(send_frame(channel_id, f"{who}-{n}"))

        await asyncio.gather(send_five(on_n1, "alice"), send_five(on_n2, "bob"))
        for frames in (on_n1, on_n2):
            await frames.wait_inbox(10, within=10)
        await quiet(on_n1, on_n2)

        for frames, mine, theirs in ((on_n1, "alice", "bob"), (on_n2, "bob", "alice")):
            assert sorted(ack["client_msg_id"] for ack in frames.acks) == [
                f"{mine}-{n}" for n in range(5)
            ]
            assert sorted(m["message"]["client_msg_id"] for m in frames.messages) == [
                f"{theirs}-{n}" for n in range(5)
            ]
            assert_inbox_once_in_order(frames, set(range(1, 11)))
            kinds = [f["type"] for f in frames.frames if f["type"] not in ("ack", "message")]
            assert kinds == ["synced", "channel"], frames.frames
        assert [m.message_id for m in await history(bob, channel_id)] == list(range(1, 11))


# -- 2. a full group ---------------------------------------------------------------------------


async def test_a_hundred_member_group_spread_over_three_nodes_gets_every_message_once(
    cluster: LocalCluster,
) -> None:
    """100 members, their sockets spread evenly over n1, n2 and n3; 20 of them send at once.

    Every socket gets the new group's `channel added` once, whichever node it
    is on. The senders are on all three nodes. Every member's socket gets each
    of the 20 messages exactly once (the sender's as its `ack`), in its inbox
    seq order without gaps, and the channel's message ids are 1..20.
    """
    limit = asyncio.Semaphore(16)

    async def member(n: int) -> ChatClient:
        async with limit:
            return await cluster.user(f"member{n:03d}", NODES[n % 3])

    members = await asyncio.gather(*(member(n) for n in range(100)))

    async def connect(n: int) -> Frames:
        async with limit:
            node = NODES[n % 3]
            return await Frames.open(cluster.ws_url(node), members[n].token, name=f"m{n}@{node}")

    sockets = list(await asyncio.gather(*(connect(n) for n in range(100))))
    async with sockets_closed_after(*sockets):
        group = await members[0].create_group("everyone", [m.user_id for m in members[1:]])
        assert len(group.members) == 100
        await channel_added(group.channel_id, *sockets)
        senders = [5 * k for k in range(20)]  # on n1, n3, n2, n1, ... in turn
        assert {NODES[n % 3] for n in senders} == set(NODES)
        await asyncio.gather(
            *(
                sockets[n].send(send_frame(group.channel_id, f"from-{n}", f"hello from {n}"))
                for n in senders
            )
        )
        await until(
            lambda: all(s.inbox_count() >= 20 for s in sockets),
            within=20,
            what="every member has 20 messages",
        )
        await quiet(*sockets)

        for n, frames in enumerate(sockets):
            assert_inbox_once_in_order(frames, set(range(1, 21)))
            own = [ack["client_msg_id"] for ack in frames.acks]
            assert own == ([f"from-{n}"] if n in senders else []), frames.name
            assert len(frames.of("channel")) == 1, frames.name
        stored = await history(members[1], group.channel_id)
        assert [m.message_id for m in stored] == list(range(1, 21))
        assert sorted(m.client_msg_id for m in stored) == sorted(f"from-{n}" for n in senders)


# -- 3. concurrent sends -----------------------------------------------------------------------


async def test_parallel_http_sends_through_every_node_keep_ids_and_seqs_contiguous(
    cluster: LocalCluster,
) -> None:
    """60 HTTP sends into one group at once, each sender going through all three nodes.

    The answers carry message ids 1..60, each once; every member's `/sync`
    (asked of every node) shows seqs 1..60 with message ids rising with the
    seq; the history is the same 60 messages on every node.
    """
    members = [await cluster.user(f"sender{n}", node) for n, node in enumerate(NODES)]
    group = await members[0].create_group("busy", [m.user_id for m in members[1:]])
    through = [cluster.clients_of(member, NODES) for member in members]

    async def send(n: int) -> tuple[int, int, int]:
        sender = n % 3
        client = through[sender][NODES[(n // 3) % 3]]
        answer = await client.send_message(group.channel_id, f"message {n}", f"parallel-{n}")
        assert answer.message.client_msg_id == f"parallel-{n}"
        return sender, answer.message.message_id, answer.seq

    answers = await asyncio.gather(*(send(n) for n in range(60)))
    assert sorted(message_id for _, message_id, _ in answers) == list(range(1, 61))
    for sender in range(3):
        seqs = [seq for who, _, seq in answers if who == sender]
        assert len(set(seqs)) == 20, seqs
        assert all(1 <= seq <= 60 for seq in seqs)

    for sender in range(3):
        for node in NODES:
            inbox = await synced_inbox(through[sender][node])
            assert [seq for seq, _ in inbox] == list(range(1, 61)), (sender, node)
            assert [m.message_id for _, m in inbox] == list(range(1, 61)), (sender, node)
    expected = await history(through[0]["n1"], group.channel_id)
    assert [m.message_id for m in expected] == list(range(1, 61))
    for node in NODES[1:]:
        assert await history(through[1][node], group.channel_id) == expected


# -- 4. one client_msg_id, two nodes -------------------------------------------------------------


async def test_the_same_client_msg_id_sent_to_two_nodes_at_once_is_stored_once(
    cluster: LocalCluster,
) -> None:
    """Ten times, one send goes to n1 and n2 at the same moment with the same client_msg_id.

    Each time one answer is 201 and the other 200, both with the same message
    and seq; the channel holds ten messages (ids 1..10); bob's and alice's
    sockets on n3 get each once; repeating every send over alice's WebSocket
    is acknowledged with the original and stores and delivers nothing.
    """
    alice = await cluster.user("alice", "n1")
    bob = await cluster.user("bob", "n3")
    on_n1, on_n2 = cluster.client("n1", alice.token), cluster.client("n2", alice.token)
    bob_socket = await Frames.open(cluster.ws_url("n3"), bob.token, name="bob@n3")
    alice_socket = await Frames.open(cluster.ws_url("n3"), alice.token, name="alice@n3")
    async with sockets_closed_after(bob_socket, alice_socket):
        channel_id = (await alice.open_direct(bob.user_id)).channel_id
        await channel_added(channel_id, bob_socket, alice_socket)
        path = f"/api/v1/channels/{channel_id}/messages"

        async def post(client: ChatClient, client_msg_id: str) -> tuple[int, dict[str, Any]]:
            body = json.dumps({"client_msg_id": client_msg_id, "text": f"once: {client_msg_id}"})
            answer = await client.raw_request(
                "POST", path, data=body, headers={"Content-Type": "application/json"}
            )
            return answer.status, answer.json()

        async def race(client_msg_id: str) -> dict[str, Any]:
            first, second = await asyncio.gather(
                post(on_n1, client_msg_id), post(on_n2, client_msg_id)
            )
            assert sorted([first[0], second[0]]) == [200, 201], (first, second)
            assert first[1] == second[1]
            return first[1]

        originals = await asyncio.gather(*(race(f"twice-{n}") for n in range(10)))
        by_id = {answer["message"]["client_msg_id"]: answer for answer in originals}
        assert sorted(answer["message"]["message_id"] for answer in originals) == list(range(1, 11))

        # Sent over HTTP, they reached alice's socket as `message` frames, once each.
        for frames in (bob_socket, alice_socket):
            await frames.wait_messages(10, within=10)
        for client_msg_id in by_id:
            await alice_socket.send(send_frame(channel_id, client_msg_id, "a third time"))
        await until(lambda: len(alice_socket.acks) == 10, within=10, what="ten acks")
        for ack in alice_socket.acks:
            original = by_id[ack["client_msg_id"]]
            assert (ack["message"], ack["seq"]) == (original["message"], original["seq"])

        await quiet(bob_socket, alice_socket)
        assert_inbox_once_in_order(bob_socket, set(range(1, 11)))
        for frames in (bob_socket, alice_socket):
            assert [m["message"]["message_id"] for m in frames.messages] == list(range(1, 11))
        stored = await history(bob, channel_id)
        assert [m.message_id for m in stored] == list(range(1, 11))
        assert sorted(m.client_msg_id for m in stored) == sorted(by_id)


# -- 5. presence and typing --------------------------------------------------------------------


async def test_presence_and_typing_reach_friends_and_members_on_other_nodes(
    cluster: LocalCluster,
) -> None:
    """Presence and typing cross nodes, and a device moving between nodes does not flap.

    Alice is live on n1 when bob (offline) becomes her friend: she gets one
    `presence offline` for him. Bob connecting on n2 gives her one `presence
    online`. Alice's `typing` on n1 reaches carol on n3 and bob on n2, not
    alice's own socket. Bob moving his device from n2 to n3 within the
    timeout gives alice nothing; when his last socket closes, alice gets
    exactly one `offline` once the presence timeout has passed (not at once).
    Carol, a group member but no friend, never gets presence frames.
    """
    alice = await cluster.user("alice", "n1")
    bob = await cluster.user("bob", "n2")
    carol = await cluster.user("carol", "n3")
    group = await alice.create_group("typists", [bob.user_id, carol.user_id])
    beat = HEARTBEAT_INTERVAL
    at_n1 = await Frames.open(cluster.ws_url("n1"), alice.token, name="alice@n1", heartbeat=beat)
    at_n3 = await Frames.open(cluster.ws_url("n3"), carol.token, name="carol@n3", heartbeat=beat)
    bob_sockets: list[Frames] = []
    async with sockets_closed_after(at_n1, at_n3):
        try:

            def bob_presence() -> list[str]:
                return [f["status"] for f in at_n1.of("presence") if f["user_id"] == bob.user_id]

            await befriend(alice, bob)
            await until(lambda: bob_presence() == ["offline"], within=5, what="friend: offline")
            bob_sockets.append(
                await Frames.open(cluster.ws_url("n2"), bob.token, name="bob@n2", heartbeat=beat)
            )
            await until(
                lambda: bob_presence() == ["offline", "online"], within=5, what="bob online"
            )

            await at_n1.send({"type": "typing", "channel_id": group.channel_id})
            typing = {"type": "typing", "channel_id": group.channel_id, "user_id": alice.user_id}
            await until(lambda: typing in at_n3.frames, within=5, what="carol sees typing")
            await until(lambda: typing in bob_sockets[0].frames, within=5, what="bob sees it")

            # The device moves from n2 to n3; its heartbeats go on from there.
            bob_sockets.append(
                await Frames.open(cluster.ws_url("n3"), bob.token, name="bob@n3", heartbeat=beat)
            )
            await bob_sockets.pop(0).close()
            await asyncio.sleep(PRESENCE_TIMEOUT + 0.5)  # a window in which nothing may happen
            assert bob_presence() == ["offline", "online"]

            await bob_sockets.pop().close()
            closed_at = time.monotonic()
            took = await until(
                lambda: bob_presence() == ["offline", "online", "offline"],
                within=PRESENCE_TIMEOUT + 3,
                what="bob offline",
            )
            # Not at the close: after the timeout, counted from his last heartbeat.
            assert took >= PRESENCE_TIMEOUT / 2, took
            assert time.monotonic() - closed_at < PRESENCE_TIMEOUT + 3
            await quiet(at_n1, seconds=1.0, kinds=("presence",))
            assert bob_presence() == ["offline", "online", "offline"]
            assert at_n3.of("presence") == []
            assert all(f["user_id"] != alice.user_id for f in at_n1.of("typing"))
        finally:
            for frames in bob_sockets:
                await frames.close()


# -- 6. revocation -------------------------------------------------------------------------------


async def test_logout_and_a_cli_password_reset_close_sockets_on_every_node(
    cluster: LocalCluster,
) -> None:
    """Revocations reach the sockets of every node, whichever node or process made them.

    Dave has devices with sockets on n1, n2 and n3. Logging out the n1
    device over HTTP on n2 closes that socket with 4401 and leaves the
    others open. `chatapp reset-password` run as its own process with the
    cluster's settings then closes dave's remaining sockets (on n2 and n3)
    with 4401 within 2 s; every old token gets 401 on every node; the new
    password logs in. Erin's socket on n1 stays open throughout.
    """
    old_password, new_password = "dave-first-password", "dave-second-password"
    phone = await cluster.user("dave", "n1", old_password)
    laptop = await cluster.device("dave", "n3", old_password)
    tablet = await cluster.device("dave", "n2", old_password)
    erin = await cluster.user("erin", "n1")
    on_n1 = await Frames.open(cluster.ws_url("n1"), phone.token, name="phone@n1")
    on_n3 = await Frames.open(cluster.ws_url("n3"), laptop.token, name="laptop@n3")
    on_n2 = await Frames.open(cluster.ws_url("n2"), tablet.token, name="tablet@n2")
    bystander = await Frames.open(cluster.ws_url("n1"), erin.token, name="erin@n1")
    async with sockets_closed_after(on_n1, on_n2, on_n3, bystander):
        await cluster.client("n2", phone.token).logout()
        assert await on_n1.wait_closed(within=2.0) == 4401
        for frames in (on_n2, on_n3, bystander):
            await frames.alive()
            assert not frames.closed.is_set()

        reset = await cluster.run_cli(
            "reset-password", "dave", "--password-stdin", stdin=new_password + "\n"
        )
        finished = time.monotonic()
        assert reset.returncode == 0, reset.stderr
        assert "password set for dave" in reset.stdout
        for frames in (on_n2, on_n3):
            assert await frames.wait_closed(within=2.0) == 4401, frames.name
        assert time.monotonic() - finished < 2.0
        await bystander.alive()

        for token in (phone.token, laptop.token, tablet.token):
            for node in NODES:
                with pytest.raises(ChatApiError) as refused:
                    await cluster.client(node, token).me()
                assert refused.value.status == 401, node
        with pytest.raises(ChatApiError) as wrong:
            await cluster.client("n1").login("dave", old_password)
        assert wrong.value.code == "invalid_credentials"
        again = await cluster.device("dave", "n3", new_password)
        assert (await again.me()).username == "dave"


# -- 7. discovery ----------------------------------------------------------------------------------


async def test_discovery_names_the_least_loaded_live_node(cluster: LocalCluster) -> None:
    """`GET /discovery` answers a live node's `{ws_url, node_id}`, follows load and deaths.

    On an idle cluster every node names the same live node with its own
    ws_url. With three sockets on n1 (counts reach the registry within 5 s)
    discovery, and login's ws_url, point elsewhere. A node SIGKILLed leaves
    discovery within presence_timeout (plus slack), and the remaining idle
    node is named.
    """
    user = await cluster.user("walker", "n1")
    through = cluster.clients_of(user, NODES)
    for node in NODES:
        answer = await discovered(through[node])
        assert answer["node_id"] in NODES
        assert answer["ws_url"] == cluster.ws_url(answer["node_id"])

    sockets = [
        await Frames.open(cluster.ws_url("n1"), user.token, name=f"walker@n1#{n}") for n in range(3)
    ]
    async with sockets_closed_after(*sockets):
        chosen = await until_answer(
            lambda: discovered(through["n3"]),
            lambda answer: answer["node_id"] != "n1",
            within=5,
            what="discovery avoids n1",
        )
        # The idle nodes tie on zero connections: the lower node id wins.
        assert chosen == {"node_id": "n2", "ws_url": cluster.ws_url("n2")}
        assert await discovered(through["n1"]) == chosen
        login = await cluster.device("walker", "n3")
        assert login.ws_url == chosen["ws_url"]

        await asyncio.to_thread(cluster["n2"].kill)
        killed_at = time.monotonic()
        after = await until_answer(
            lambda: discovered(through["n1"]),
            lambda answer: answer["node_id"] != "n2",
            within=PRESENCE_TIMEOUT + 3,
            what="the killed node leaves discovery",
        )
        assert time.monotonic() - killed_at < PRESENCE_TIMEOUT + 3
        assert after == {"node_id": "n3", "ws_url": cluster.ws_url("n3")}
        assert await discovered(through["n3"]) == after


# -- 8. a node killed under load -----------------------------------------------------------------


class ContinuousSender:
    """Sends through a `RealtimeClient` without pause, a few unacknowledged at a time."""

    def __init__(self, live: RealtimeClient, channel_id: int, window: int = 4) -> None:
        self.live = live
        self.channel_id = channel_id
        self.window = window
        self.attempted: list[str] = []
        self.acked: dict[str, Ack] = {}

    async def run(self) -> None:
        pending: set[asyncio.Task[None]] = set()
        try:
            for n in itertools.count():
                client_msg_id = f"steady-{n:04d}"
                self.attempted.append(client_msg_id)
                pending.add(asyncio.create_task(self._send(client_msg_id)))
                if len(pending) >= self.window:
                    _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        finally:
            # Only the waits end: the sends stay in the client's outbox.
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _send(self, client_msg_id: str) -> None:
        ack = await self.live.send(self.channel_id, text_of(client_msg_id), client_msg_id)
        self.acked[client_msg_id] = ack

    @property
    def unacknowledged(self) -> list[str]:
        return [c for c in self.attempted if c not in self.acked]


def text_of(client_msg_id: str) -> str:
    return f"steady message {client_msg_id}"


async def test_a_node_killed_while_its_client_sends_loses_and_doubles_nothing(
    cluster: LocalCluster,
) -> None:
    """Alice's reconnecting client sends without pause through n1, and n1 is SIGKILLed.

    The client is then opened on n2 with its `last_seq` and sends again every
    `client_msg_id` not acknowledged. Afterwards every acknowledged message is
    stored with the id and seq it was acknowledged with, nothing is stored
    twice, the history's ids and alice's `/sync` seqs are contiguous, and bob's
    socket on n3 got every message once, in seq order.
    """
    alice = await cluster.user("alice", "n2")
    bob = await cluster.user("bob", "n3")
    assert alice.token is not None
    receiver = await Frames.open(cluster.ws_url("n3"), bob.token, name="bob@n3")
    channel_id = (await alice.open_direct(bob.user_id)).channel_id
    await channel_added(channel_id, receiver)
    backoff = Backoff(initial=0.05, maximum=0.2)
    first = RealtimeClient(cluster.ws_url("n1"), alice.token, last_seq=0, backoff=backoff)
    second: RealtimeClient | None = None
    try:
        await first.start()
        await asyncio.wait_for(first.wait_ready(), 10)
        sender = ContinuousSender(first, channel_id)
        sending = asyncio.create_task(sender.run())
        await until(lambda: len(sender.acked) >= 30, within=20, what="30 acks through n1")

        await asyncio.to_thread(cluster["n1"].kill)
        await until(lambda: first.state is State.CONNECTING, within=5, what="the drop is seen")
        sending.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sending
        acked = dict(sender.acked)
        unacknowledged = sender.unacknowledged
        assert unacknowledged, "the window was full when n1 died"
        resume_from = first.last_seq
        await first.close()

        # The client cannot change its URL: a new one on n2 takes over its state.
        second = RealtimeClient(cluster.ws_url("n2"), alice.token, last_seq=resume_from)
        await second.start()
        await asyncio.wait_for(second.wait_ready(), 10)
        resent = await asyncio.wait_for(
            asyncio.gather(*(second.send(channel_id, text_of(c), c) for c in unacknowledged)), 15
        )
        extra = [await second.send(channel_id, f"after {n}", f"after-{n}") for n in range(5)]
        with pytest.raises(RealtimeError):
            await first.send(channel_id, "closed", "closed-client")

        total = len(sender.attempted) + len(extra)
        stored = await history(bob, channel_id)
        assert [m.message_id for m in stored] == list(range(1, total + 1))
        by_client_id = {m.client_msg_id: m for m in stored}
        assert len(by_client_id) == total, "a client_msg_id stored twice"
        assert set(by_client_id) == {*sender.attempted, *(f"after-{n}" for n in range(5))}
        for client_msg_id, ack in acked.items():
            assert by_client_id[client_msg_id] == ack.message
        for client_msg_id, ack in zip(unacknowledged, resent, strict=True):
            assert ack.client_msg_id == client_msg_id
            assert by_client_id[client_msg_id] == ack.message

        inbox = await synced_inbox(cluster.client("n3", alice.token))
        assert [seq for seq, _ in inbox] == list(range(1, total + 1))
        assert [m.message_id for _, m in inbox] == list(range(1, total + 1))
        acked_seqs = {ack.seq: ack.message.message_id for ack in [*acked.values(), *resent]}
        assert all(dict(inbox)[seq].message_id == mid for seq, mid in acked_seqs.items())

        await receiver.wait_messages(total, within=10)
        await quiet(receiver)
        assert_inbox_once_in_order(receiver, set(range(1, total + 1)))
    finally:
        await first.close()
        if second is not None:
            await second.close()
        await receiver.close()


# -- 9. node ids are unique ----------------------------------------------------------------------


async def test_a_second_node_with_a_live_nodes_id_refuses_to_start(cluster: LocalCluster) -> None:
    """Starting another `chatapp serve` as n2 while n2 lives exits with 2 and one stderr line.

    The live n2 keeps its registry entry (its own ws_url) and keeps serving.
    """
    port = free_port()
    env = {
        **cluster.process_env("n2"),
        "CHATAPP_HOST": "127.0.0.1",
        "CHATAPP_PORT": str(port),
        "CHATAPP_DATA_DIR": str(cluster.base_dir / "imposter"),
    }
    imposter = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "chatapp", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert imposter.returncode == 2, imposter.stderr
    lines = imposter.stderr.splitlines()
    assert len(lines) == 1, imposter.stderr
    assert "n2" in lines[0]
    assert lines[0].startswith("chatapp: cannot start:")

    redis = open_redis(cluster.redis_url)
    try:
        entry = await redis.hget(cluster.keys.node("n2"), "ws_url")
    finally:
        await redis.aclose()
    assert entry == cluster.ws_url("n2").encode()
    client = await cluster.user("still-there", "n2")
    assert (await discovered(client))["node_id"] in NODES


# -- 10. stopping a busy node ----------------------------------------------------------------------


class NodesDidNotStop(AssertionError):
    """Nodes still running a while after SIGTERM."""


async def heartbeating(sockets: list[Frames]) -> None:
    await until(
        lambda: all(s.heartbeat_acks >= 100 for s in sockets),
        within=15,
        what="every socket heartbeats",
    )


async def test_sigterm_stops_nodes_promptly_while_their_devices_are_busy(
    cluster: LocalCluster,
) -> None:
    """SIGTERM stops a node (exit 0) within 5 s, also while its devices keep it busy.

    Ten sockets per node heartbeat every 2 ms, so that presence is at work in
    Redis when the stop comes (ordinary traffic gets there by chance: sockets
    closing just before the stop). Two rounds of three nodes (n1-n3, then
    n4-n6); each node must exit with 0 within 5 s of its SIGTERM.
    """
    stuck: dict[str, int | None] = {}
    for round_nodes in (NODES, ("n4", "n5", "n6")):
        if round_nodes != NODES:
            await cluster.start(*round_nodes)
        sockets: list[Frames] = []
        for node in round_nodes:
            user = await cluster.user(f"busy-{node}", node)
            sockets += [
                await Frames.open(
                    cluster.ws_url(node), user.token, name=f"busy@{node}#{n}", heartbeat=0.002
                )
                for n in range(10)
            ]
        async with sockets_closed_after(*sockets):
            await heartbeating(sockets)
            codes = await asyncio.to_thread(cluster.stop, round_nodes, grace=5.0)
        stuck |= {node: code for node, code in codes.items() if code != 0}
        if stuck:
            break
    if stuck:
        raise NodesDidNotStop(f"exit codes 5 s after SIGTERM (None: still running): {stuck}")


# -- 11. ready comes first -------------------------------------------------------------------------


async def test_ready_is_the_first_frame_while_events_for_the_device_arrive(
    cluster: LocalCluster,
) -> None:
    """The answer to `hello` is `ready` before anything else, even while events are due.

    Carol keeps typing on n1 in a channel she shares with dave, so that typing
    frames for dave reach n2 all the time, also while n2 reads dave's max_seq
    from PostgreSQL for `ready` (his connection is registered by then); dave
    connects to n2 again and again (up to 40 times): each connection's first
    frame must be `ready` (and carol's typing frames follow it).
    """
    carol = await cluster.user("carol", "n1")
    dave = await cluster.user("dave", "n2")
    channel_id = (await carol.open_direct(dave.user_id)).channel_id
    typist = await Frames.open(cluster.ws_url("n1"), carol.token, name="carol@n1")
    typing = asyncio.Event()

    async def keep_typing() -> None:
        while True:
            await typist.send({"type": "typing", "channel_id": channel_id})
            typing.set()
            await asyncio.sleep(0.001)

    typer = asyncio.create_task(keep_typing())
    first_frames: list[dict[str, Any]] = []
    try:
        await asyncio.wait_for(typing.wait(), 5)
        for _ in range(40):
            async with await RawSocket.connect(cluster.ws_url("n2")) as raw:
                await raw.send({"type": "hello", "token": dave.token})
                first_frames.append(await raw.receive())
                if first_frames[-1]["type"] != "ready":
                    break
                # Carol's typing does reach this connection: events were due during its hello.
                await raw.until("typing", timeout=5)
    finally:
        typer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await typer
        await typist.close()
    early = [frame for frame in first_frames if frame["type"] != "ready"]
    assert early == [], f"first frame {early[0]} (connection {len(first_frames)})"
    assert len(first_frames) == 40
