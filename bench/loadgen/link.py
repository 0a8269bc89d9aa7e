"""One WebSocket of the generator, speaking the chat protocol as a device does.

aiohttp opens the connection (the HTTP upgrade) and closes it (the closing
handshake), as any client of it would. In between, the generator's ceiling
is what its per-message work costs, so that work is kept small:

- `send` frames are byte templates with only the client_msg_id and the
  stamped text spliced in, masked (RFC 6455 requires a client to mask, with a
  fresh random key per frame) by aiohttp's C helper and written straight to
  the transport;
- text frames are cut out of the byte stream by `_FastReader`, which aiohttp
  calls in place of its own reader, and decoded by msgspec into structs that
  hold only the fields the ledger reads; each frame is handled in that call,
  with no queue, future or task between the socket and the ledger;
- sends made while one read is handled (the refills of a window, answered by
  the acks in that read) leave in one write at its end.

The frames on the wire are the ones the earlier `send_str` generator wrote,
byte for byte before masking. Anything but a text frame (a close, a ping, the
end of the stream) hands the connection back to aiohttp's own reader, and a
reader task handles the rest of it as the generator always did.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import Callable
from time import perf_counter_ns
from typing import Any

import aiohttp
import msgspec
from aiohttp import WSMsgType
from aiohttp._websocket.helpers import websocket_mask

from bench.loadgen.ledger import Ledger

CONNECT_TIMEOUT = 30.0
OPCODE_TEXT = 0x1


class LinkFailed(Exception):
    """A connection could not be opened, or was refused or closed during its handshake."""


class _Message(msgspec.Struct):
    """The part of a stored message the ledger reads; the other fields are skipped."""

    channel_id: int
    message_id: int
    text: str | None = None
    client_msg_id: str | None = None


class _Frame(msgspec.Struct):
    """Every server frame the generator reads, by the fields it reads ("message" is a
    stored message in `ack` and `message` frames, a person's text in `error`)."""

    type: str
    seq: int = 0
    message: _Message | str | None = None
    client_msg_id: str | None = None
    has_more: bool = False
    heartbeat_interval_ms: float = 5000.0
    code: str = "unknown"


_decode_frame = msgspec.json.Decoder(_Frame).decode
_random_bits = random.getrandbits


def _masked(payload: bytes) -> bytes:
    """One final text frame from the client: header, a fresh random mask key, masked payload."""
    length = len(payload)
    if length < 126:
        header = bytes((0x80 | OPCODE_TEXT, 0x80 | length))
    elif length < 65536:
        header = bytes((0x80 | OPCODE_TEXT, 0x80 | 126)) + length.to_bytes(2, "big")
    else:
        header = bytes((0x80 | OPCODE_TEXT, 0x80 | 127)) + length.to_bytes(8, "big")
    mask = _random_bits(32).to_bytes(4, "big")
    body = bytearray(payload)
    websocket_mask(mask, body)
    return header + mask + body


class Link:
    """hello → ready → synced, then sends and heartbeats; every frame read is counted.

    `ledger` may be swapped between phases; the reader always uses the current
    one. `on_answer`, when set, is called with the link after each `ack` or
    refused send, so a sender can keep a bounded number of sends
    unacknowledged (`fleet.windowed`). `node` is the cluster node the link is
    open on (None against one process), so that the ledger can tell
    deliveries that crossed nodes from those that did not.
    """

    def __init__(self, index: int, user_id: int, token: str, ledger: Ledger) -> None:
        self.index = index
        self.user_id = user_id
        self.token = token
        self.ledger = ledger
        self.on_answer: Callable[[Link], None] | None = None
        self.node: int | None = None
        self.socket: aiohttp.ClientWebSocketResponse | None = None
        self.last_seq = 0
        self.heartbeat_interval = 5.0
        self.heartbeat_acks = 0
        self.close_codes: list[int | None] = []
        self.synced = asyncio.Event()
        self._sent = 0
        self._reader: asyncio.Task[None] | None = None
        self._fast: _FastReader | None = None
        self._transport: asyncio.Transport | None = None
        self._failure: str | None = None
        self._ended = asyncio.Event()
        # The constant parts of this link's `send` frames, per channel.
        self._send_head = b'{"type":"send","client_msg_id":"%d.' % index
        self._send_middle: dict[int, bytes] = {}
        self._padding: dict[int, bytes] = {}

    @property
    def reader_failed(self) -> str | None:
        """Why this link's reader stopped, if it failed: its frames are no longer counted."""
        if self._failure is not None:
            return self._failure
        reader = self._reader
        if reader is None or not reader.done() or reader.cancelled():
            return None
        error = reader.exception()
        return None if error is None else f"{type(error).__name__}: {error}"

    @property
    def is_open(self) -> bool:
        return self.socket is not None and not self.socket.closed and self._failure is None

    async def open(
        self, session: aiohttp.ClientSession, ws_url: str, *, last_seq: int | None = None
    ) -> None:
        """Connect and say hello; return once `synced` (with nothing more to replay) arrived."""
        await self.forget()
        self.synced.clear()
        self._ended.clear()
        self._failure = None
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                socket = self.socket = await session.ws_connect(
                    ws_url, max_msg_size=0, autoping=True
                )
                self._take_over(socket)
                hello: dict[str, Any] = {"type": "hello", "token": self.token}
                if last_seq is not None:
                    hello["last_seq"] = last_seq
                self._write_text(json.dumps(hello).encode())
                synced = asyncio.create_task(self.synced.wait())
                ended = asyncio.create_task(self._ended.wait())
                try:
                    await asyncio.wait({ended, synced}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    synced.cancel()
                    ended.cancel()
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise LinkFailed(f"{type(exc).__name__}: {exc}") from exc
        if not self.synced.is_set():
            code = self.close_codes[-1] if self.close_codes else None
            raise LinkFailed(f"closed during the handshake with code {code}")

    def send_stamped(self, channel_id: int, text_chars: int) -> None:
        """Send a message whose text is stamped now (`ledger.stamped_text`); its
        client_msg_id is `<link index>.<count>`."""
        transport = self._transport
        if transport is None:
            if self.socket is not None and not self.socket.closed:
                self._send_slowly(channel_id, text_chars)
            return
        self._sent += 1
        middle = self._send_middle.get(channel_id)
        if middle is None:
            middle = self._send_middle[channel_id] = b'","channel_id":%d,"text":"' % channel_id
        now = perf_counter_ns()
        head = b"t=%d;" % now
        padding = self._padding.get(len(head))
        if padding is None:
            padding = self._padding[len(head)] = b"x" * max(0, text_chars - len(head))
        count = b"%d" % self._sent
        self.ledger.on_send(f"{self.index}.{self._sent}", now, self.node)
        # Both strings are ASCII without quotes or backslashes, so no escaping is needed.
        frame = _masked(b"".join((self._send_head, count, middle, head, padding, b'"}')))
        fast = self._fast
        if fast is not None and fast.handling:
            fast.pending.append(frame)
        else:
            transport.write(frame)

    def _send_slowly(self, channel_id: int, text_chars: int) -> None:
        """After a hand-back to aiohttp (a ping, say): the same frame through its writer."""
        socket = self.socket
        assert socket is not None
        self._sent += 1
        client_msg_id = f"{self.index}.{self._sent}"
        now = perf_counter_ns()
        head = f"t={now};"
        text = head + "x" * max(0, text_chars - len(head))
        self.ledger.on_send(client_msg_id, now, self.node)
        frame = (
            f'{{"type":"send","client_msg_id":"{client_msg_id}",'
            f'"channel_id":{channel_id},"text":"{text}"}}'
        )
        asyncio.get_running_loop().create_task(socket.send_str(frame))

    def heartbeat(self) -> None:
        if self.socket is not None and not self.socket.closed:
            self._write_text(b'{"type":"heartbeat"}')

    async def close(self) -> None:
        """A polite close: the WebSocket closing handshake, by aiohttp."""
        socket = self.socket
        if socket is not None:
            self._give_back(read_on=False)
            await socket.close()
        await self.forget()

    async def forget(self) -> None:
        """Stop reading the current socket; frames not yet read are never counted."""
        if self._fast is not None:
            self._fast.link = None
            self._fast = None
        self._transport = None
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        self.socket = None

    def _write_text(self, payload: bytes) -> None:
        socket = self.socket
        if socket is None:
            return
        if self._transport is not None:
            fast = self._fast
            frame = _masked(payload)
            if fast is not None and fast.handling:
                fast.pending.append(frame)
            else:
                self._transport.write(frame)
        else:
            asyncio.get_running_loop().create_task(socket.send_str(payload.decode()))

    def _take_over(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        """Read this socket's text frames here, not through aiohttp's queue (see above).

        The server says nothing before `hello`, so aiohttp's reader holds no frame yet;
        should it hold one, the link stays with aiohttp's reader throughout.
        """
        connection = socket._response.connection
        protocol = connection.protocol if connection is not None else None
        transport = connection.transport if connection is not None else None
        queue = socket._reader
        if protocol is None or transport is None or queue._size or socket._parser is None:
            self._read_slowly(socket)
            return
        self._fast = _FastReader(self, socket, protocol, queue)
        self._transport = transport
        protocol.set_parser(self._fast, queue)

    def _give_back(self, *, read_on: bool) -> bytes:
        """Hand the socket back to aiohttp's reader; the bytes not yet parsed are fed to it
        by the caller. With `read_on`, a reader task goes on counting frames."""
        fast, socket = self._fast, self.socket
        self._fast = None
        self._transport = None
        if fast is None or socket is None:
            return b""
        fast.flush()
        fast.link = None
        if socket._parser is not None:
            fast.protocol.set_parser(socket._parser, fast.queue)
        if read_on:
            self._read_slowly(socket)
        return fast.rest

    def _read_slowly(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self._reader = asyncio.get_running_loop().create_task(self._read(socket))
        self._reader.add_done_callback(lambda _: self._ended.set())

    async def _read(self, socket: aiohttp.ClientWebSocketResponse) -> None:
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
            self.on_text(message.data, perf_counter_ns())

    def on_text(self, data: str | bytes, arrived: int) -> None:
        """One text frame from the server, read at `arrived`."""
        try:
            frame = _decode_frame(data)
        except msgspec.ValidationError:
            # A frame this generator does not read (its fields are not the ones above).
            return
        kind = frame.type
        if kind == "message":
            message = frame.message
            if frame.seq > self.last_seq:
                self.last_seq = frame.seq
            if isinstance(message, _Message):
                self.ledger.on_message(
                    self.index,
                    message.channel_id,
                    message.message_id,
                    message.text,
                    message.client_msg_id,
                    arrived,
                    self.node,
                )
        elif kind == "ack":
            message = frame.message
            if isinstance(message, _Message) and frame.client_msg_id is not None:
                self.ledger.on_ack(
                    self.index, frame.client_msg_id, message.channel_id, message.message_id, arrived
                )
            if self.on_answer is not None:
                self.on_answer(self)
        elif kind == "heartbeat_ack":
            self.heartbeat_acks += 1
        elif kind == "synced":
            self.last_seq = max(self.last_seq, frame.seq)
            if frame.has_more:
                self._write_text(b'{"type": "sync", "since": %d}' % frame.seq)
            else:
                self.synced.set()
        elif kind == "ready":
            self.heartbeat_interval = frame.heartbeat_interval_ms / 1000
        elif kind == "error":
            self.ledger.on_refusal(frame.code)
            if self.on_answer is not None and frame.client_msg_id is not None:
                self.on_answer(self)


class _FastReader:
    """Stands in for aiohttp's WebSocketReader: cuts the server's frames (never masked)
    out of the stream, and hands text frames to the link as they arrive."""

    def __init__(
        self,
        link: Link,
        socket: aiohttp.ClientWebSocketResponse,
        protocol: Any,
        queue: Any,
    ) -> None:
        self.link: Link | None = link
        self.socket = socket
        self.protocol = protocol
        self.queue = queue
        self.pending: list[bytes] = []
        self.handling = False
        self.rest = b""
        self._buffer = b""

    def flush(self) -> None:
        if self.pending:
            link = self.link
            transport = link._transport if link is not None else None
            if transport is not None and not transport.is_closing():
                transport.write(b"".join(self.pending))
            self.pending.clear()

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        link = self.link
        if link is None:
            return False, b""
        arrived = perf_counter_ns()
        buffer = self._buffer + data if self._buffer else data
        size = len(buffer)
        position = 0
        self.handling = True
        try:
            while size - position >= 2:
                first, second = buffer[position], buffer[position + 1]
                length = second & 0x7F
                start = position + 2
                if length == 126:
                    if size - position < 4:
                        break
                    length = int.from_bytes(buffer[start : start + 2], "big")
                    start += 2
                elif length == 127:
                    if size - position < 10:
                        break
                    length = int.from_bytes(buffer[start : start + 8], "big")
                    start += 8
                if first != 0x80 | OPCODE_TEXT or second & 0x80:
                    # Not a whole unmasked text frame (a close, a ping, a fragment):
                    # aiohttp reads the rest of this connection from here on.
                    self._buffer = b""
                    self._hand_back(link, buffer[position:])
                    return False, b""
                end = start + length
                if end > size:
                    break
                position = end
                link.on_text(buffer[start:end], arrived)
                if self.link is None:
                    return False, b""
            self._buffer = buffer[position:] if position < size else b""
        except Exception as exc:
            # As a failed reader task before: this link's frames are no longer counted.
            link._failure = f"{type(exc).__name__}: {exc}"
            self.link = None
            link._ended.set()
        finally:
            self.handling = False
            self.flush()
        return False, b""

    def feed_eof(self) -> None:
        link = self.link
        if link is not None:
            self._hand_back(link, b"")
            parser = self.socket._parser
            if parser is not None:
                parser.feed_eof()

    def _hand_back(self, link: Link, rest: bytes) -> None:
        self.handling = False
        self.flush()
        link._give_back(read_on=True)
        parser = self.socket._parser
        if rest and parser is not None:
            parser.feed_data(rest)
