"""Crash safety: the server is SIGKILLed at random moments under load and restarted.

Several users send all the time, to 1:1 and group channels: some over the
WebSocket with `RealtimeClient` (which resends an unacknowledged send with
the same `client_msg_id` on every new connection and catches up by seq), the
others over HTTP, retrying each send with its `client_msg_id` until it is
answered. The server process is killed with SIGKILL at moments drawn from a
seeded random generator (the seed is printed; set CHATAPP_CRASH_SEED to run the
same moments again) and restarted on the same data folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from chatapp.client import Backoff, ChatApiError, ChatClient, MessageEvent, RealtimeClient
from chatapp.protocol.http import MessageOut
from chatapp.testing import ServerProcess

PASSWORD = "correct horse battery"
KILLS = 6
# Acknowledged sends between a restart and the next kill, so each crash hits a busy server.
PROGRESS_BETWEEN_KILLS = 15
FAST_RECONNECT = Backoff(initial=0.05, maximum=0.4, multiplier=2.0, jitter=0.2)

Place = tuple[int, int]
"""(channel_id, message_id): where a message is stored."""


@dataclass(frozen=True)
class Acked:
    channel_id: int
    message_id: int
    seq: int
    text: str


@dataclass
class Ledger:
    """What the senders were told: acknowledged sends by (sender_id, client_msg_id)."""

    acked: dict[tuple[int, str], Acked] = field(default_factory=dict)
    progress: asyncio.Event = field(default_factory=asyncio.Event)

    def record(self, sender_id: int, message: MessageOut, seq: int) -> None:
        key = (sender_id, message.client_msg_id)
        acked = Acked(message.channel_id, message.message_id, seq, message.text)
        previous = self.acked.setdefault(key, acked)
        assert previous == acked, f"{key} acknowledged twice, differently: {previous}, {acked}"
        self.progress.set()


@dataclass
class Device:
    """A RealtimeClient and everything it delivered: events, and its own sends' acks."""

    name: str
    user_id: int
    live: RealtimeClient
    seen: dict[int, Place] = field(default_factory=dict)
    repeats: list[int] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def saw(self, seq: int, message: MessageOut) -> None:
        if seq in self.seen:
            self.repeats.append(seq)
        self.seen[seq] = (message.channel_id, message.message_id)
        self.changed.set()

    async def listen(self) -> None:
        async for event in self.live.events():
            if isinstance(event, MessageEvent):
                self.saw(event.seq, event.message)


async def signed_in(url: str, name: str) -> ChatClient:
    client = ChatClient(url)
    await client.signup(name, PASSWORD)
    await client.login(name, PASSWORD, device_name="http")
    return client


async def token_of_new_device(url: str, name: str) -> str:
    async with ChatClient(url) as client:
        answer = await client.login(name, PASSWORD, device_name="websocket")
        return answer.token


async def all_messages(client: ChatClient, channel_id: int) -> list[MessageOut]:
    messages: list[MessageOut] = []
    while True:
        after = messages[-1].message_id if messages else 0
        page = await client.messages(channel_id, after=after, limit=200)
        messages += page.messages
        if not page.has_more:
            return messages


async def inbox(client: ChatClient) -> dict[int, Place]:
    """The user's inbox as seq -> place; AssertionError unless the seqs are 1, 2, 3, ..."""
    entries: dict[int, Place] = {}
    since = 0
    while True:
        page = await client.sync(since, limit=1000)
        for event in page.events:
            assert event.seq not in entries, f"seq {event.seq} twice in one inbox"
            assert event.message is not None, "only sends here: no update entries"
            entries[event.seq] = (event.message.channel_id, event.message.message_id)
        since = page.next_since
        if not page.has_more:
            break
    assert list(entries) == list(range(1, len(entries) + 1)), "inbox seqs are not contiguous"
    return entries


async def retrying(call: Callable[[], Awaitable[MessageOut | None]]) -> None:
    """Until the server answers: connection failures and 503 mean it is down or starting."""
    while True:
        try:
            await call()
            return
        except (aiohttp.ClientError, OSError):
            pass
        except ChatApiError as refusal:
            if refusal.status != 503:
                raise
        await asyncio.sleep(0.05)


