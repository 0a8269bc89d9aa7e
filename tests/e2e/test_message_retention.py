"""`message_retention_days` through the real stack: old messages become deleted ones.

The servers run in this process on a `ManualClock`, so a test moves time by
days instead of waiting, and runs a sweep when it wants one (the background
sweeps take turns with it).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from chatapp.client import ChatClient
from chatapp.clock import ManualClock
from chatapp.messaging.retention import DAY_MS, SERVER_ID, Retention
from chatapp.testing import RawSocket, RunningServer, run_server
from tests.e2e.whole_reads import all_messages

DAY_S = DAY_MS / 1000


def retention_of(server: RunningServer) -> Retention:
    retention = server.services.retention
    assert retention is not None
    return retention


async def deleted_updates(client: ChatClient, channel_id: int) -> list[tuple[int, int]]:
    """`(message_id, deleted_by)` of every `deleted` update entry of the channel in the
    client's inbox."""
    found: list[tuple[int, int]] = []
    since = 0
    while True:
        page = await client.request("GET", "/api/v1/sync", params={"since": str(since)})
        for event in page["events"]:
            update = event.get("update")
            if update is not None and (update["kind"], update["channel_id"]) == (
                "deleted",
                channel_id,
            ):
                found.append((update["message_id"], update["deleted_by"]))
        since = page["next_since"]
        if not page["has_more"]:
            return found


@contextlib.asynccontextmanager
async def sending(client: ChatClient, channel_id: int, prefix: str) -> AsyncIterator[list[int]]:
    """Sends one message after another while the block runs; the ids acknowledged."""
    acknowledged: list[int] = []
    stop = asyncio.Event()

    async def keep_sending() -> None:
        number = 0
        while not stop.is_set():
            sent = await client.send_message(channel_id, f"{prefix} {number}", f"{prefix}-{number}")
            acknowledged.append(sent.message.message_id)
            number += 1

    task = asyncio.create_task(keep_sending())
    try:
        yield acknowledged
    finally:
        stop.set()
        await task


async def test_old_messages_become_deleted_while_sends_go_on(tmp_path: Path) -> None:
    """A sweep turns every message older than the retention into a deleted message, by the
    server (`deleted_by` 0): its text is gone, its id stays, each member's inbox gets the
    `deleted` update and live sockets the frame. Newer messages, and the messages sent while
    the sweep runs, are untouched; /metrics counts what expired."""
    clock = ManualClock()
    async with run_server(tmp_path / "data", clock=clock, message_retention_days=3) as server:
        alice, bob = await server.user("alice"), await server.user("bob")
        group = await alice.create_group("team", [bob.user_id])
        other = await bob.open_direct(alice.user_id)
        old = [
            (await alice.send_message(group.channel_id, f"old {n}", f"old-{n}")).message.message_id
            for n in range(150)
        ]
        await bob.send_message(other.channel_id, "old direct", "old-direct")
        clock.advance(2 * DAY_S)
        kept = [
            (await bob.send_message(group.channel_id, f"kept {n}", f"kept-{n}")).message.message_id
            for n in range(5)
        ]
        clock.advance(1.5 * DAY_S)  # the first 151 are 3.5 days old, the 5 others 1.5
        socket = await RawSocket.open(server.ws_url, bob.token or "")
        await socket.until("synced")

        async with sending(alice, group.channel_id, "during") as during:
            swept = await retention_of(server).sweep()
            sent_while_sweeping = len(during)

        assert (swept.expired, swept.channels) == (151, 2)
        assert sent_while_sweeping > 0
        messages = {m["message_id"]: m for m in await all_messages(bob, group.channel_id)}
        assert sorted(messages) == list(range(1, len(messages) + 1))
        for message_id in old:
            assert (messages[message_id]["deleted"], messages[message_id]["text"]) == (True, "")
        for message_id in kept + during:
            assert messages[message_id]["deleted"] is False
        [direct] = await all_messages(alice, other.channel_id)
        assert direct["deleted"] is True
        expected = [(message_id, SERVER_ID) for message_id in old]
        assert await deleted_updates(bob, group.channel_id) == expected
        assert await deleted_updates(alice, group.channel_id) == expected

        frames: list[dict[str, Any]] = []
        async with asyncio.timeout(10):
            while len([f for f in frames if f.get("type") == "update"]) < len(old) + 1:
                frames.append(await socket.receive())
        updates = [f["update"] for f in frames if f.get("type") == "update"]
        assert {(u["kind"], u["deleted_by"]) for u in updates} == {("deleted", SERVER_ID)}
        await socket.close()

        again = await retention_of(server).sweep()
        assert again.expired == 0
        metrics = (await server.client().raw_request("GET", "/metrics")).text
        assert "chatapp_messages_expired_total 151.0" in metrics
        assert 'chatapp_retention_sweeps_total{outcome="done"}' in metrics


