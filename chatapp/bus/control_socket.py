"""The control socket: how a command on this machine reaches the running server's bus.

A CLI command that changes state (`chatapp reset-password`) runs in its own
process. It writes through the stores as the server would, and the events it
publishes are relayed here, one JSON line each, so that the running server
hears them as if its own modules had published them: a revoked device's
sockets close at once. In cluster mode a shared bus does this job instead.

The socket is a file in the data folder with mode 0600: only the account
that owns the data, which could rewrite the databases anyway, can use it.
Each line is decoded by the event codec, so a peer can publish only the
server's own event types, each validated by its model.

A line may instead be a request, `{"request": NAME, ...}`, for work that
only the running server can do (`chatapp backup` copies stores whose locks
it holds): the server runs the handler the composition root gave it for
NAME and answers with one line, `{"ok": true, ...}` or `{"ok": false,
"error": ...}`, when the work is done, however long it takes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import structlog
from pydantic import BaseModel

from chatapp.bus.codec import EventCodec, UnknownEvent
from chatapp.bus.protocol import Bus

log = structlog.get_logger(__name__)

SOCKET_NAME = "control.sock"
MAX_LINE_BYTES = 4 * 1024 * 1024
# sun_path holds 108 bytes on Linux; longer paths are reached through the
# folder's file descriptor instead.
_MAX_SOCKET_PATH = 100
_OK = b'{"ok":true}\n'


Request = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
"""Does what a request asks and answers with what to tell the command."""


class ControlUnreachable(Exception):
    """A server seems to run on the folder but did not take the events."""


class RequestRefused(Exception):
    """A request the server will not do (its message says why); raised by a `Request`."""


class ControlSocket:
    """Listens in the data folder and publishes what it receives on `bus`."""

    def __init__(
        self,
        data_dir: Path,
        bus: Bus,
        codec: EventCodec,
        *,
        requests: Mapping[str, Request] | None = None,
    ) -> None:
        self.path = data_dir / SOCKET_NAME
        self._bus = bus
        self._codec = codec
        self._requests = dict(requests or {})
        self._server: asyncio.Server | None = None
        self._folder: int | None = None

    async def start(self) -> None:
        # Only one server opens a data folder (the stores hold its locks), so
        # a file left here is from a server that died: it is safe to replace.
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        address, self._folder = _address(self.path)
        previous = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(
                self._serve, address, limit=MAX_LINE_BYTES
            )
        finally:
            os.umask(previous)
        os.chmod(self.path, 0o600)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        if self._folder is not None:
            os.close(self._folder)
            self._folder = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                request = _request_in(line)
                answer = self._publish(line) if request is None else await self._answer(request)
                writer.write(answer)
                await writer.drain()
        except (ConnectionError, ValueError):
            # ValueError: a line over MAX_LINE_BYTES. The peer is dropped.
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _answer(self, request: dict[str, Any]) -> bytes:
        name = str(request.get("request"))
        handler = self._requests.get(name)
        if handler is None:
            log.warning("control_request_refused", request=name)
            return _line({"ok": False, "error": f"this server does not take {name!r} requests"})
        log.info("control_request_started", request=name)
        try:
            answer = {"ok": True, **await handler(request)}
        except RequestRefused as refusal:
            log.warning("control_request_refused", request=name, reason=str(refusal))
            answer = {"ok": False, "error": str(refusal)}
        except Exception as failure:
            log.exception("control_request_failed", request=name)
            answer = {"ok": False, "error": f"the server failed: {failure!r}"}
        else:
            log.info("control_request_done", request=name)
        return _line(answer)

    def _publish(self, line: bytes) -> bytes:
        try:
            event = self._codec.decode(line)
        except UnknownEvent as refusal:
            log.warning("control_event_refused", reason=str(refusal))
            return b'{"ok":false,"error":"unknown_event"}\n'
        log.info("control_event_published", event_type=type(event).__name__)
        self._bus.publish(event)
        return _OK


async def relay_to_running_server(
    data_dir: Path, events: list[BaseModel], codec: EventCodec, *, wait_seconds: float = 5.0
) -> bool:
    """Publish `events` on the bus of the server running on `data_dir`.

    False when no server runs there; ControlUnreachable when one seems to but
    does not take them within `wait_seconds`.
    """
    if not events:
        return False
    path = data_dir / SOCKET_NAME
    address, folder = _address(path)
    try:
        async with asyncio.timeout(wait_seconds):
            try:
                reader, writer = await asyncio.open_unix_connection(address)
            except (FileNotFoundError, ConnectionRefusedError):
                return False
            try:
                for event in events:
                    writer.write(codec.encode(event) + b"\n")
                    await writer.drain()
                    if await reader.readline() != _OK:
                        raise ControlUnreachable(f"the server refused {type(event).__name__}")
            finally:
                writer.close()
                with contextlib.suppress(ConnectionError):
                    await writer.wait_closed()
    except (TimeoutError, OSError) as failure:
        raise ControlUnreachable(f"{path}: {failure or 'no answer'}") from None
    finally:
        if folder is not None:
            os.close(folder)
    return True


async def ask_running_server(
    data_dir: Path, request: dict[str, Any], *, connect_seconds: float = 5.0
) -> dict[str, Any] | None:
    """Send one request to the server running on `data_dir` and wait for its answer.

    None when no server runs there. The answer is the server's
    (`{"ok": ..., ...}`), however long the work takes; ControlUnreachable
    when the server does not take the connection within `connect_seconds`
    or closes it before answering.
    """
    path = data_dir / SOCKET_NAME
    address, folder = _address(path)
    try:
        try:
            async with asyncio.timeout(connect_seconds):
                reader, writer = await asyncio.open_unix_connection(address, limit=MAX_LINE_BYTES)
        except (FileNotFoundError, ConnectionRefusedError):
            return None
        except (TimeoutError, OSError) as failure:
            raise ControlUnreachable(f"{path}: {failure or 'no answer'}") from None
        try:
            writer.write(_line(request))
            await writer.drain()
            answer = await reader.readline()
        except (ConnectionError, ValueError) as failure:
            raise ControlUnreachable(f"{path}: {failure}") from None
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
    finally:
        if folder is not None:
            os.close(folder)
    if not answer:
        raise ControlUnreachable(f"{path}: the server closed the connection before answering")
    found: dict[str, Any] = json.loads(answer)
    return found


async def server_listens(data_dir: Path, *, wait_seconds: float = 2.0) -> bool:
    """Whether a server takes connections on `data_dir`'s control socket now."""
    address, folder = _address(data_dir / SOCKET_NAME)
    try:
        async with asyncio.timeout(wait_seconds):
            _, writer = await asyncio.open_unix_connection(address)
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    except (FileNotFoundError, ConnectionRefusedError):
        return False
    except (TimeoutError, OSError):
        return True  # something holds the socket but does not answer: not a folder to change
    finally:
        if folder is not None:
            os.close(folder)
    return True


def _request_in(line: bytes) -> dict[str, Any] | None:
    """The request a line makes, or None for an event (`{"type": ..., "event": ...}`)."""
    if b'"request"' not in line:
        return None
    try:
        found = json.loads(line)
    except ValueError:
        return None
    return found if isinstance(found, dict) and "request" in found else None


def _line(answer: dict[str, Any]) -> bytes:
    return json.dumps(answer, separators=(",", ":")).encode() + b"\n"


def _address(path: Path) -> tuple[str, int | None]:
    """A path short enough for a Unix socket, and the folder descriptor it goes through."""
    if len(os.fsencode(path)) <= _MAX_SOCKET_PATH:
        return str(path), None
    folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    return f"/proc/self/fd/{folder}/{path.name}", folder
