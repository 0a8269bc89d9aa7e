"""A WebSocket client written by hand over a TCP socket: it sends what no library will.

Client libraries refuse to send a text frame that is not UTF-8, an unmasked
frame, a reserved opcode or a header whose length the payload does not have.
A hostile client sends all of them, so the tests that play one need this.
It blocks (with timeouts) rather than using an event loop, so a Hypothesis
test or a thread can drive it directly.

    with WireSocket.open(ws_url, token) as wire:
        wire.send_frame(OPCODE_TEXT, b"\\xff\\xfe")
        assert wire.closed_with() == 1007
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import socket
import struct
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

OPCODE_CONTINUATION = 0x0
OPCODE_TEXT = 0x1
OPCODE_BINARY = 0x2
OPCODE_CLOSE = 0x8
OPCODE_PING = 0x9
OPCODE_PONG = 0xA

_OPCODES = {OPCODE_CONTINUATION, OPCODE_TEXT, OPCODE_BINARY, OPCODE_CLOSE, OPCODE_PING,
            OPCODE_PONG}  # fmt: skip
_ACCEPT_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_RECEIVE_CHUNK = 256 * 1024


@dataclass(frozen=True)
class WireFrame:
    """One frame as the server sent it (server frames are never masked)."""

    opcode: int
    payload: bytes
    fin: bool = True

    @property
    def close_code(self) -> int | None:
        """The status code of a close frame; None for other frames or a close without one."""
        if self.opcode != OPCODE_CLOSE or len(self.payload) < 2:
            return None
        code: int = struct.unpack("!H", self.payload[:2])[0]
        return code

    def json(self) -> Any:
        return json.loads(self.payload.decode("utf-8"))


class WireClosed(ConnectionError):
    """The server closed: `code` from its close frame, None when TCP ended without one."""

    def __init__(self, code: int | None) -> None:
        super().__init__(f"closed: {code}")
        self.code = code


class NotAFrame(AssertionError):
    """The server sent bytes that are no WebSocket frame (an HTTP answer on the socket, say)."""


class WireSocket:
    """One WebSocket connection, frame by frame. Use `WireSocket.open(ws_url, token)`."""

    def __init__(self, sock: socket.socket, buffered: bytes = b"") -> None:
        self.sock = sock
        self.ready: dict[str, Any] = {}
        self.close_frame: WireFrame | None = None
        self._buffer = bytearray(buffered)

    # -- opening --------------------------------------------------------------------

    @classmethod
    def connect(
        cls,
        ws_url: str,
        *,
        timeout: float = 10.0,
        headers: dict[str, str] | None = None,
        early: bytes = b"",
    ) -> Self:
        """Open the TCP connection and complete the upgrade handshake; no hello yet.

        `early` is sent in the same write as the upgrade request, before its answer.
        """
        parts = urlsplit(ws_url)
        host = parts.hostname or "127.0.0.1"
        port = parts.port or (443 if parts.scheme == "wss" else 80)
        sock = socket.create_connection((host, port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            leftover = _handshake(
                sock, f"{host}:{port}", parts.path or "/", headers or {}, timeout, early
            )
        except BaseException:
            sock.close()
            raise
        return cls(sock, leftover)

    @classmethod
    def open(
        cls, ws_url: str, token: str, *, last_seq: int | None = None, timeout: float = 10.0
    ) -> Self:
        """Connect, say hello and read up to `synced`; `ready` is kept in `.ready`."""
        wire = cls.connect(ws_url, timeout=timeout)
        try:
            hello: dict[str, Any] = {"type": "hello", "token": token}
            if last_seq is not None:
                hello["last_seq"] = last_seq
            wire.send_json(hello)
            wire.ready = wire.expect("ready", timeout)
            wire.until("synced", timeout)
        except BaseException:
            wire.abort()
            raise
        return wire

    # -- sending --------------------------------------------------------------------

    def send_frame(
        self,
        opcode: int,
        payload: bytes,
        *,
        fin: bool = True,
        rsv: int = 0,
        mask: bool = True,
        declared_length: int | None = None,
    ) -> None:
        """Write one frame exactly as described, whether or not the protocol allows it.

        `rsv` sets the three reserved bits (0 to 7); `mask=False` sends the payload
        unmasked (a client must mask); `declared_length` puts another length in
        the header than the payload has.
        """
        self.sock.sendall(
            encode_frame(
                opcode, payload, fin=fin, rsv=rsv, mask=mask, declared_length=declared_length
            )
        )

    def send_text(self, text: str) -> None:
        self.send_frame(OPCODE_TEXT, text.encode("utf-8", "surrogatepass"))

    def send_json(self, frame: dict[str, Any]) -> None:
        self.send_text(json.dumps(frame))

    def send_binary(self, data: bytes) -> None:
        self.send_frame(OPCODE_BINARY, data)

    def send_raw(self, data: bytes) -> None:
        """Bytes as they are, framing and all."""
        self.sock.sendall(data)

    # -- receiving ------------------------------------------------------------------

    def receive(self, timeout: float = 5.0) -> WireFrame:
        """The next frame; WireClosed when the TCP connection ends first, TimeoutError."""
        deadline = time.monotonic() + timeout
        first, second = self._read_exact(2, deadline)
        opcode, reserved = first & 0x0F, first & 0x70
        if reserved or opcode not in _OPCODES or (opcode >= OPCODE_CLOSE and not first & 0x80):
            raw = bytes([first, second]) + bytes(self._buffer[:300])
            raise NotAFrame(f"the server sent bytes that are not a WebSocket frame: {raw!r}")
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self._read_exact(2, deadline))
        elif length == 127:
            (length,) = struct.unpack("!Q", self._read_exact(8, deadline))
        key = self._read_exact(4, deadline) if second & 0x80 else b""
        payload = self._read_exact(length, deadline)
        if key:
            payload = _mask(payload, key)
        return WireFrame(opcode=opcode, payload=payload, fin=bool(first & 0x80))

    def receive_message(self, timeout: float = 5.0) -> WireFrame:
        """The next data message, fragments joined; pings are answered and skipped.

        WireClosed with the code when it is a close frame instead.
        """
        deadline = time.monotonic() + timeout
        while True:
            frame = self.receive(max(0.0, deadline - time.monotonic()))
            if frame.opcode == OPCODE_CLOSE:
                self.close_frame = frame
                raise WireClosed(frame.close_code)
            if frame.opcode == OPCODE_PING:
                self.send_frame(OPCODE_PONG, frame.payload)
                continue
            if frame.opcode == OPCODE_PONG:
                continue
            parts = [frame.payload]
            while not frame.fin:
                frame = self.receive(max(0.0, deadline - time.monotonic()))
                parts.append(frame.payload)
            return WireFrame(opcode=OPCODE_TEXT, payload=b"".join(parts))

    def receive_json(self, timeout: float = 5.0) -> dict[str, Any]:
        """The next message as a JSON object."""
        document = self.receive_message(timeout).json()
        if not isinstance(document, dict):
            raise AssertionError(f"the server sent a frame that is not an object: {document!r}")
        return document

    def expect(self, kind: str, timeout: float = 5.0) -> dict[str, Any]:
        """The next message, which must be of this type."""
        frame = self.receive_json(timeout)
        if frame.get("type") != kind:
            raise AssertionError(f"expected a {kind!r} frame, got {frame}")
        return frame

    def until(self, kind: str, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Messages up to and including the first of this type."""
        deadline = time.monotonic() + timeout
        frames = [self.receive_json(timeout)]
        while frames[-1].get("type") != kind:
            frames.append(self.receive_json(max(0.0, deadline - time.monotonic())))
        return frames

    def closed_with(self, timeout: float = 5.0) -> int | None:
        """Read until the server closes; the code of its close frame (None without one)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.receive_message(max(0.0, deadline - time.monotonic()))
            except WireClosed as closed:
                return closed.code

    # -- closing --------------------------------------------------------------------

    def close(self, code: int = 1000) -> None:
        """Say goodbye politely if the connection still allows it, then drop it."""
        with contextlib.suppress(OSError):
            self.send_frame(OPCODE_CLOSE, struct.pack("!H", code))
        self.abort()

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _read_exact(self, count: int, deadline: float) -> bytes:
        while len(self._buffer) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no frame from the server in time ({count} bytes wanted)")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(_RECEIVE_CHUNK)
            except TimeoutError:
                raise
            except OSError as exc:  # a reset: the server dropped the connection
                raise WireClosed(None) from exc
            if not chunk:
                raise WireClosed(None)
            self._buffer += chunk
        data = bytes(self._buffer[:count])
        del self._buffer[:count]
        return data


def encode_frame(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bool = True,
    declared_length: int | None = None,
) -> bytes:
    """The bytes of one client frame (see `WireSocket.send_frame`)."""
    length = len(payload) if declared_length is None else declared_length
    header = bytearray([(0x80 if fin else 0) | (rsv & 0x7) << 4 | (opcode & 0x0F)])
    mask_bit = 0x80 if mask else 0
    if length < 126:
        header.append(mask_bit | length)
    elif length < 1 << 16:
        header.append(mask_bit | 126)
        header += struct.pack("!H", length)
    else:
        header.append(mask_bit | 127)
        header += struct.pack("!Q", length)
    if not mask:
        return bytes(header) + payload
    key = os.urandom(4)
    return bytes(header) + key + _mask(payload, key)


def _mask(payload: bytes, key: bytes) -> bytes:
    """XOR with the repeated 4-byte key, as one big-integer operation (fast for megabytes)."""
    if not payload:
        return b""
    size = len(payload)
    repeated = (key * (size // 4 + 1))[:size]
    masked = int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")
    return masked.to_bytes(size, "big")


def _handshake(
    sock: socket.socket,
    host: str,
    path: str,
    headers: dict[str, str],
    timeout: float,
    early: bytes,
) -> bytes:
    key = base64.b64encode(os.urandom(16))
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key.decode()}",
        "Sec-WebSocket-Version: 13",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + early)
    answer = bytearray()
    deadline = time.monotonic() + timeout
    while b"\r\n\r\n" not in answer:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError(f"the server closed during the handshake: {bytes(answer)!r}")
        answer += chunk
    head, _, rest = bytes(answer).partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    if " 101 " not in f"{status_line} ":
        raise ConnectionError(f"the server refused the upgrade: {status_line}")
    received = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in header_lines)
    }
    expected = base64.b64encode(hashlib.sha1(key + _ACCEPT_GUID).digest()).decode()
    if received.get("sec-websocket-accept") != expected:
        raise ConnectionError("the server answered the upgrade with a wrong Sec-WebSocket-Accept")
    return rest
