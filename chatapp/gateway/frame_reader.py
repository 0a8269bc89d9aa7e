"""Cutting a client's bytes into WebSocket messages (RFC 6455, section 5), server side.

The gateway reads its sockets itself once they are upgraded (`gateway.wire`),
so this is the whole of what a client may send: data frames (text, binary,
continuations) joined into messages and checked (UTF-8, size), and control
frames (close, ping, pong) taken between fragments. Whatever the RFC forbids
is a `Violation` with the close code it calls for; the reader takes nothing
after one.

Client frames are unmasked whether or not they are masked: the RFC says a
client masks, but the server before this one took unmasked frames too, and
clients written against it may depend on that.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

# aiohttp's own unmasking (C, with a Python fallback): a dependency already,
# pinned below 4 in pyproject.
from aiohttp._websocket.helpers import websocket_mask

TEXT = 0x1
BINARY = 0x2
CLOSE = 0x8
PING = 0x9
PONG = 0xA
_CONTINUATION = 0x0

CLOSE_NO_STATUS = 1005
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_INVALID_TEXT = 1007
CLOSE_TOO_BIG = 1009

_UNPACK_LEN2 = struct.Struct("!H").unpack_from
_UNPACK_LEN8 = struct.Struct("!Q").unpack_from
# Close codes a client may send: those aiohttp's reader took before this one
# (RFC 6455 7.4's defined codes, with 1006, and everything from 3000 up), so
# that no client that worked is refused now.
_SENDABLE_CLOSE_CODES = frozenset({1000, 1001, 1002, 1003, *range(1006, 1015)})

Message = tuple[int, "str | bytes | tuple[int, str]"]
"""An opcode and what came with it: TEXT str, BINARY/PING/PONG bytes, CLOSE (code, reason)."""


class Violation(Exception):
    """The client broke the protocol; the connection closes with `code`."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class FrameReader:
    """Messages out of a byte stream, as its pieces arrive (`feed`).

    Bytes that do not make a whole frame yet are appended to one buffer, so a
    2 MiB message arriving in 64 KiB reads is not copied once per read, and
    one arriving a byte at a time holds its bytes, not an object per byte.
    """

    __slots__ = ("_fragment_opcode", "_fragments", "_fragments_bytes", "_max_message", "_need",
                 "_pending")  # fmt: skip

    def __init__(self, max_message: int) -> None:
        self._max_message = max_message
        # The beginning of a frame, until the rest of it arrives; None between frames.
        self._pending: bytearray | None = None
        # Bytes the next frame needs at least (its header, then all of it).
        self._need = 2
        # The data frames of a message not finished yet; None outside one.
        self._fragments: list[bytes | bytearray] | None = None
        self._fragment_opcode = TEXT
        self._fragments_bytes = 0

    @property
    def buffered(self) -> int:
        """Bytes held for a frame that has not arrived whole yet."""
        return 0 if self._pending is None else len(self._pending)

    def feed(self, data: bytes, emit: Callable[[Message], None]) -> None:
        """Take `data`; `emit` each message it completes, in order.

        Raises `Violation` at the first frame the protocol forbids, after the
        messages before it were emitted.
        """
        pending = self._pending
        if pending is not None:
            pending += data
            if len(pending) < self._need:
                return
            data = bytes(pending)
            self._pending = None
        elif len(data) < self._need:
            self._pending = bytearray(data)
            return
        rest = self._parse(data, emit)
        if rest:
            self._pending = bytearray(rest)

    def _parse(self, data: bytes, emit: Callable[[Message], None]) -> bytes:
        """Emit every whole frame of `data`; what is left of it (a frame's beginning)."""
        end = len(data)
        at = 0
        while True:
            if end - at < 2:
                self._need = 2
                return data[at:]
            first, second = data[at], data[at + 1]
            if first & 0x70:
                raise Violation(CLOSE_PROTOCOL_ERROR, "reserved bits set (no extension agreed)")
            opcode = first & 0x0F
            length = second & 0x7F
            start = at + 2
            if length == 126:
                if end - at < 4:
                    self._need = 4
                    return data[at:]
                (length,) = _UNPACK_LEN2(data, at + 2)
                start = at + 4
            elif length == 127:
                if end - at < 10:
                    self._need = 10
                    return data[at:]
                (length,) = _UNPACK_LEN8(data, at + 2)
                start = at + 10
            self._check_header(opcode, fin=bool(first & 0x80), length=length)
            masked = second & 0x80
            payload_at = start + 4 if masked else start
            frame_end = payload_at + length
            if frame_end > end:
                self._need = frame_end - at
                return data[at:]
            payload: bytes | bytearray
            if masked:  # unmasked in the one copy made of it
                payload = _unmask(memoryview(data)[payload_at:frame_end], data[start:payload_at])
            else:
                payload = data[payload_at:frame_end]
            at = frame_end
            self._take(opcode, bool(first & 0x80), payload, emit)

    def _check_header(self, opcode: int, *, fin: bool, length: int) -> None:
        """Refuse a frame from its header alone: before a lying length's payload is awaited."""
        if opcode >= CLOSE:
            if opcode not in (CLOSE, PING, PONG):
                raise Violation(CLOSE_PROTOCOL_ERROR, f"reserved control opcode {opcode:#x}")
            if not fin:
                raise Violation(CLOSE_PROTOCOL_ERROR, "fragmented control frame")
            if length > 125:
                raise Violation(CLOSE_PROTOCOL_ERROR, "control frame over 125 bytes")
            return
        if opcode == _CONTINUATION:
            if self._fragments is None:
                raise Violation(CLOSE_PROTOCOL_ERROR, "continuation with nothing to continue")
        elif opcode in (TEXT, BINARY):
            if self._fragments is not None:
                raise Violation(CLOSE_PROTOCOL_ERROR, "new message inside a fragmented one")
        else:
            raise Violation(CLOSE_PROTOCOL_ERROR, f"reserved data opcode {opcode:#x}")
        if self._fragments_bytes + length > self._max_message:
            raise Violation(CLOSE_TOO_BIG, f"message over {self._max_message} bytes")

    def _take(
        self,
        opcode: int,
        fin: bool,
        payload: bytes | bytearray,
        emit: Callable[[Message], None],
    ) -> None:
        if opcode >= CLOSE:
            emit((opcode, _close_of(payload) if opcode == CLOSE else bytes(payload)))
            return
        if opcode != _CONTINUATION:
            self._fragment_opcode = opcode
            if fin:
                emit((opcode, _text(payload) if opcode == TEXT else bytes(payload)))
                return
            self._fragments = []
        fragments = self._fragments
        assert fragments is not None  # checked by _check_header
        fragments.append(payload)
        self._fragments_bytes += len(payload)
        if fin:
            whole = b"".join(fragments)
            self._fragments = None
            self._fragments_bytes = 0
            emit((self._fragment_opcode, _text(whole) if self._fragment_opcode == TEXT else whole))


def _unmask(payload: memoryview, key: bytes) -> bytearray:
    """XOR with the 4-byte key, repeated: aiohttp's C loop, under 1 ms for 2 MiB here where
    Python's big integers took 14 ms of the event loop."""
    unmasked = bytearray(payload)
    websocket_mask(key, unmasked)
    return unmasked


def _text(payload: bytes | bytearray) -> str:
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        raise Violation(CLOSE_INVALID_TEXT, "text that is not UTF-8") from None


def _close_of(payload: bytes | bytearray) -> tuple[int, str]:
    """A close frame's code and reason; no code is 1005 (RFC 6455 7.1.5)."""
    if not payload:
        return CLOSE_NO_STATUS, ""
    if len(payload) == 1:
        raise Violation(CLOSE_PROTOCOL_ERROR, "close frame of one byte")
    (code,) = _UNPACK_LEN2(payload)
    if code not in _SENDABLE_CLOSE_CODES and code < 3000:
        raise Violation(CLOSE_PROTOCOL_ERROR, f"close code {code} may not be sent")
    return code, _text(payload[2:])
