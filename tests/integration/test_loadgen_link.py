"""The benchmark's load generator over real WebSockets: its own frame reading and writing.

The generator reads text frames itself (not through aiohttp's queue) and writes
masked frames straight to the transport; these tests drive it against the echo
relay and a small scripted server on free localhost ports.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import WSMsgType, web

from bench.echo_server import build_app
from bench.loadgen.fleet import drain, new_session, windowed
from bench.loadgen.ledger import Ledger, sent_at
from bench.loadgen.link import Link, _FastReader

Serve = Callable[[web.Application], Awaitable[str]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    runners: list[web.AppRunner] = []

    async def start(app: web.Application) -> str:
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        return f"ws://127.0.0.1:{port}/ws"

    yield start
    for runner in runners:
        await runner.cleanup()


async def test_a_pair_on_the_echo_relay_loses_and_duplicates_nothing(serve: Serve) -> None:
    url = await serve(build_app())
    ledger = Ledger(recipients={7: [0, 1]})
    links = [Link(0, 1, "echo:1:7", ledger), Link(1, 2, "echo:2:7", ledger)]
    session = new_session()
    try:
        for link in links:
            await link.open(session, url)
        await windowed(links, 8, 0.3, lambda link: link.send_stamped(7, 64))
        await drain(ledger, grace=2.0)
    finally:
        for link in links:
            await link.close()
        await session.close()
    assert len(ledger.sent) > 16
    assert ledger.acks == len(ledger.sent)
    assert ledger.deliveries == ledger.owed == ledger.acks
    assert ledger.duplicates == ledger.stray_acks == ledger.lost() == 0
    assert all(link.reader_failed is None for link in links)
    # Each delivery was timed from the stamp in its text.
    assert len(ledger.delivery_latency_ns) == ledger.deliveries


async def test_the_send_frame_is_the_protocols_text_frame(serve: Serve) -> None:
    seen: list[str] = []

    async def handler(request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        async for message in socket:
            assert message.type is WSMsgType.TEXT
            seen.append(message.data)
            frame = json.loads(message.data)
            if frame["type"] == "hello":
                await socket.send_str('{"type":"ready","heartbeat_interval_ms":5000}')
                await socket.send_str('{"type":"synced","seq":0,"has_more":false}')
            if frame["type"] == "send":
                break
        return socket

    app = web.Application()
    app.router.add_get("/ws", handler)
    url = await serve(app)
    link = Link(3, 1, "token-a", Ledger())
    session = new_session()
    try:
        await link.open(session, url)
        link.send_stamped(42, 64)
        for _ in range(100):
            if len(seen) == 2:
                break
            await asyncio.sleep(0.01)
    finally:
        await link.close()
        await session.close()
    assert seen[0] == '{"type": "hello", "token": "token-a"}'
    send = json.loads(seen[1])
    assert list(send) == ["type", "client_msg_id", "channel_id", "text"]
    assert send["client_msg_id"] == "3.1"
    assert send["channel_id"] == 42
    assert len(send["text"]) == 64
    assert sent_at(send["text"]) is not None


async def test_after_a_ping_the_link_counts_on_through_aiohttps_reader(serve: Serve) -> None:
    async def handler(request: web.Request) -> web.WebSocketResponse:
        # Without autoping, the handler sees the client's pong.
        socket = web.WebSocketResponse(autoping=False)
        await socket.prepare(request)
        await socket.receive_str()
        await socket.send_str('{"type":"ready","heartbeat_interval_ms":5000}')
        await socket.send_str('{"type":"synced","seq":4,"has_more":false}')
        await socket.ping(b"are you there")
        pong = await socket.receive()
        assert pong.type is WSMsgType.PONG
        message = {"channel_id": 9, "message_id": 1, "text": "t=1;x", "client_msg_id": "z.1"}
        await socket.send_str(json.dumps({"type": "message", "seq": 5, "message": message}))
        await socket.close()
        return socket

    app = web.Application()
    app.router.add_get("/ws", handler)
    url = await serve(app)
    ledger = Ledger(recipients={9: [0]})
    link = Link(0, 1, "token-b", ledger)
    session = new_session()
    try:
        await link.open(session, url)
        for _ in range(200):
            if link.close_codes:
                break
            await asyncio.sleep(0.01)
    finally:
        await link.close()
        await session.close()
    assert ledger.deliveries == 1
    assert link.last_seq == 5
    assert link.close_codes == [1000]
    assert link.reader_failed is None


def _server_text_frame(payload: bytes) -> bytes:
    if len(payload) < 126:
        return bytes((0x81, len(payload))) + payload
    return bytes((0x81, 126)) + len(payload).to_bytes(2, "big") + payload


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 127, 4096])
async def test_frames_cut_anywhere_in_the_stream_are_each_read_once(chunk: int) -> None:
    ledger = Ledger(recipients={9: [0, 1]})
    link = Link(0, 1, "unused", ledger)
    reader = _FastReader(link, socket=None, protocol=None, queue=None)  # type: ignore[arg-type]
    texts = [f"t=1;{'x' * size}" for size in (1, 120, 130, 300)]
    stream = b"".join(
        _server_text_frame(
            json.dumps(
                {
                    "type": "message",
                    "seq": seq,
                    "message": {"channel_id": 9, "message_id": seq, "text": text},
                }
            ).encode()
        )
        for seq, text in enumerate(texts, start=1)
    )
    for start in range(0, len(stream), chunk):
        assert reader.feed_data(stream[start : start + chunk]) == (False, b"")
    assert ledger.deliveries == len(texts)
    assert link.last_seq == len(texts)
