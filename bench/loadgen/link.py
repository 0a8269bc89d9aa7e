"""One WebSocket of the generator, speaking the chat protocol as a device does."""

from __future__ import annotations

import asyncio
import contextlib
import json
from time import perf_counter_ns
from typing import Any

import aiohttp
from aiohttp import WSMsgType

from bench.loadgen.ledger import Ledger

CONNECT_TIMEOUT = 30.0


class LinkFailed(Exception):
    """A connection could not be opened, or was refused or closed during its handshake."""


class Link:
    """hello → ready → synced, then sends and heartbeats; every frame read is counted.

    `ledger` may be swapped between phases; the reader always uses the current
    one. `window`, when set, is released by each `ack` or refused send, so a
    sender can keep a bounded number of sends unacknowledged. `node` is the
    cluster node the link is open on (None against one process), so that the
    ledger can tell deliveries that crossed nodes from those that did not.
    """

    def __init__(self, index: int, user_id: int, token: str, ledger: Ledger) -> None:
        self.index = index
        self.user_id = user_id
        self.token = token
        self.ledger = ledger
        self.window: asyncio.Semaphore | None = None
        self.node: int | None = None
        self.socket: aiohttp.ClientWebSocketResponse | None = None
        self.last_seq = 0
        self.heartbeat_interval = 5.0
        self.heartbeat_acks = 0
        self.close_codes: list[int | None] = []
        self.synced = asyncio.Event()
        self._sent = 0
        self._reader: asyncio.Task[None] | None = None

    @property
    def reader_failed(self) -> str | None:
        """Why this link's reader stopped, if it failed: its frames are no longer counted."""
        reader = self._reader
        if reader is None or not reader.done() or reader.cancelled():
            return None
        error = reader.exception()
        return None if error is None else f"{type(error).__name__}: {error}"

    @property
    def is_open(self) -> bool:
        return self.socket is not None and not self.socket.closed

    async def open(
        self, session: aiohttp.ClientSession, ws_url: str, *, last_seq: int | None = None
    ) -> None:
        """Connect and say hello; return once `synced` (with nothing more to replay) arrived."""
        await self.forget()
        self.synced.clear()
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                self.socket = await session.ws_connect(ws_url, max_msg_size=0, autoping=True)
                hello: dict[str, Any] = {"type": "hello", "token": self.token}
                if last_seq is not None:
                    hello["last_seq"] = last_seq
                await self.socket.send_str(json.dumps(hello))
                reader = self._reader = asyncio.create_task(self._read(self.socket))
                synced = asyncio.create_task(self.synced.wait())
                try:
                    await asyncio.wait({reader, synced}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    synced.cancel()
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise LinkFailed(f"{type(exc).__name__}: {exc}") from exc
        if not self.synced.is_set():
            code = self.close_codes[-1] if self.close_codes else None
            raise LinkFailed(f"closed during the handshake with code {code}")

    async def send_message(self, channel_id: int, text: str) -> None:
        """Send a message; its client_msg_id is `<link index>.<count>`."""
        socket = self.socket
        if socket is None or socket.closed:
            return
        self._sent += 1
        client_msg_id = f"{self.index}.{self._sent}"
        self.ledger.on_send(client_msg_id, perf_counter_ns(), self.node)
        # Both strings are ASCII without quotes or backslashes, so no escaping is needed.
        await socket.send_str(
            f'{{"type":"send","client_msg_id":"{client_msg_id}",'
            f'"channel_id":{channel_id},"text":"{text}"}}'
        )

    async def heartbeat(self) -> None:
        if self.socket is not None and not self.socket.closed:
            await self.socket.send_str('{"type":"heartbeat"}')

    async def close(self) -> None:
        """A polite close: the WebSocket closing handshake."""
        if self.socket is not None:
            await self.socket.close()
        await self.forget()

    async def forget(self) -> None:
        """Stop reading the current socket; frames not yet read are never counted."""
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        self.socket = None

    async def _read(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        loads = json.loads
        while True:
            message = await socket.receive()
            if message.type is not WSMsgType.TEXT:
                if message.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING):
                    self.close_codes.append(socket.close_code)
                    return
                if message.type is WSMsgType.ERROR:
                    self.close_codes.append(None)
                    return
                continue
            arrived = perf_counter_ns()
            frame = loads(message.data)
            kind = frame["type"]
            if kind == "message":
                seq = frame["seq"]
                if seq > self.last_seq:
                    self.last_seq = seq
                self.ledger.on_message(self.index, frame["message"], arrived, self.node)
            elif kind == "ack":
                self.ledger.on_ack(self.index, frame, arrived)
                if self.window is not None:
                    self.window.release()
            elif kind == "heartbeat_ack":
                self.heartbeat_acks += 1
            elif kind == "synced":
                self.last_seq = max(self.last_seq, frame["seq"])
                if frame["has_more"]:
                    await socket.send_str(json.dumps({"type": "sync", "since": frame["seq"]}))
                else:
                    self.synced.set()
            elif kind == "ready":
                self.heartbeat_interval = frame["heartbeat_interval_ms"] / 1000
            elif kind == "error":
                self.ledger.on_refusal(frame.get("code", "unknown"))
                if self.window is not None and "client_msg_id" in frame:
                    self.window.release()
