"""The web client on a cluster of two real nodes, in Chromium: when the node holding its
socket dies, the page asks discovery where to go and carries on there."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from chatapp.client import ChatClient
from chatapp.testing import RawSocket
from chatapp.testing.cluster import LocalCluster, local_cluster
from tests.e2e.test_web_client import PASSWORD, Person, browser, chromium  # noqa: F401


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[LocalCluster]:
    """n1 serves the page (as a load balancer's address would); n2 accepts sockets from it,
    as every node of a cluster must accept them from the page's public origin."""
    async with local_cluster(tmp_path, nodes=("n1",)) as running:
        running.settings["CHATAPP_ALLOWED_ORIGINS"] = running.url("n1")
        await running.start("n2")
        yield running


async def websockets_on(client: ChatClient) -> float:
    """How many sockets the node `client` talks to holds, from its /metrics."""
    text = (await client.raw_request("GET", "/metrics")).text
    for line in text.splitlines():
        if line.startswith('chatapp_open_connections{kind="websocket"}'):
            return float(line.split()[-1])
    raise AssertionError("no chatapp_open_connections in /metrics")


async def heartbeats(sockets: list[RawSocket]) -> None:
    """Heartbeat as a client does, so the sockets outlive the idle close (twice the
    presence timeout without a frame)."""
    while True:
        for socket in sockets:
            await socket.send({"type": "heartbeat"})
        await asyncio.sleep(0.5)


async def until_discovery_names(
    cluster: LocalCluster, client: ChatClient, node_id: str, within: float = 10
) -> None:
    deadline = time.monotonic() + within
    while await client.discovery() != cluster.ws_url(node_id):
        assert time.monotonic() < deadline, f"discovery never named {node_id}"
        await asyncio.sleep(0.1)


async def test_the_page_moves_to_a_live_node_when_its_node_dies(
    browser: Browser,  # noqa: F811
    cluster: LocalCluster,
) -> None:
    """n1 serves the page and is the busier node, so bob's socket goes to n2; n2 is
    SIGKILLed: the page reconnects to n1 (the node it knew is gone for good) and a message
    sent afterwards arrives."""
    alice = await cluster.user("alice", "n1")
    bob_api = await cluster.user("bob", "n1", PASSWORD)
    channel = await alice.open_direct(bob_api.user_id)
    await alice.send_message(channel.channel_id, "before")
    busy = [await RawSocket.open(cluster.ws_url("n1"), alice.token or "") for _ in range(3)]
    beating = asyncio.create_task(heartbeats(busy))
    try:
        await until_discovery_names(cluster, alice, "n2")
        bob = await Person.open(browser, cluster.url("n1"), "bob")
        await bob.log_in()
        await bob.open_channel("alice")
        await bob.expect_messages(["before"])
        assert await websockets_on(cluster.client("n2")) == 1

        cluster["n2"].kill()
        await expect(bob.page.locator(".connection")).not_to_have_attribute("data-state", "online")
        await expect(bob.page.locator(".connection")).to_have_attribute(
            "data-state", "online", timeout=20_000
        )
        assert await websockets_on(cluster.client("n1")) == len(busy) + 1
        await alice.send_message(channel.channel_id, "after")
        await bob.expect_messages(["before", "after"])
        await bob.close()
    finally:
        beating.cancel()
        for raw in busy:
            await raw.close()
