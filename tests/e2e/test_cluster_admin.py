"""The admin side of a cluster: roles set by the CLI on every node, and `GET /admin/cluster`.

Three `chatapp serve` nodes n1, n2 and n3 on a fresh PostgreSQL schema and
cluster name (`chatapp.testing.cluster.local_cluster`), with presence_timeout
2 s: a node's registry entry lives 2 s past its last refresh, and nodes
refresh it (with their connection counts) every 2/3 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chatapp.client import ChatApiError, ChatClient
from chatapp.protocol.admin import NodeOut
from chatapp.testing import RawSocket
from chatapp.testing.cluster import LocalCluster, local_cluster

pytestmark = pytest.mark.slow

NODES = ("n1", "n2", "n3")
PRESENCE_TIMEOUT = 2.0  # seconds: CHATAPP_PRESENCE_TIMEOUT_MS of FAST_CLUSTER_SETTINGS
COUNTS_WITHIN = 5.0  # seconds: how soon connection counts reach the registry (the contract's)
# What watching adds to the registry's own expiry: one poll (0.05 s) and one HTTP round trip.
SLACK = 0.25
ADMIN_PASSWORD = "root-password"


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[LocalCluster]:
    async with local_cluster(tmp_path, nodes=NODES) as running:
        yield running


@contextlib.asynccontextmanager
async def heartbeating(sockets: list[RawSocket]) -> AsyncIterator[None]:
    """Keep the sockets live (heartbeats every 0.5 s), as a client would, while inside."""

    async def beat() -> None:
        while True:
            for socket in sockets:
                await socket.send({"type": "heartbeat"})
            await asyncio.sleep(0.5)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def status_of_admin_cluster(client: ChatClient) -> int:
    return (await client.raw_request("GET", "/api/v1/admin/cluster")).status


async def nodes_until(
    client: ChatClient, expected: dict[str, int], *, within: float
) -> list[NodeOut]:
    """Poll GET /admin/cluster until it lists exactly these node ids with these connection
    counts, and answer that list; AssertionError after `within` seconds."""
    started = time.monotonic()
    while True:
        nodes = await client.cluster_nodes()
        if {node.node_id: node.connections for node in nodes} == expected:
            return nodes
        if time.monotonic() - started > within:
            raise AssertionError(f"not within {within} s: {expected}, still {nodes}")
        await asyncio.sleep(0.05)


async def test_roles_set_by_the_cli_on_a_cluster_count_at_once_on_every_node(
    cluster: LocalCluster,
) -> None:
    """`create-user --admin`, `grant-admin` and `revoke-admin` in cluster mode act on the
    cluster's database: the admin logs in as one on any node, and a member's token is let
    into the admin API on every node as soon as the grant returns, and refused on every node
    as soon as the revoke returns."""
    created = await cluster.run_cli(
        "create-user", "root", "--admin", "--password-stdin", stdin=f"{ADMIN_PASSWORD}\n"
    )
    assert created.returncode == 0, created.stderr
    assert "created admin root" in created.stdout
    root = cluster.client("n3")
    assert (await root.login("root", ADMIN_PASSWORD)).user.role == "admin"

    alice = await cluster.user("alice", "n1")
    on_each = cluster.clients_of(alice, NODES)
    assert [await status_of_admin_cluster(client) for client in on_each.values()] == [403] * 3

    granted = await cluster.run_cli("grant-admin", "alice")
    assert granted.returncode == 0, granted.stderr
    assert [await status_of_admin_cluster(client) for client in on_each.values()] == [200] * 3
    assert [(await client.me()).role for client in on_each.values()] == ["admin"] * 3

    revoked = await cluster.run_cli("revoke-admin", "alice")
    assert revoked.returncode == 0, revoked.stderr
    assert [await status_of_admin_cluster(client) for client in on_each.values()] == [403] * 3
    with pytest.raises(ChatApiError) as refused:
        await on_each["n2"].cluster_nodes()
    assert (refused.value.status, refused.value.code) == (403, "forbidden")


async def test_admin_cluster_lists_the_live_nodes_and_drops_a_killed_one_in_time(
    cluster: LocalCluster,
) -> None:
    """GET /admin/cluster on any node lists n1, n2 and n3, each with its own ws_url and its
    live WebSockets (1, 2 and 0 here) within 5 s, started before it was last seen; after n3
    is SIGKILLed, the others stop listing it within presence_timeout, while n1 and n2 keep
    their counts and their last-seen times move on."""
    created = await cluster.run_cli(
        "create-user", "root", "--admin", "--password-stdin", stdin=f"{ADMIN_PASSWORD}\n"
    )
    assert created.returncode == 0, created.stderr
    admins = {node_id: cluster.client(node_id) for node_id in NODES}
    for client in admins.values():
        await client.login("root", ADMIN_PASSWORD)
    member = await cluster.user("alice", "n1")
    sockets = [
        await RawSocket.open(cluster.ws_url(node_id), member.token or "")
        for node_id in ("n1", "n2", "n2")
    ]
    try:
        for socket in sockets:
            await socket.until("synced")
        async with heartbeating(sockets):
            expected = {"n1": 1, "n2": 2, "n3": 0}
            for asked in NODES:
                nodes = await nodes_until(admins[asked], expected, within=COUNTS_WITHIN)
                assert [node.node_id for node in nodes] == list(NODES)
                for node in nodes:
                    assert node.ws_url == cluster.ws_url(node.node_id)
                    assert 0 < node.started_at <= node.last_seen_at
            seen_before = {node.node_id: node.last_seen_at for node in nodes}

            cluster["n3"].kill()
            killed_at = time.monotonic()
            survivors = {"n1": 1, "n2": 2}
            nodes = await nodes_until(admins["n1"], survivors, within=PRESENCE_TIMEOUT + SLACK)
            dropped_after = time.monotonic() - killed_at
            assert dropped_after <= PRESENCE_TIMEOUT + SLACK, dropped_after
            await asyncio.sleep(1.0)  # more than a refresh interval
            nodes = await nodes_until(admins["n2"], survivors, within=COUNTS_WITHIN)
            for node in nodes:
                assert node.last_seen_at > seen_before[node.node_id]
    finally:
        for socket in sockets:
            await socket.close()
