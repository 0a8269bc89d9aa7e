"""The open LevelDB, shared by the event loop, the writer thread and the reader threads.

plyvel crashes the process when a database is closed while another thread
still uses it, so every use holds a lease (`with handle as db:`) and closing
waits until no lease is held. A lease is a counter under a lock: cheap enough
for the point reads that run on the event loop.

The handle also remembers the first damage any user of the database saw (a
failed checksum, a record pointing at nothing), so that readiness can say the
store is not whole; only a repair of the stopped folder clears it.
"""

from __future__ import annotations

import threading
from typing import Any

import structlog

from chatapp.messaging.store import MessageStoreError

_log = structlog.get_logger(__name__)


class LevelDBHandle:
    """One plyvel DB that is closed only once nobody is using it."""

    def __init__(self, db: Any) -> None:
        self._db: Any = db
        self._closed_because = ""
        self._leases = 0
        # The lock alone guards a lease (`with` on a Lock runs in C); the condition
        # on it is notified only while `close` waits.
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._damage: str | None = None

    @property
    def damage(self) -> str | None:
        """What the first damage seen was, or None while none has been seen."""
        return self._damage

    def report_damage(self, what: str) -> None:
        """Remember that the database is damaged; the first report is kept."""
        if self._damage is None:
            self._damage = what
            _log.error("message_store_damaged", damage=what)

    @property
    def is_open(self) -> bool:
        """Whether a lease would be granted now."""
        return self._db is not None

    def __enter__(self) -> Any:
        """Lease the DB; raises `MessageStoreError` when it is closed."""
        with self._lock:
            if self._db is None:
                raise MessageStoreError(self._closed_because)
            self._leases += 1
            return self._db

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            self._leases -= 1
            if not self._leases and self._db is None:  # `close` is waiting
                self._idle.notify_all()

    def close(self, reason: str) -> None:
        """Refuse new leases with `reason`, wait for those held, then close the DB.

        Blocks until the last lease ends, so it runs on a thread, never on the
        event loop. Closing a closed handle only changes the reason.
        """
        with self._idle:
            db, self._db = self._db, None
            self._closed_because = reason
            self._idle.wait_for(lambda: not self._leases)
        if db is not None:
            db.close()

    def replace(self, db: Any) -> None:
        """Lease `db` from now on, after `close`."""
        with self._idle:
            self._db = db
