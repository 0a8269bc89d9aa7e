"""The WebSocket endpoint: accepting a socket, the hello/sync handshake, the read loop."""

from __future__ import annotations

import asyncio
import contextlib
import itertools

import structlog
from aiohttp import web

from chatapp.accounts import Accounts
from chatapp.config import Settings
from chatapp.errors import Forbidden, Refused, StoreFailed, Unavailable
from chatapp.gateway import frames
from chatapp.gateway.budget import OutgoingBudget
from chatapp.gateway.connection import (
    CLOSE_HELLO_TIMEOUT,
    CLOSE_SLOW_CONSUMER,
    CLOSE_TOO_MANY,
    CLOSE_UNAUTHORIZED,
    CLOSE_UNSUPPORTED_DATA,
    Connection,
)
from chatapp.gateway.frame_reader import CLOSE, PING, PONG, TEXT
from chatapp.gateway.idle import IdleWatch
from chatapp.gateway.registry import ConnectionRegistry
from chatapp.gateway.session import Session, SessionModules
from chatapp.gateway.upgrade import take_over
from chatapp.gateway.wire import Transport, TurnWrites, WireSocket
from chatapp.presence.events import ConnectionClosed, ConnectionOpened

log = structlog.get_logger(__name__)

# Room for 100,000 characters even when a client escapes each one as a
# `\uXXXX\uXXXX` surrogate pair (12 bytes), with the frame around it.
MAX_FRAME_BYTES = 2 * 1024 * 1024
# A client that sends this many frames in a row that are not JSON text is not
# speaking the protocol at all; it is disconnected rather than answered forever.
MAX_UNREADABLE_IN_A_ROW = 20
# Frames one connection handles before it lets the others run (see `_read`).
FRAMES_PER_TURN = 64
# How long shutdown waits for the closing handshakes, then for the connections' cleanup.
CLOSE_TIMEOUT = 5.0


