"""A node SIGKILLed under load: how long until its devices are resynced on the others.

    python -m bench.node_kill [--devices 99] [--rate 50] [--json PATH]

Three `chatapp serve` nodes on the machine's PostgreSQL and Redis (a fresh
schema and cluster name, as the cluster tests make them), at the default
presence settings a self-hoster runs. One group of `devices` members, one
device each, spread over the three nodes, and a sender on the second node
sending into it at `rate` messages a second. After `before` seconds the
first node is SIGKILLed. Its devices are `chatapp.client.RealtimeClient`s, as
an application would use: each notices the drop, asks discovery (any node
that answers, as through a load balancer) where to go, reconnects with its
`last_seq` and resyncs. Measured: from the kill to the last of them caught
up; then, once sending has stopped, whether every device got every
acknowledged message exactly once.

This is not part of `python -m bench`: it needs PostgreSQL and Redis as the
cluster tests do, and its one number is recorded in `docs/scaling.md`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chatapp.client import Backoff, ChatClient, RealtimeClient, State
from chatapp.client.frames import MessageEvent
from chatapp.testing.cluster import LocalCluster, local_cluster

NODES = ("n1", "n2", "n3")
KILLED = "n1"
SENDER_NODE = "n2"
# What a self-hoster runs: the defaults, written out so the run says what it measured.
SETTINGS = {"CHATAPP_HEARTBEAT_INTERVAL_MS": "5000", "CHATAPP_PRESENCE_TIMEOUT_MS": "30000"}


@dataclass
class Device:
    name: str
    node: str
    client: RealtimeClient
    received: list[int] = field(default_factory=list)
    reader: asyncio.Task[None] | None = None

    async def read(self) -> None:
        async for event in self.client.events():
            if isinstance(event, MessageEvent):
                self.received.append(event.message.message_id)


def discovery_of(cluster: LocalCluster, token: str) -> Any:
    """Discovery as behind a load balancer: whichever node answers first, in random order."""

    async def discover() -> str:
        order = list(NODES)
        random.shuffle(order)
        for node in order:
            try:
                return await asyncio.wait_for(cluster.client(node, token).discovery(), 1.0)
            except Exception:
                continue
        raise ConnectionError("no node answered discovery")

    return discover


async def run(base: Path, devices: int, rate: float, before: float, after: float) -> dict[str, Any]:
    async with local_cluster(base, nodes=NODES, settings=SETTINGS) as cluster:
        sender_http = await cluster.user("sender", SENDER_NODE)
        members: list[tuple[str, str, ChatClient]] = []
        for index in range(devices):
            node = NODES[index % len(NODES)]
            members.append((f"member{index}", node, await cluster.user(f"member{index}", node)))
        group = await sender_http.create_group(
            "everyone", [client.user_id for _, _, client in members]
        )
        fleet: list[Device] = []
        backoff = Backoff(initial=0.1, maximum=1.0)
        for name, node, http in members:
            assert http.token is not None
            client = RealtimeClient(
                cluster.ws_url(node),
                http.token,
                last_seq=0,
                backoff=backoff,
                discover=discovery_of(cluster, http.token),
            )
            device = Device(name, node, client)
            await client.start()
            fleet.append(device)
        for device in fleet:
            await asyncio.wait_for(device.client.wait_ready(), 30)
            device.reader = asyncio.create_task(device.read())
        assert sender_http.token is not None
        sender = RealtimeClient(cluster.ws_url(SENDER_NODE), sender_http.token, last_seq=0)
        await sender.start()
        await asyncio.wait_for(sender.wait_ready(), 30)

        acked: list[int] = []
        stop = asyncio.Event()

        async def send_forever() -> None:
            count = 0
            started = time.perf_counter()
            while not stop.is_set():
                count += 1
                ack = await sender.send(group.channel_id, f"message {count}", f"m{count}")
                acked.append(ack.message.message_id)
                pause = started + count / rate - time.perf_counter()
                if pause > 0:
                    await asyncio.sleep(pause)

        sending = asyncio.create_task(send_forever())
        await asyncio.sleep(before)
        moved = [device for device in fleet if device.node == KILLED]
        killed_at = time.perf_counter()
        await asyncio.to_thread(cluster[KILLED].kill)
        # Each moved device: first seen dropped, then caught up again somewhere else.
        resynced_after: dict[str, float] = {}

        async def watch(device: Device) -> None:
            # The client has no event for a drop: its state is what says it noticed.
            while device.client.state is State.READY:  # noqa: ASYNC110
                await asyncio.sleep(0.005)
            await device.client.wait_ready()
            resynced_after[device.name] = time.perf_counter() - killed_at

        with contextlib.suppress(TimeoutError):  # reported as not all resynced
            await asyncio.wait_for(asyncio.gather(*(watch(d) for d in moved)), 120)
        await asyncio.sleep(after)
        stop.set()
        await sending
        await sender.close()
        deadline = time.monotonic() + 30
        wanted = set(acked)
        while time.monotonic() < deadline and any(  # noqa: ASYNC110 (frames counted as read)
            not wanted <= set(device.received) for device in fleet
        ):
            await asyncio.sleep(0.1)
        for device in fleet:
            await device.client.close()
            if device.reader is not None:
                await device.reader
        lost = sum(len(wanted - set(device.received)) for device in fleet)
        duplicated = sum(len(device.received) - len(set(device.received)) for device in fleet)
        nodes_after = {
            device.name: device.client.ws_url for device in moved if device.name in resynced_after
        }
        times = sorted(resynced_after.values())
        return {
            "devices": len(fleet),
            "moved": len(moved),
            "resynced": len(resynced_after),
            "rate": rate,
            "messages_acked": len(acked),
            "seconds_until_all_resynced": round(times[-1], 3) if len(times) == len(moved) else None,
            "resync_p50_s": round(times[len(times) // 2], 3) if times else None,
            "moved_to_killed_node_again": sum(
                url == cluster.ws_url(KILLED) for url in nodes_after.values()
            ),
            "lost": lost,
            "duplicated": duplicated,
            "settings": SETTINGS,
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.node_kill", description=__doc__)
    parser.add_argument("--devices", type=int, default=99, help="group members (at most 99)")
    parser.add_argument("--rate", type=float, default=50.0, help="messages per second")
    parser.add_argument("--before", type=float, default=3.0, help="seconds before the kill")
    parser.add_argument("--after", type=float, default=3.0, help="seconds of sending after")
    parser.add_argument("--json", type=Path, help="where to write the result")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="node-kill-") as base:
        result = asyncio.run(run(Path(base), args.devices, args.rate, args.before, args.after))
    text = json.dumps(result, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")
    return 0 if result["lost"] == 0 and result["seconds_until_all_resynced"] is not None else 1


if __name__ == "__main__":
    sys.exit(main())
