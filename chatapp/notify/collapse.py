"""Collapsing: during a burst, one notification per device and channel per window."""

from __future__ import annotations

from dataclasses import dataclass

from chatapp.accounts import PushTarget
from chatapp.clock import Clock
from chatapp.messaging.models import StoredMessage


@dataclass
class Pending:
    """Messages waiting to become one notification for one device and channel."""

    target: PushTarget
    newest: StoredMessage
    seq: int
    count: int
    due: float


class Collapser:
    """The first message for a (device, channel) opens a window; the window's end sends it all.

    Every window has the same length, so windows fall due in the order they
    opened: the oldest is always first, and taking the due ones stops at the
    first that is not. With a window of 0 every message is due at once.
    """

    def __init__(self, clock: Clock, *, window_seconds: float) -> None:
        self._clock = clock
        self._window = window_seconds
        self._pending: dict[tuple[int, int], Pending] = {}

    def add(self, target: PushTarget, message: StoredMessage, seq: int) -> None:
        key = (target.device_id, message.channel_id)
        pending = self._pending.get(key)
        if pending is None:
            due = self._clock.monotonic() + self._window
            self._pending[key] = Pending(target, message, seq, 1, due)
            return
        pending.target = target
        pending.count += 1
        if seq > pending.seq:
            pending.newest, pending.seq = message, seq

    def take_due(self) -> list[Pending]:
        now = self._clock.monotonic()
        due: list[Pending] = []
        for pending in self._pending.values():
            if pending.due > now:
                break
            due.append(pending)
        for pending in due:
            del self._pending[(pending.target.device_id, pending.newest.channel_id)]
        return due

    def forget_device(self, device_id: int) -> None:
        """The device was revoked: what waits for it is never sent."""
        for key in [key for key in self._pending if key[0] == device_id]:
            del self._pending[key]

    def next_due(self) -> float | None:
        """When the oldest window ends (monotonic seconds); None when nothing waits."""
        first = next(iter(self._pending.values()), None)
        return first.due if first is not None else None

    def __len__(self) -> int:
        return len(self._pending)