async def test_without_a_retention_nothing_is_swept(tmp_path: Path) -> None:
    """The default, 0 days, keeps every message forever: no sweeper runs."""
    async with run_server(tmp_path / "data", clock=ManualClock()) as server:
        assert server.services.retention is None


@pytest.mark.slow
async def test_on_a_cluster_one_node_sweeps_and_each_message_is_deleted_once(
    tmp_path: Path,
) -> None:
    """Two nodes sweeping at the same moment: one has the turn (a PostgreSQL advisory lock),
    and every expired message gets one `deleted` update entry, whoever swept it; messages
    sent since are untouched, on either node, and so are sends made meanwhile."""
    clock = ManualClock()
    async with two_nodes(tmp_path, clock, message_retention_days=1) as (first, second):
        alice = await first.user("alice")
        bob = await second.user("bob")
        group = await alice.create_group("team", [bob.user_id])
        old = [
            (await alice.send_message(group.channel_id, f"old {n}", f"old-{n}")).message.message_id
            for n in range(40)
        ]
        clock.advance(2 * DAY_S)
        kept = (await bob.send_message(group.channel_id, "kept", "kept")).message.message_id

        async with sending(bob, group.channel_id, "during") as during:
            sweeps = await asyncio.gather(retention_of(first).sweep(), retention_of(second).sweep())
        assert sum(sweep.expired for sweep in sweeps) == len(old)
        assert len(during) > 0
        messages = {m["message_id"]: m for m in await all_messages(alice, group.channel_id)}
        assert sorted(messages) == list(range(1, len(messages) + 1))
        assert all(messages[message_id]["deleted"] for message_id in old)
        assert not any(messages[m]["deleted"] for m in [kept, *during])
        for client in (alice, bob):
            assert await deleted_updates(client, group.channel_id) == [
                (message_id, SERVER_ID) for message_id in old
            ]
        assert sum(sweep.expired for sweep in await asyncio.gather(
            retention_of(first).sweep(), retention_of(second).sweep()
        )) == 0  # fmt: skip


@contextlib.asynccontextmanager
async def two_nodes(
    tmp_path: Path, clock: ManualClock, **settings: Any
) -> AsyncIterator[tuple[RunningServer, RunningServer]]:
    """Two cluster nodes in this process on one clock, a fresh schema and cluster name."""
    import asyncpg

    from chatapp.cluster.connection import open_redis
    from chatapp.cluster.keys import ClusterKeys
    from chatapp.cluster.reset import forget_cluster
    from chatapp.testing.cluster import with_search_path
    from chatapp.testing.cluster_services import fresh_name, postgres_url, redis_url

    database, redis = postgres_url(), redis_url()
    schema, name = fresh_name("chatapp_retention"), fresh_name("retention")
    admin = await asyncpg.connect(database)
    await admin.execute(f'CREATE SCHEMA "{schema}"')
    cluster = {
        "database_url": with_search_path(database, schema),
        "redis_url": redis,
        "cluster_name": name,
        **settings,
    }
    try:
        async with (
            run_server(tmp_path / "n1", clock=clock, node_id="n1", **cluster) as first,
            run_server(tmp_path / "n2", clock=clock, node_id="n2", **cluster) as second,
        ):
            yield first, second
    finally:
        client = open_redis(redis)
        try:
            await forget_cluster(client, ClusterKeys(name))
        finally:
            await client.aclose()
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()
