"""Collapse windows: during a burst, one notification per device and channel per window.

The first message for a (device, channel) opens a window; when it ends, the
window becomes one notification for everything that arrived meanwhile.
Where windows live is a protocol: in this process's memory on the embedded
server (`MemoryWindows`, lost with the process like the rest of its queues),
or in the cluster's database (`notify.adapters.postgres_windows`), where any
node may deliver a window that falls due and a window whose node died is
taken over once its lease runs out.

A window's `notification_id` is fixed when it opens, so that a notification
sent again by the node that took a window over carries the id the receiver
may already have (`Notification.id`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from chatapp.clock import Clock
from chatapp.errors import StoreFailed


class PushWindowsError(StoreFailed):
    """The windows' store could not do its part now."""


@dataclass(frozen=True, slots=True)
class Opening:
    """One accepted message for one device: it opens a window or joins the open one."""

    user_id: int
    device_id: int
    channel_id: int
    sender_id: int
    message_id: int
    seq: int
    """The recipient's inbox seq of the message."""
    created_at: int
    text: str | None
    """The preview a notification shows, None when text is kept out of push."""
    text_truncated: bool | None
    mentioned: bool = False
    """Whether the message mentions the recipient."""
    provider: str | None = None
    """The provider of the device's push target: in a cluster, only a node that has it
    delivers the window."""


@dataclass(frozen=True, slots=True)
class Window:
    """The messages waiting to become one notification, described by the newest."""

    notification_id: str
    newest: Opening
    count: int
    mentioned: bool = False
    """Whether any of the window's messages mentions the recipient."""


class PushWindows(Protocol):
    """Where collapse windows wait until they end."""

    @property
    def shared(self) -> bool:
        """True when windows opened elsewhere fall due here too, so they must be polled for."""
        ...

    def waiting(self) -> bool:
        """Whether any window of this process is open (always True when `shared`)."""
        ...

    async def add(self, openings: Sequence[Opening]) -> None:
        """Open a window for each opening's (device, channel), or count it into the open one.

        The openings are of one message, so no two share a (device, channel).
        """
        ...

    async def take_due(self) -> list[Window]:
        """The windows that have ended, oldest first; each now this process's to deliver."""
        ...

    async def finished(self, window: Window) -> None:
        """The window's notification was delivered or given up: it is never delivered again."""
        ...

    async def hand_over(self, window: Window, provider: str) -> None:
        """A window taken here whose device now pushes through `provider`, which this
        process lacks: leave it to one that has it (when `shared`; otherwise it is gone)."""
        ...

    async def forget_device(self, device_id: int) -> None:
        """The device was revoked: what waits for it is never sent."""
        ...


class MemoryWindows:
    """`PushWindows` in this process's memory.

    Every window has the same length, so windows fall due in the order they
    opened: the oldest is always first, and taking the due ones stops at the
    first that is not. With a window of 0 every message is due at once.
    """

    def __init__(self, clock: Clock, *, window_seconds: float) -> None:
        self._clock = clock
        self._window = window_seconds
        self._open: dict[tuple[int, int], tuple[float, Window]] = {}

    @property
    def shared(self) -> bool:
        return False

    def waiting(self) -> bool:
        return bool(self._open)

    async def add(self, openings: Sequence[Opening]) -> None:
        for opening in openings:
            key = (opening.device_id, opening.channel_id)
            found = self._open.get(key)
            if found is None:
                due = self._clock.monotonic() + self._window
                window = Window(uuid.uuid4().hex, opening, 1, mentioned=opening.mentioned)
                self._open[key] = (due, window)
                continue
            due, window = found
            newest = opening if opening.seq > window.newest.seq else window.newest
            mentioned = window.mentioned or opening.mentioned
            joined = replace(window, newest=newest, count=window.count + 1, mentioned=mentioned)
            self._open[key] = (due, joined)

    async def take_due(self) -> list[Window]:
        now = self._clock.monotonic()
        due: list[tuple[int, int]] = []
        for key, (ends, _) in self._open.items():
            if ends > now:
                break
            due.append(key)
        return [self._open.pop(key)[1] for key in due]

    async def finished(self, window: Window) -> None:
        """Nothing to do: a window taken is gone from memory already."""

    async def hand_over(self, window: Window, provider: str) -> None:
        """Nothing to do: no other process shares these windows, and this one is gone."""

    async def forget_device(self, device_id: int) -> None:
        for key in [key for key in self._open if key[0] == device_id]:
            del self._open[key]

    def next_due(self) -> float | None:
        """When the oldest window ends (monotonic seconds); None when nothing waits."""
        first = next(iter(self._open.values()), None)
        return first[0] if first is not None else None

    def __len__(self) -> int:
        return len(self._open)
