"""The open-file limit against `max_connections`, checked once before the server listens.

Every WebSocket holds a file descriptor, and so does everything else the
server keeps open. When sockets take the last one, LevelDB cannot open its
next log or table and writes fail until some are freed (the stores then
recover by themselves; see `leveldb_writer`). So `max_connections` plus what
the rest of the server may hold (`reserved_files`) must fit under the
process's soft RLIMIT_NOFILE:

1. when it does not, the soft limit is raised to the hard limit, as most
   servers do: the hard limit is the ceiling the operator chose, and sockets
   that `max_connections` does not count (HTTP requests, handshakes) need
   descriptors too;
2. when it still does not, `max_connections` is lowered to what fits, with
   one warning that names both numbers;
3. a limit that leaves no room for a single connection refuses the start.
"""

from __future__ import annotations

import resource
from typing import Final, Protocol

import structlog

from chatapp.bootstrap.stores import SQLITE_CONNECTIONS
from chatapp.config import Settings
from chatapp.errors import StartupRefused
from chatapp.messaging.adapters.leveldb_layout import MAX_OPEN_FILES as MESSAGE_STORE_FILES
from chatapp.presence.adapters.leveldb_presence import MAX_OPEN_FILES as PRESENCE_STORE_FILES
from chatapp.search.adapters.sqlite_index import CONNECTIONS as SEARCH_CONNECTIONS
from chatapp.storage.sqlite import FILES_PER_CONNECTION as SQLITE_FILES_PER_CONNECTION

PROCESS_FILES: Final = 32
"""The process's own: standard streams, the event loop's (epoll, eventfd, io_uring, signal
pipes, and the spare uvloop keeps for EMFILE), the listening sockets, the watermark file, and
files opened late (a module imported on first use, a web client file being sent, /proc read
for /metrics). Measured: an idle server holds 31 descriptors, 17 of them these; the rest are
the stores', counted below at their bounds."""

UNCOUNTED_SOCKETS: Final = 32
"""HTTP requests and WebSocket handshakes in progress, which `max_connections` does not count."""

CONTROL_SOCKET_FILES: Final = 4
"""The control socket's listening socket, and up to three commands connected to it at once."""

PUSH_FILES_PER_WORKER: Final = 3
"""For each delivery worker of a provider that posts: the delivery's connection, the one the
HTTP client keeps alive for the next delivery, and the socket of a name lookup."""

POSTGRES_CONNECTIONS: Final = 10
"""Cluster mode: the most connections of the node's pool (`open_postgres`'s `max_size`)."""

REDIS_CONNECTIONS: Final = 16
"""Cluster mode: the bus's subscription, and the commands in flight on the shared client."""

QUIET_PROVIDERS: Final = frozenset({"log"})
"""Push providers that open no connection."""

_log = structlog.get_logger(__name__)


class FileLimit(Protocol):
    """The process's limit on open files (RLIMIT_NOFILE); None where it is unlimited."""

    def current(self) -> tuple[int | None, int | None]:
        """The soft limit (what binds now) and the hard limit (how far it may be raised)."""
        ...

    def raise_soft(self, to: int) -> None:
        """Raise the soft limit to `to`; `OSError` or `ValueError` when the system refuses."""
        ...


class ProcessFileLimit:
    """RLIMIT_NOFILE of this process."""

    def current(self) -> tuple[int | None, int | None]:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        return _finite(soft), _finite(hard)

    def raise_soft(self, to: int) -> None:
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (to, hard))


def reserved_files(settings: Settings) -> int:
    """The most descriptors the server may hold besides its WebSockets, with these settings."""
    posting = [name for name in settings.push_providers if name not in QUIET_PROVIDERS]
    shared = PROCESS_FILES + UNCOUNTED_SOCKETS
    shared += len(posting) * settings.push_workers * PUSH_FILES_PER_WORKER
    if settings.cluster_mode:
        return shared + POSTGRES_CONNECTIONS + REDIS_CONNECTIONS
    stores = MESSAGE_STORE_FILES + PRESENCE_STORE_FILES
    stores += (SQLITE_CONNECTIONS + SEARCH_CONNECTIONS) * SQLITE_FILES_PER_CONNECTION
    return shared + stores + CONTROL_SOCKET_FILES


def fit_connections(settings: Settings, limit: FileLimit | None = None) -> Settings:
    """`settings`, with `max_connections` lowered when the open-file limit cannot hold it.

    Raises the soft limit first when it is too low; raises `StartupRefused`
    when even the hard limit leaves no room for one connection.
    """
    limit = limit or ProcessFileLimit()
    reserve = reserved_files(settings)
    needed = settings.max_connections + reserve
    soft, hard = limit.current()
    if soft is None or soft >= needed:
        return settings
    soft = _raise_soft(limit, soft, hard if hard is not None else needed)
    if soft >= needed:
        return settings
    room = soft - reserve
    if room < 1:
        raise StartupRefused(
            f"the open-file limit is {soft} (hard limit {hard}), no more than the {reserve} "
            "files the server keeps for its stores and itself, so no connection would fit; "
            f"raise it to {needed} for max_connections {settings.max_connections} "
            "(ulimit -n, or LimitNOFILE= in a systemd unit)"
        )
    _log.warning(
        "max_connections_lowered",
        max_connections=settings.max_connections,
        lowered_to=room,
        open_file_limit=soft,
        reserved_files=reserve,
    )
    return settings.model_copy(update={"max_connections": room})


def _raise_soft(limit: FileLimit, soft: int, to: int) -> int:
    """The soft limit after trying to raise it to `to`."""
    if to <= soft:
        return soft
    try:
        limit.raise_soft(to)
    except (OSError, ValueError) as refusal:
        _log.info("open_file_limit_not_raised", soft_limit=soft, wanted=to, error=str(refusal))
        return soft
    _log.info("open_file_limit_raised", soft_limit=to, was=soft)
    return to


def _finite(value: int) -> int | None:
    return None if value == resource.RLIM_INFINITY else value
