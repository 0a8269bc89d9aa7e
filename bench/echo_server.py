"""A trivial WebSocket relay that speaks just enough of the chat protocol to be driven.

It is the yardstick of the load generator: no storage, no accounts, no
checks, so whatever rate the generator reaches against it is the generator's
own ceiling on this machine. Its own per-message work is kept small (frames
decoded by msgspec into the fields it reads, each relayed message encoded
once), so that the relay does not set that ceiling. A token names the user
and its channels, `echo:<user_id>:<channel_id>,<channel_id>`; a `send` is
answered with an `ack` and relayed as a `message` frame to every other
connection of that channel.

    python -m bench.echo_server --port 9000
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import msgspec
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


class Frame(msgspec.Struct):
    """The fields of the generator's frames the relay reads; the others are skipped."""

    type: str = ""
    token: str = ""
    last_seq: int | None = None
    client_msg_id: str = ""
    channel_id: int = 0
    text: str = ""
    since: int = 0


decode_frame = msgspec.json.Decoder(Frame).decode
encode = msgspec.json.encode
TEXT = WSMsgType.TEXT


async def serve_socket(request: web.Request) -> web.WebSocketResponse:
    relay = request.app[RELAY]
    socket = web.WebSocketResponse(compress=False, max_msg_size=2 * 1024 * 1024)
    await socket.prepare(request)
    hello = decode_frame(await socket.receive_str(timeout=10))
    user_id, channels = parse_token(hello.token)
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
        await _say(socket, {"type": "synced", "seq": hello.last_seq or 0, "has_more": False})
        async for message in socket:
            if message.type is not TEXT:
                continue
            frame = decode_frame(message.data)
            kind = frame.type
            if kind == "send":
                await _relay(relay, peer, frame)
            elif kind == "heartbeat":
                await socket.send_frame(b'{"type":"heartbeat_ack"}', TEXT)
            elif kind == "sync":
                await _say(socket, {"type": "synced", "seq": frame.since, "has_more": False})
    finally:
        for channel in channels:
            relay.members[channel].discard(peer)
    return socket


async def _relay(relay: Relay, sender: Peer, frame: Frame) -> None:
    """An ack to the sender, a `message` frame to every other member: each encoded once."""
    channel_id = frame.channel_id
    message_json = encode(
        {
            "channel_id": channel_id,
            "message_id": next(relay.message_ids[channel_id]),
            "sender_id": sender.user_id,
            "text": frame.text,
            "created_at": int(time.time() * 1000),
            "client_msg_id": frame.client_msg_id,
        }
    )
    ack = b'{"type":"ack","client_msg_id":%b,"message":%b,"seq":%d}' % (
        encode(frame.client_msg_id),
        message_json,
        relay.next_seq(sender.user_id),
    )
    await sender.socket.send_frame(ack, TEXT)
    for peer in tuple(relay.members[channel_id]):
        if peer is not sender and not peer.socket.closed:
            seq = relay.next_seq(peer.user_id)
            await peer.socket.send_frame(
                b'{"type":"message","seq":%d,"message":%b}' % (seq, message_json), TEXT
            )


async def _say(socket: web.WebSocketResponse, frame: dict[str, Any]) -> None:
    await socket.send_frame(encode(frame), TEXT)


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
