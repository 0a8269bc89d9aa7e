"""A trivial WebSocket relay that speaks just enough of the chat protocol to be driven.

It is the yardstick of the load generator: no storage, no accounts, no
checks, so whatever rate the generator reaches against it is the generator's
own ceiling on this machine. A token names the user and its channels,
`echo:<user_id>:<channel_id>,<channel_id>`; a `send` is answered with an `ack`
and relayed as a `message` frame to every other connection of that channel.

    python -m bench.echo_server --port 9000
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web


@dataclass(eq=False)
class Peer:
    socket: web.WebSocketResponse
    user_id: int
    channels: tuple[int, ...]


@dataclass
class Relay:
    members: defaultdict[int, set[Peer]] = field(default_factory=lambda: defaultdict(set))
    message_ids: defaultdict[int, itertools.count[int]] = field(
        default_factory=lambda: defaultdict(lambda: itertools.count(1))
    )
    seqs: defaultdict[int, itertools.count[int]] = field(
        default_factory=lambda: defaultdict(lambda: itertools.count(1))
    )

    def next_seq(self, user_id: int) -> int:
        return next(self.seqs[user_id])


RELAY = web.AppKey("relay", Relay)


def parse_token(token: str) -> tuple[int, tuple[int, ...]]:
    _, user, channels = token.split(":", 2)
    return int(user), tuple(int(channel) for channel in channels.split(",") if channel)


async def serve_socket(request: web.Request) -> web.WebSocketResponse:
    relay = request.app[RELAY]
    socket = web.WebSocketResponse(compress=False, max_msg_size=2 * 1024 * 1024)
    await socket.prepare(request)
    hello = json.loads(await socket.receive_str(timeout=10))
    user_id, channels = parse_token(hello["token"])
    peer = Peer(socket, user_id, channels)
    for channel in channels:
        relay.members[channel].add(peer)
    try:
        await _say(
            socket,
            {
                "type": "ready",
                "user_id": user_id,
                "device_id": 0,
                "heartbeat_interval_ms": 5000,
                "max_seq": 0,
            },
        )
        await _say(socket, {"type": "synced", "seq": hello.get("last_seq") or 0, "has_more": False})
        async for message in socket:
            if message.type is not WSMsgType.TEXT:
                continue
            frame = json.loads(message.data)
            kind = frame.get("type")
            if kind == "send":
                await _relay(relay, peer, frame)
            elif kind == "heartbeat":
                await _say(socket, {"type": "heartbeat_ack"})
            elif kind == "sync":
                await _say(socket, {"type": "synced", "seq": frame["since"], "has_more": False})
    finally:
        for channel in channels:
            relay.members[channel].discard(peer)
    return socket


async def _relay(relay: Relay, sender: Peer, frame: dict[str, Any]) -> None:
    channel_id = frame["channel_id"]
    message = {
        "channel_id": channel_id,
        "message_id": next(relay.message_ids[channel_id]),
        "sender_id": sender.user_id,
        "text": frame["text"],
        "created_at": int(time.time() * 1000),
        "client_msg_id": frame["client_msg_id"],
    }
    message_json = json.dumps(message)
    ack = {
        "type": "ack",
        "client_msg_id": frame["client_msg_id"],
        "message": message,
        "seq": relay.next_seq(sender.user_id),
    }
    await _say(sender.socket, ack)
    for peer in tuple(relay.members[channel_id]):
        if peer is not sender and not peer.socket.closed:
            seq = relay.next_seq(peer.user_id)
            await peer.socket.send_str(f'{{"type":"message","seq":{seq},"message":{message_json}}}')


async def _say(socket: web.WebSocketResponse, frame: dict[str, Any]) -> None:
    await socket.send_str(json.dumps(frame))


async def ready(request: web.Request) -> web.Response:
    return web.json_response({"status": "ready"})


def build_app() -> web.Application:
    app = web.Application()
    app[RELAY] = Relay()
    app.router.add_get("/ws", serve_socket)
    app.router.add_get("/readyz", ready)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    web.run_app(build_app(), host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
