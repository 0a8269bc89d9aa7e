"""Push notifications from a cluster of three real nodes, counted at a local receiver.

Collapse windows live in PostgreSQL (`notify.adapters.postgres_windows`), so
each offline device gets one notification per window whichever node
delivers it, with all nodes up and with the node that accepted the messages
killed inside the window.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from chatapp.client import ChatClient
from chatapp.notify.vapid import new_key_pem
from chatapp.testing import PushReceiver
from chatapp.testing.cluster import LocalCluster, local_cluster

# Long enough that sending, opening the windows and killing a node fit inside it on a
# busy 2-core machine: the notifier now also reads each member's notification level.
WINDOW_MS = 3000
SETTINGS = {
    "CHATAPP_PUSH_PROVIDERS": "webhook",
    "CHATAPP_PUSH_WEBHOOK_SECRET": "a webhook secret, long enough",
    "CHATAPP_PUSH_COLLAPSE_WINDOW_MS": str(WINDOW_MS),
    "CHATAPP_PUSH_TIMEOUT_MS": "2000",
    "CHATAPP_PUSH_RETRIES": "1",
    "CHATAPP_PUSH_RETRY_BASE_MS": "50",
    "CHATAPP_PUSH_RETRY_MAX_MS": "100",
}
# Long enough for a node that took a window over to have sent it twice, if it would.
QUIET_AFTER_SECONDS = 2.5


@pytest.fixture
async def receiver() -> AsyncIterator[PushReceiver]:
    async with PushReceiver() as running:
        yield running


@pytest.fixture
async def cluster(tmp_path: Path, receiver: PushReceiver) -> AsyncIterator[LocalCluster]:
    settings = {**SETTINGS, "CHATAPP_PUSH_WEBHOOK_URL": receiver.url("/hook")}
    async with local_cluster(tmp_path, settings=settings) as running:
        yield running


async def offline_devices(cluster: LocalCluster) -> tuple[ChatClient, int, dict[int, str]]:
    """alice on n1, and a group with bob (two devices, on n2 and n3) and carol (on n3),
    none of them connected, each device with a webhook target: the group and the devices."""
    alice = await cluster.user("alice", "n1")
    bob_phone = await cluster.user("bob", "n2")
    bob_laptop = await cluster.device("bob", "n3")
    carol = await cluster.user("carol", "n3")
    devices: dict[int, str] = {}
    for name, device in (("bob-phone", bob_phone), ("bob-laptop", bob_laptop), ("carol", carol)):
        assert device.device_id is not None
        await device.set_push_target(device.device_id, "webhook", name)
        devices[device.device_id] = name
    group = await alice.create_group("team", [bob_phone.user_id, carol.user_id])
    return alice, group.channel_id, devices


async def pushes_until_quiet(receiver: PushReceiver, expected: int) -> list[dict[str, Any]]:
    """The notification of every push that arrives: at least `expected`, then nothing more
    for QUIET_AFTER_SECONDS."""
    received: list[dict[str, Any]] = []
    deadline = time.monotonic() + 20
    while True:
        wait = max(deadline - time.monotonic(), 0.01)
        if len(received) >= expected:
            wait = QUIET_AFTER_SECONDS
        try:
            push = await receiver.next(timeout=wait)
        except TimeoutError:
            assert len(received) >= expected, f"{len(received)} of {expected} came: {received}"
            return received
        received.append(push.json()["notification"])


async def open_windows(cluster: LocalCluster, expected: int, messages: int = 1) -> None:
    """Wait until the cluster's database holds `expected` collapse windows, each counting
    `messages` messages.

    A message's windows are opened a few milliseconds after it is stored (a known limit of
    cluster mode: a node killed in between loses those pushes); the test kills the node
    only once every message is in its windows, since it checks that windows outlive it."""
    connection = await asyncpg.connect(cluster.database_url)
    query = "SELECT count(*) FROM push_windows WHERE count >= $1"
    try:
        deadline = time.monotonic() + 5
        while await connection.fetchval(query, messages) < expected:
            assert time.monotonic() < deadline, "the windows were never opened"
            await asyncio.sleep(0.02)
    finally:
        await connection.close()


def assert_one_per_device(
    pushes: list[dict[str, Any]], devices: dict[int, str], messages: list[int]
) -> None:
    per_device = Counter(push["device_id"] for push in pushes)
    assert per_device == Counter(dict.fromkeys(devices, 1)), pushes
    for push in pushes:
        assert push["count"] == len(messages), push
        assert push["message_id"] == max(messages), push
    assert len({push["id"] for push in pushes}) == len(devices)


async def test_each_offline_device_gets_one_push_per_window_with_every_node_up(
    cluster: LocalCluster, receiver: PushReceiver
) -> None:
    """Three messages sent to n1 in one window: each of the three offline devices gets
    exactly one notification counting the three, whichever node sends it."""
    alice, channel_id, devices = await offline_devices(cluster)
    sent = [
        (await alice.send_message(channel_id, f"hello {n}", client_msg_id=f"m{n}")).message
        for n in range(3)
    ]
    pushes = await pushes_until_quiet(receiver, len(devices))
    assert_one_per_device(pushes, devices, [message.message_id for message in sent])


async def test_a_window_outlives_the_node_that_opened_it(
    cluster: LocalCluster, receiver: PushReceiver
) -> None:
    """n1 accepts two messages and is SIGKILLed inside the collapse window: n2 or n3
    delivers each device's window, once."""
    alice, channel_id, devices = await offline_devices(cluster)
    first_sent = time.monotonic()
    sent = [
        (await alice.send_message(channel_id, f"hello {n}", client_msg_id=f"m{n}")).message
        for n in range(2)
    ]
    await open_windows(cluster, len(devices), messages=len(sent))
    cluster["n1"].kill()
    assert time.monotonic() - first_sent < WINDOW_MS / 1000, "killed too late to prove anything"
    assert await receiver.silent(0), "n1 sent before it was killed"
    pushes = await pushes_until_quiet(receiver, len(devices))
    assert_one_per_device(pushes, devices, [message.message_id for message in sent])


def key_files(base: Path) -> list[Path]:
    return list(base.glob("*/vapid_private.pem"))


def give_a_key_file_of_its_own(data_dir: Path) -> None:
    data_dir.mkdir(parents=True)
    (data_dir / "vapid_private.pem").write_bytes(new_key_pem())


async def test_every_node_signs_web_push_with_the_one_key_the_first_node_made(
    tmp_path: Path,
) -> None:
    """With Web Push on, the nodes share one VAPID key, kept in the database: both answer
    the same public key, no node writes a key file of its own, and a node started later
    (with a stale key file of its own) takes the cluster's."""
    settings = {
        "CHATAPP_PUSH_PROVIDERS": "webpush",
        "CHATAPP_PUSH_VAPID_SUBJECT": "mailto:ops@example.org",
    }
    async with local_cluster(tmp_path, nodes=("n1", "n2"), settings=settings) as cluster:
        alice = await cluster.user("alice", "n1")
        keys = {
            node_id: (await cluster.client(node_id, alice.token).push_config()).webpush_public_key
            for node_id in ("n1", "n2")
        }
        assert keys["n1"] is not None
        assert keys["n1"] == keys["n2"]
        assert key_files(tmp_path) == []

        give_a_key_file_of_its_own(cluster.data_dir("n3"))
        await cluster.start("n3")
        n3 = await cluster.client("n3", alice.token).push_config()
        assert n3.webpush_public_key == keys["n1"]
