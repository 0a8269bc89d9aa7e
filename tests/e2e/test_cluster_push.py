"""Push notifications from a cluster of three real nodes, counted at a local receiver.

Collapse windows live in PostgreSQL (`notify.adapters.postgres_windows`), so
each offline device gets one notification per window whichever node
delivers it, with all nodes up and with the node that accepted the messages
killed inside the window. A message whose node died before opening its
windows is taken over by another node once its pending row is stale
(`notify.pending`), and still pushed once.
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
# The default: no test with every node up lasts long enough for a pending row to go stale.
DEFAULT_PENDING_LEASE_MS = 10_000
# Short, so that a dead node's messages are taken over soon.
SHORT_PENDING_LEASE_MS = 1500
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


@pytest.fixture
async def short_lease_cluster(
    tmp_path: Path, receiver: PushReceiver
) -> AsyncIterator[LocalCluster]:
    settings = {
        **SETTINGS,
        "CHATAPP_PUSH_WEBHOOK_URL": receiver.url("/hook"),
        "CHATAPP_PUSH_PENDING_LEASE_MS": str(SHORT_PENDING_LEASE_MS),
    }
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
        body = push.json()
        received.append(body.get("notification", body))  # a webhook's wraps it; ntfy's is it


async def open_windows(cluster: LocalCluster, expected: int, messages: int = 1) -> None:
    """Wait until the cluster's database holds `expected` collapse windows, each counting
    `messages` messages.

    A message's windows are opened a few milliseconds after it is stored (a node killed in
    between has them opened by another, a lease later: another test); this test kills the
    node only once every message is in its windows, since it checks that windows outlive it."""
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


async def pending_pushes(cluster: LocalCluster) -> int:
    connection = await asyncpg.connect(cluster.database_url)
    try:
        count: int = await connection.fetchval("SELECT count(*) FROM push_pending")
        return count
    finally:
        await connection.close()


async def test_each_offline_device_gets_one_push_per_window_with_every_node_up(
    cluster: LocalCluster, receiver: PushReceiver
) -> None:
    """Three messages sent to n1 in one window: each of the three offline devices gets
    exactly one notification counting the three, whichever node sends it. n1 takes every
    message's pending row off itself, also that of a message nobody needed pushed: they
    are gone before the lease would let a sweeper take them over."""
    alice, channel_id, devices = await offline_devices(cluster)
    dave = await cluster.user("dave", "n2")
    first_sent = time.monotonic()
    unpushed = await alice.open_direct(dave.user_id)
    await alice.send_message(unpushed.channel_id, "dave has no target", client_msg_id="d")
    sent = [
        (await alice.send_message(channel_id, f"hello {n}", client_msg_id=f"m{n}")).message
        for n in range(3)
    ]
    pushes = await pushes_until_quiet(receiver, len(devices))
    assert_one_per_device(pushes, devices, [message.message_id for message in sent])
    assert await pending_pushes(cluster) == 0
    assert time.monotonic() - first_sent < DEFAULT_PENDING_LEASE_MS / 1000, "checked too late"


async def stuck_opening_windows(admin: asyncpg.Connection, node_id: str) -> int:
    """The pid of the node's statement that would open the message's windows (and take its
    pending row off), waiting for `admin`'s transaction, whose uncommitted window is in its
    way."""
    query = (
        "SELECT a.pid FROM pg_stat_activity AS a"
        " JOIN pg_locks AS waiting ON waiting.pid = a.pid AND NOT waiting.granted"
        " AND waiting.locktype = 'transactionid' AND waiting.transactionid::text = $2"
        " WHERE a.application_name = $1"
    )
    blocking = str(await admin.fetchval("SELECT pg_current_xact_id()"))
    deadline = time.monotonic() + 10
    while (pid := await admin.fetchval(query, f"chatapp-{node_id}", blocking)) is None:
        assert time.monotonic() < deadline, "the windows were never being opened"
        await asyncio.sleep(0.02)
    assert isinstance(pid, int)
    return pid


async def test_a_message_whose_node_died_before_opening_its_windows_is_pushed_once(
    short_lease_cluster: LocalCluster, receiver: PushReceiver
) -> None:
    """n1 acknowledges a message and is SIGKILLed while its notifier waits to open the
    windows: once the message's pending row is stale, n2 or n3 takes it over, and each
    offline device gets exactly one notification for it."""
    cluster = short_lease_cluster
    alice, channel_id, devices = await offline_devices(cluster)
    admin = await asyncpg.connect(cluster.database_url)
    try:
        held = admin.transaction()
        await held.start()
        # An open window for one of the devices, never committed: the statement that opens
        # the message's windows waits for this transaction to end, to know whether the
        # window is there to join. The message itself still commits.
        await admin.execute(
            "INSERT INTO push_windows (notification_id, user_id, device_id, channel_id,"
            " sender_id, message_id, seq, created_at, count, due_at)"
            " VALUES ('in the way', 0, $1, $2, 0, 0, 0, 0, 1, 0)",
            next(iter(devices)),
            channel_id,
        )
        sent_at = time.monotonic()
        sent = (await alice.send_message(channel_id, "hello", client_msg_id="m0")).message
        stuck = await stuck_opening_windows(admin, "n1")
        cluster["n1"].kill()
        # PostgreSQL sees that a client is gone only when it next writes to it, so the dead
        # node's statement would still run once it stops waiting: ended here, it is the
        # statement a node killed a moment earlier never sent.
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", stuck)
        await held.rollback()
    finally:
        await admin.close()
    pushes = await pushes_until_quiet(receiver, len(devices))
    assert_one_per_device(pushes, devices, [sent.message_id])
    assert time.monotonic() - sent_at >= (SHORT_PENDING_LEASE_MS + WINDOW_MS) / 1000
    assert await pending_pushes(cluster) == 0


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


async def test_nodes_with_different_providers_each_deliver_what_they_can(
    tmp_path: Path, receiver: PushReceiver
) -> None:
    """n1 pushes by webhook only, n2 by ntfy only. A message sent to each node, in one
    window: bob's webhook device and carol's ntfy device each get one notification counting
    both, sent by the node that has its provider, whichever node accepted each message."""
    webhook = {**SETTINGS, "CHATAPP_PUSH_WEBHOOK_URL": receiver.url("/hook")}
    ntfy = {
        "CHATAPP_PUSH_PROVIDERS": "ntfy",
        "CHATAPP_PUSH_ALLOW_HTTP_TARGETS": "true",
        "CHATAPP_PUSH_ALLOW_PRIVATE_TARGETS": "true",
    }
    async with local_cluster(
        tmp_path, nodes=("n1", "n2"), settings=SETTINGS, node_settings={"n1": webhook, "n2": ntfy}
    ) as cluster:
        alice = await cluster.user("alice", "n1")
        bob, carol = await cluster.user("bob", "n1"), await cluster.user("carol", "n2")
        assert bob.device_id is not None
        assert carol.device_id is not None
        await bob.set_push_target(bob.device_id, "webhook", "bob")
        await carol.set_push_target(carol.device_id, "ntfy", receiver.url("/carol-topic"))
        group = await alice.create_group("team", [bob.user_id, carol.user_id])
        on_n2 = cluster.client("n2", alice.token)
        sent = [
            (await alice.send_message(group.channel_id, "one", client_msg_id="m1")).message,
            (await on_n2.send_message(group.channel_id, "two", client_msg_id="m2")).message,
        ]
        pushes = await pushes_until_quiet(receiver, 2)
    # Each device has a target of one provider only, so its push came that way.
    assert_one_per_device(
        pushes, {bob.device_id: "bob", carol.device_id: "carol"}, [m.message_id for m in sent]
    )


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