@dataclass
class World:
    """Four users, three channels, the devices, and the server they talk to."""

    server: ServerProcess
    ledger: Ledger
    http: dict[str, ChatClient]
    devices: list[Device]
    channels: dict[str, int]
    members: dict[int, set[int]]
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def send_over_websocket(self, device: Device, channel: str) -> None:
        channel_id = self.channels[channel]
        for index in range(1_000_000):
            if self.stop.is_set():
                return
            cmid = f"{device.name}-{channel}-{index}"
            ack = await device.live.send(channel_id, f"{device.name} says {index}", cmid)
            self.ledger.record(device.user_id, ack.message, ack.seq)
            device.saw(ack.seq, ack.message)

    async def send_over_http(self, name: str, channel: str) -> None:
        client, channel_id = self.http[name], self.channels[channel]
        for index in range(1_000_000):
            if self.stop.is_set():
                return
            cmid, text = f"{name}-http-{channel}-{index}", f"{name} posts {index}"

            async def send(cmid: str = cmid, text: str = text) -> MessageOut:
                answer = await client.send_message(channel_id, text, cmid)
                self.ledger.record(client.user_id, answer.message, answer.seq)
                return answer.message

            await retrying(send)


async def build_world(server: ServerProcess) -> World:
    url = server.url
    http = {name: await signed_in(url, name) for name in ("alice", "bob", "carol", "dave")}
    alice, bob, carol, dave = http.values()
    channels = {
        "ab": (await alice.open_direct(bob.user_id)).channel_id,
        "cd": (await carol.open_direct(dave.user_id)).channel_id,
        "team": (
            await alice.create_group("team", [bob.user_id, carol.user_id, dave.user_id])
        ).channel_id,
    }
    members = {
        channels["ab"]: {alice.user_id, bob.user_id},
        channels["cd"]: {carol.user_id, dave.user_id},
        channels["team"]: {alice.user_id, bob.user_id, carol.user_id, dave.user_id},
    }
    devices = []
    for name, owner in [("alice-ws", alice), ("bob-ws", bob), ("bob-phone", bob),
                        ("carol-ws", carol), ("dave-ws", dave)]:  # fmt: skip
        token = await token_of_new_device(url, name.split("-")[0])
        live = RealtimeClient(owner.ws_url, token, last_seq=0, backoff=FAST_RECONNECT)
        devices.append(Device(name, owner.user_id, live))
    return World(server, Ledger(), http, devices, channels, members)


async def check_store(world: World, *, final: bool) -> dict[int, dict[int, Place]]:
    """Every acknowledged send is stored once where it was acknowledged; message ids and
    inbox seqs have no gaps or repeats. With `final`, each inbox holds exactly the messages
    of its user's channels, and each ack's seq is that message in the sender's inbox.

    Returns each user's inbox. Reads with fresh connections: pooled ones may have died
    with the old process."""
    acked = dict(world.ledger.acked)
    readers = {
        name: ChatClient(world.server.url, token=client.token)
        for name, client in world.http.items()
    }
    try:
        stored, counts = await _stored_messages(world, readers)
        inboxes = {readers[name].token: await inbox(readers[name]) for name in readers}
    finally:
        for reader in readers.values():
            await reader.close()
    by_user = {world.http[name].user_id: inboxes[readers[name].token] for name in readers}
    for key, ack in acked.items():
        assert key in stored, f"acknowledged {key} {ack} is missing after the restart"
        message = stored[key]
        place = (message.channel_id, message.message_id, message.text)
        assert place == (ack.channel_id, ack.message_id, ack.text), f"{key}: {ack} -> {message}"
    if final:
        for user_id, entries in by_user.items():
            expected = {
                (channel_id, message_id)
                for channel_id, members in world.members.items()
                if user_id in members
                for message_id in range(1, counts[channel_id] + 1)
            }
            assert len(entries) == len(expected), f"user {user_id}: inbox length"
            assert set(entries.values()) == expected, f"user {user_id}: inbox entries"
        for (sender_id, cmid), ack in acked.items():
            found = by_user[sender_id].get(ack.seq)
            assert found == (ack.channel_id, ack.message_id), f"{cmid}: ack seq {ack.seq}"
    return by_user


