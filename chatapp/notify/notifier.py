"""The notifier: from accepted messages to notifications for devices nobody is looking at."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterable, Mapping
from typing import Protocol

import structlog
from pydantic import BaseModel

from chatapp.accounts import DeviceRevoked, PushTarget, User
from chatapp.clock import Clock
from chatapp.errors import NotFound
from chatapp.messaging.events import MessageAccepted
from chatapp.notify.collapse import Collapser, Pending
from chatapp.notify.delivery import Delivery, DeliveryQueue
from chatapp.notify.notification import Notification, preview
from chatapp.presence.tracker import LiveDevices

log = structlog.get_logger(__name__)

# Handled on one queue, so that a revocation is handled after the messages
# published before it and the revoked device's waiting windows go too.
OBSERVED_EVENTS: tuple[type[BaseModel], ...] = (MessageAccepted, DeviceRevoked)


class PushDirectory(Protocol):
    """What the notifier needs from accounts."""

    async def push_targets_of(self, user_ids: Iterable[int]) -> list[PushTarget]:
        """The push targets of these users' live devices."""
        ...

    async def get_user(self, user_id: int) -> User:
        """A user's profile; NotFound when there is none."""
        ...

    async def forget_push_target(self, device_id: int) -> None:
        """Drop a device's target for good."""
        ...


class Notifier:
    """Learns of messages from the bus and hands notifications to the providers' queues.

    Recipients are the channel's members other than the sender who have no
    live device; each of their devices with a push target gets one
    notification per channel per collapse window. A window that ends while
    the recipient is connected again sends nothing: they are reading.
    """

    def __init__(
        self,
        *,
        directory: PushDirectory,
        live_devices: LiveDevices,
        queues: Mapping[str, DeliveryQueue],
        clock: Clock,
        window_seconds: float,
        include_text: bool,
    ) -> None:
        self._directory = directory
        self._live = live_devices
        self._queues = queues
        self._collapser = Collapser(clock, window_seconds=window_seconds)
        self._window = window_seconds
        self._include_text = include_text
        # How often due windows are looked for while some are open.
        self._tick = min(max(window_seconds / 10, 0.01), 0.25)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def observe(self, event: BaseModel) -> None:
        """One of OBSERVED_EVENTS, from the bus."""
        if isinstance(event, MessageAccepted):
            await self.message_accepted(event)
        elif isinstance(event, DeviceRevoked):
            self.device_revoked(event)

    def start(self) -> None:
        self._task = asyncio.create_task(self._flush_forever(), name="notify:collapse")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if len(self._collapser):
            log.info("push_windows_abandoned", waiting=len(self._collapser))

    async def message_accepted(self, event: MessageAccepted) -> None:
        sender = event.message.sender_id
        offline = [
            user_id
            for user_id in event.inbox_seqs
            if user_id != sender and not await self._live.has_live_device(user_id)
        ]
        if not offline:
            return
        for target in await self._directory.push_targets_of(offline):
            # A target of a provider the server no longer enables is kept
            # (it may come back) but not used.
            if target.provider in self._queues:
                self._collapser.add(target, event.message, event.inbox_seqs[target.user_id])
        if self._window == 0:
            await self.flush_due()
        else:
            self._wake.set()

    def device_revoked(self, event: DeviceRevoked) -> None:
        self._collapser.forget_device(event.device_id)

    async def flush_due(self) -> None:
        """Turn every window that has ended into a notification on its provider's queue."""
        names: dict[int, str] = {}
        for pending in self._collapser.take_due():
            if await self._live.has_live_device(pending.target.user_id):
                continue
            sender_id = pending.newest.sender_id
            if sender_id not in names:
                names[sender_id] = await self._sender_name(sender_id)
            notification = self._notification(pending, names[sender_id])
            self._queues[pending.target.provider].put(Delivery(pending.target, notification))

    async def _flush_forever(self) -> None:
        while True:
            if not len(self._collapser):
                self._wake.clear()
                await self._wake.wait()
            await asyncio.sleep(self._tick)
            try:
                await self.flush_due()
            except Exception:  # a failed flush must not stop later ones
                log.exception("push_flush_failed")

    async def _sender_name(self, sender_id: int) -> str:
        try:
            return (await self._directory.get_user(sender_id)).display_name
        except NotFound:
            return ""

    def _notification(self, pending: Pending, sender_name: str) -> Notification:
        message = pending.newest
        text, truncated = preview(message.text) if self._include_text else (None, None)
        return Notification(
            id=uuid.uuid4().hex,
            user_id=pending.target.user_id,
            device_id=pending.target.device_id,
            channel_id=message.channel_id,
            sender_id=message.sender_id,
            sender_name=sender_name,
            message_id=message.message_id,
            seq=pending.seq,
            count=pending.count,
            created_at=message.created_at,
            text=text,
            text_truncated=truncated,
        )