class Gateway:
    """Owns the live connections of this process.

    Connection ids are `node_id` and a counter: unique across the nodes of a
    cluster, so that an event naming a connection never names another node's.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        node_id: str,
        registry: ConnectionRegistry,
        accounts: Accounts,
        modules: SessionModules,
    ) -> None:
        self._settings = settings
        self._node_id = node_id
        self._serial = itertools.count(1)
        self._turn_writes = TurnWrites()
        self.registry = registry
        self._accounts = accounts
        self._modules = modules
        self._metrics = modules.metrics
        self._open = 0
        # Each socket's life (its read loop), with the socket: asyncio itself
        # holds only a weak reference to a task.
        self._lives: dict[asyncio.Task[None], WireSocket] = {}
        self._closing = False
        self.budget = OutgoingBudget(
            per_connection=settings.connection_queue_bytes, total=settings.outgoing_bytes_total
        )
        self._metrics.outgoing_bytes.set_function(lambda: self.budget.held)
        # A client heartbeats every heartbeat_interval; one that sends nothing
        # for twice the presence timeout is gone, whatever TCP says.
        self._idle = IdleWatch(registry.all, 2 * settings.presence_timeout_ms / 1000)

    def fill_gaps(self) -> None:
        """Events may have been missed (the bus between nodes was away): every connection
        checks the store for entries it has not been sent."""
        for connection in self.registry.all():
            if connection.on_gap is not None:
                connection.on_gap()

    @property
    def open_connections(self) -> int:
        """Live WebSockets of this process (what discovery balances)."""
        return self._open

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self._check_origin(request)
        response, wire = await take_over(request, self._wire_of)
        # The connection's whole life, outliving this request: aiohttp lets go of
        # the socket once it is upgraded (`gateway.upgrade`).
        life = asyncio.create_task(self._live(wire))
        self._lives[life] = wire
        life.add_done_callback(self._lives.pop)
        return response

    def _wire_of(self, transport: Transport) -> WireSocket:
        # No per-message compression: it would cost each connection a zlib
        # context (tens of KiB) and CPU on every frame, for text that is mostly
        # short. The handshake does not offer it.
        return WireSocket(transport, self._turn_writes, max_message=MAX_FRAME_BYTES)

    async def _live(self, socket: WireSocket) -> None:
        gauge = self._metrics.open_connections.labels(kind="websocket")
        gauge.inc()
        self._open += 1
        try:
            if self._closing:  # upgraded after shutdown began: told as the others were
                await socket.close(code=1001, message=b"server shutting down")
            elif self._open > self._settings.max_connections:
                self._refuse("connections_total")
                await socket.close(code=CLOSE_TOO_MANY, message=b"server full: try later")
            else:
                await self._serve(socket)
        except (StoreFailed, Unavailable) as failure:
            # A store that cannot answer now (reopening after a failed write,
            # a database away): the client should come back, not report a bug.
            log.warning("connection_store_unavailable", error=str(failure))
            await socket.close(code=CLOSE_SLOW_CONSUMER, message=b"store unavailable: try again")
        except asyncio.CancelledError:
            socket.abort()  # shutdown waited long enough: no closing handshake
            raise
        except Exception:
            log.exception("connection_failed")
            await socket.close(code=1011, message=b"internal error")
        finally:
            self._open -= 1
            gauge.dec()

    async def close(self) -> None:
        """On shutdown: tell every client to come back later, and wait (briefly) for them.

        A socket upgraded from now on is closed the same way at once; each
        socket's life ends by cleaning up (presence, the session) while the
        stores are still open, and one that has not ended in time is cancelled.
        """
        self._closing = True
        await self._idle.close()
        connections = self.registry.all()
        for connection in connections:
            connection.close(1001, "server shutting down")
        handshakes = [c.closing for c in connections if c.closing is not None]
        # Sockets still before their hello are no connections yet: told the same.
        handshakes += [
            asyncio.create_task(socket.close(code=1001, message=b"server shutting down"))
            for socket in self._lives.values()
            if not socket.closed
        ]
        if handshakes:
            await asyncio.wait(handshakes, timeout=CLOSE_TIMEOUT)
        while self._lives:
            _, late = await asyncio.wait(list(self._lives), timeout=CLOSE_TIMEOUT)
            for life in late:
                life.cancel()
            if late:
                await asyncio.wait(late)

    async def _serve(self, socket: WireSocket) -> None:
        greeted = await self._greet(socket)
        if greeted is None:  # refused, or gone during the handshake
            return
        user_id, device_id, ref, last_seq = greeted
        connection = Connection(
            socket,
            connection_id=f"{self._node_id}-{next(self._serial)}",
            user_id=user_id,
            device_id=device_id,
            queue_size=self._settings.connection_queue_size,
            budget=self.budget,
            hold_until_ready=True,
        )
        structlog.contextvars.bind_contextvars(
            user_id=user_id, device_id=device_id, connection=connection.id
        )
        # Registered before the replay reads the store, so that messages
        # arriving meanwhile are held rather than missed; other frames fanned
        # out to it meanwhile are held until `ready` is queued (hold_until_ready).
        self.registry.add(connection)
        self._idle.start()
        session = Session(connection, self._modules)
        log.info("connection_opened")
        bus = self._modules.bus
        bus.publish(
            ConnectionOpened(user_id=user_id, device_id=device_id, connection_id=connection.id)
        )
        try:
            max_seq = await self._modules.messaging.max_seq(user_id)
            connection.send_ready(
                frames.with_ref(
                    {
                        "type": "ready",
                        "user_id": user_id,
                        "device_id": device_id,
                        "heartbeat_interval_ms": self._settings.heartbeat_interval_ms,
                        "max_seq": max_seq,
                    },
                    ref,
                )
            )
            if last_seq is None:
                await session.skip_history(max_seq, ref=ref)
            else:
                await session.replay(last_seq, ref=ref)
            await self._read(socket, connection, session)
        finally:
            if connection.close_code == CLOSE_SLOW_CONSUMER:
                self._refuse("slow_consumer")
            bus.publish(
                ConnectionClosed(user_id=user_id, device_id=device_id, connection_id=connection.id)
            )
            self.registry.remove(connection)
            await session.close()
            await connection.finish()
            log.info("connection_closed", code=socket.close_code)

    async def _greet(self, socket: WireSocket) -> tuple[int, int, str | None, int | None] | None:
        """The hello, its token checked and the user's connections counted: who it is, the
        hello's ref and last_seq; None once the socket was closed.

        Only these few values outlive the handshake: the hello and the caller do
        not stay in the frame of a connection's whole life.
        """
        hello = await self._await_hello(socket)
        if hello is None:
            return None
        try:
            caller = await self._accounts.authenticate(hello.token)
        except Refused:
            await socket.close(code=CLOSE_UNAUTHORIZED, message=b"bad token")
            return None
        limit = self._settings.max_connections_per_user
        if len(self.registry.of_user(caller.user_id)) >= limit:
            self._refuse("connections_per_user")
            await socket.close(code=CLOSE_TOO_MANY, message=b"too many connections for this user")
            return None
        return caller.user_id, caller.device_id, hello.ref, hello.last_seq

    def _check_origin(self, request: web.Request) -> None:
        """Refuse cross-site WebSocket hijacking: a page elsewhere may not use our cookies' user."""
        origin = request.headers.get("Origin")
        if origin is None:
            return
        settings = self._settings
        allowed = {
            f"{request.scheme}://{request.host}".lower(),
            _origin_of(settings.base_url),
            *(_origin_of(entry) for entry in settings.allowed_origins),
        }
        if origin.rstrip("/").lower() not in allowed:
            self._refuse("origin")
            raise Forbidden("forbidden", "WebSockets from this origin are not allowed")

    def _refuse(self, limit: str) -> None:
        self._metrics.rate_limited.labels(limit=limit).inc()

    async def _await_hello(self, socket: WireSocket) -> frames.Hello | None:
        deadline = asyncio.get_running_loop().time() + self._settings.hello_timeout_ms / 1000
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    kind, data = await socket.receive()
            except TimeoutError:
                await socket.close(code=CLOSE_HELLO_TIMEOUT, message=b"no hello")
                return None
            if kind == PING:
                socket.pong(data)  # type: ignore[arg-type]
            elif kind != PONG:
                break
        if kind == CLOSE:
            return None
        frame: frames.ClientFrame | None = None
        if kind == TEXT:
            with contextlib.suppress(frames.FrameError):
                frame = frames.parse_frame(data)  # type: ignore[arg-type]
        if not isinstance(frame, frames.Hello):
            await socket.close(code=CLOSE_UNAUTHORIZED, message=b"hello first")
            return None
        return frame

    async def _read(self, socket: WireSocket, connection: Connection, session: Session) -> None:
        unreadable = 0
        read = 0
        loop = asyncio.get_running_loop()
        while True:
            # No timeout here: `IdleWatch` closes a socket silent for too long.
            kind, data = await socket.receive()
            connection.heard_at = loop.time()
            if kind == PING:
                socket.pong(data)  # type: ignore[arg-type]
                continue
            if kind == PONG:
                continue
            if kind == CLOSE:
                break
            # Answers to this client's own frames slow its reading down rather
            # than overflow its queue: a fast sender is not a slow consumer.
            await connection.room_for_answers()
            # Frames already read arrive without a wait, and answers to a socket
            # that keeps up are written without one: a client that never stops
            # sending would keep the loop from everyone else. It gives way in turns.
            read += 1
            if read % FRAMES_PER_TURN == 0:
                await asyncio.sleep(0)
            if kind == TEXT:
                try:
                    frame = frames.parse_frame(data)  # type: ignore[arg-type]
                except frames.FrameError as error:
                    unreadable = unreadable + 1 if error.unreadable else 0
                    connection.push(
                        frames.error_frame(
                            error.code,
                            error.message,
                            ref=error.ref,
                            client_msg_id=error.client_msg_id,
                        )
                    )
                else:
                    unreadable = 0
                    await session.handle(frame)
            else:  # BINARY
                unreadable += 1
                connection.push(
                    frames.error_frame("bad_request", "frames are JSON text, not binary")
                )
            if unreadable >= MAX_UNREADABLE_IN_A_ROW:
                # Through the connection's socket: the errors it took this turn go out first.
                await connection.socket.close(
                    code=CLOSE_UNSUPPORTED_DATA, message=b"not speaking the protocol"
                )
                break
            if connection.close_code is not None:
                break


def _origin_of(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}".lower()


GATEWAY = web.AppKey("gateway", Gateway)


async def websocket_route(request: web.Request) -> web.StreamResponse:
    return await request.app[GATEWAY].handle(request)


__all__ = ["GATEWAY", "Gateway", "websocket_route"]