async def _stored_messages(
    world: World, readers: dict[str, ChatClient]
) -> tuple[dict[tuple[int, str], MessageOut], dict[int, int]]:
    """Every stored message by (sender_id, client_msg_id), and each channel's count."""
    stored: dict[tuple[int, str], MessageOut] = {}
    counts: dict[int, int] = {}
    for name, channel_id in world.channels.items():
        reader = readers["carol"] if name == "cd" else readers["alice"]
        messages = await all_messages(reader, channel_id)
        ids = [message.message_id for message in messages]
        assert ids == list(range(1, len(ids) + 1)), f"channel {name}: message ids {ids[:50]}..."
        counts[channel_id] = len(messages)
        for message in messages:
            key = (message.sender_id, message.client_msg_id)
            assert key not in stored, f"{key} stored twice: {stored[key]} and {message}"
            stored[key] = message
    return stored, counts


async def wait_for_progress(ledger: Ledger, count: int) -> None:
    target = len(ledger.acked) + count
    while len(ledger.acked) < target:
        ledger.progress.clear()
        await ledger.progress.wait()


async def wait_caught_up(device: Device, entries: dict[int, Place]) -> None:
    """Until the device has delivered every seq of its user's inbox."""
    while not device.seen.keys() >= entries.keys():
        device.changed.clear()
        await device.changed.wait()


async def test_acknowledged_messages_survive_repeated_sigkill(tmp_path: Path) -> None:
    """Six SIGKILLs at random moments under continuous WebSocket and HTTP sending: after each
    restart every acknowledged message is stored exactly once, message ids and inbox seqs are
    contiguous; at the end nothing is stored twice, retried sends stored once, and every
    device has converged on its user's inbox, seq for seq."""
    seed = int(os.environ.get("CHATAPP_CRASH_SEED") or random.randrange(2**32))
    print(f"crash seed: {seed} (CHATAPP_CRASH_SEED={seed} repeats these kill moments)")
    rng = random.Random(seed)
    server = ServerProcess(tmp_path / "data").start()
    world = await build_world(server)
    tasks: list[asyncio.Task[None]] = []
    try:
        async with asyncio.timeout(120):
            for device in world.devices:
                await device.live.start()
                tasks.append(asyncio.create_task(device.listen()))
            await asyncio.gather(*(device.live.wait_ready() for device in world.devices))
            alice_ws, bob_ws = world.devices[0], world.devices[1]
            senders = [
                asyncio.create_task(world.send_over_websocket(alice_ws, "ab")),
                asyncio.create_task(world.send_over_websocket(alice_ws, "team")),
                asyncio.create_task(world.send_over_websocket(bob_ws, "ab")),
                asyncio.create_task(world.send_over_websocket(bob_ws, "team")),
                asyncio.create_task(world.send_over_http("carol", "team")),
                asyncio.create_task(world.send_over_http("carol", "cd")),
                asyncio.create_task(world.send_over_http("dave", "cd")),
            ]
            for kill in range(KILLS):
                async with asyncio.timeout(30):
                    await wait_for_progress(world.ledger, PROGRESS_BETWEEN_KILLS)
                await asyncio.sleep(rng.uniform(0.0, 0.6))
                acked_before = len(world.ledger.acked)
                server.kill()
                await asyncio.sleep(rng.uniform(0.0, 0.3))
                started = time.monotonic()
                await asyncio.to_thread(server.start)
                print(f"kill {kill + 1}: {acked_before} acknowledged; "
                      f"restarted in {time.monotonic() - started:.2f} s")  # fmt: skip
                await check_store(world, final=False)
            world.stop.set()
            await asyncio.gather(*senders)
            inboxes = await check_store(world, final=True)
            for device in world.devices:
                with contextlib.suppress(TimeoutError):  # the comparison below tells what is amiss
                    async with asyncio.timeout(20):
                        await wait_caught_up(device, inboxes[device.user_id])
            for device in world.devices:
                assert device.live.error is None, f"{device.name} stopped: {device.live.error}"
                assert not device.repeats, f"{device.name} got seqs twice: {device.repeats}"
                assert device.seen == inboxes[device.user_id], f"{device.name} diverged"
        assert len(world.ledger.acked) > KILLS * PROGRESS_BETWEEN_KILLS
    finally:
        for task in tasks:
            task.cancel()
        for device in world.devices:
            await device.live.close()
        for client in world.http.values():
            await client.close()
        with contextlib.suppress(Exception):
            server.stop()
