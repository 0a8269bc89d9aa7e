"""The notifier: from accepted messages to notifications for devices nobody is looking at."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Final, Protocol

import structlog
from pydantic import BaseModel

from chatapp.accounts import DeviceRevoked, PushTarget, User
from chatapp.errors import NotFound
from chatapp.messaging.events import MessageAccepted
from chatapp.notify.delivery import Delivery, DeliveryQueue
from chatapp.notify.notification import Notification, preview
from chatapp.notify.pending import PendingPushes, PendingSweeper
from chatapp.notify.windows import Opening, PushWindows, Window
from chatapp.presence.tracker import LiveDevices
from chatapp.social.models import ChannelLevels, NotificationLevel

log = structlog.get_logger(__name__)

# Handled on one queue, so that a revocation is handled after the messages
# published before it and the revoked device's waiting windows go too.
OBSERVED_EVENTS: tuple[type[BaseModel], ...] = (MessageAccepted, DeviceRevoked)

BATCH_MOST: Final = 64
"""Events `observe_many` is handed at most at once (a busy node's backlog of a few ms)."""


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


class PushLevels(Protocol):
    """What the notifier needs from social: which of a channel's messages each member wants."""

    async def channel_levels(
        self, channel_id: int, user_ids: Collection[int]
    ) -> ChannelLevels | None:
        """The channel's kind and the levels of those of `user_ids` who are members."""
        ...


def wants_push(level: NotificationLevel, *, direct: bool, mentioned: bool) -> bool:
    """Whether a member at `level` is pushed a message: `mentions` takes those that mention
    the member, and every message of a direct channel (which is addressed to them)."""
    if level == "all":
        return True
    return level == "mentions" and (direct or mentioned)


class Notifier:
    """Learns of messages from the bus and hands notifications to the providers' queues.

    Recipients are the channel's members other than the sender who have no
    live device and whose notification level wants the message (`wants_push`);
    each of their devices with a push target gets one notification per channel
    per collapse window (`windows`). A window that ends while the recipient is
    connected again sends nothing: they are reading. Nor does one whose
    recipient has since chosen a level that would not have opened it.

    In a cluster, windows are opened for every push target, whatever its
    provider, and each is delivered by a node that has the provider.
    With `pending` (a cluster), a message whose node never got this far is
    handled here too once its row is stale (`notify.pending`); a message that
    opens no window has its row taken off.
    """

    def __init__(
        self,
        *,
        directory: PushDirectory,
        levels: PushLevels,
        live_devices: LiveDevices,
        queues: Mapping[str, DeliveryQueue],
        windows: PushWindows,
        window_seconds: float,
        include_text: bool,
        pending: PendingPushes | None = None,
        sweep_seconds: float = 1.0,
    ) -> None:
        self._directory = directory
        self._levels = levels
        self._live = live_devices
        self._queues = queues
        self._windows = windows
        self._window = window_seconds
        self._include_text = include_text
        # How often due windows are looked for while some are open.
        self._tick = min(max(window_seconds / 10, 0.01), 0.25)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._pending = pending
        self._sweeper = (
            PendingSweeper(pending, self.message_accepted, sweep_seconds=sweep_seconds)
            if pending is not None
            else None
        )

    async def observe_many(self, events: Sequence[BaseModel]) -> None:
        """OBSERVED_EVENTS in publication order, handled in that order.

        Who of all the messages' recipients is connected is one question: on a
        cluster a Redis pipeline, which a message at a time was most of the
        notifier's cost. One message failing does not keep the others back.
        """
        recipients = {
            user_id
            for event in events
            if isinstance(event, MessageAccepted)
            for user_id in event.inbox_seqs
            if user_id != event.message.sender_id
        }
        live = await self._live.live_among(recipients) if recipients else set()
        for event in events:
            try:
                if isinstance(event, MessageAccepted):
                    await self.message_accepted(event, live=live)
                elif isinstance(event, DeviceRevoked):
                    await self._windows.forget_device(event.device_id)
            except Exception:
                log.exception("push_event_failed", event_type=type(event).__name__)

    def start(self) -> None:
        self._task = asyncio.create_task(self._flush_forever(), name="notify:collapse")
        if self._sweeper is not None:
            self._sweeper.start()

    async def close(self) -> None:
        if self._sweeper is not None:
            await self._sweeper.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if not self._windows.shared and self._windows.waiting():
            log.info("push_windows_abandoned")

    async def message_accepted(
        self, event: MessageAccepted, *, live: Collection[int] | None = None
    ) -> None:
        """`live`: those of its recipients known to be connected, asked just now; when
        None, they are asked."""
        if not await self._open_windows(event, live) and self._pending is not None:
            self._pending.handled(event.message.channel_id, event.message.message_id)

    async def _open_windows(self, event: MessageAccepted, live: Collection[int] | None) -> bool:
        """Open the windows the message needs; False when it needs none."""
        message = event.message
        sender_id = message.sender_id
        recipients = [user for user in event.inbox_seqs if user != sender_id]
        if not recipients:
            return False
        # Who is connected is one question for all recipients (on a cluster, one
        # Redis pipeline, not a round trip each: a 100-member group asked 99). The
        # levels are asked once someone is found offline, beside their push targets,
        # so a message read by everyone at once asks nothing more.
        if live is None:
            live = await self._live.live_among(recipients)
        offline = [user_id for user_id in recipients if user_id not in live]
        if not offline:
            return False
        mentioned = set(message.mentions)
        levels = asyncio.ensure_future(
            self._wanting(message.channel_id, {user: user in mentioned for user in offline})
        )
        try:
            found = await self._directory.push_targets_of(offline)
            wanted = await levels
        finally:
            levels.cancel()
        targets = [
            target
            for target in found
            # A target of a provider this server does not enable is kept (it may come
            # back) but not used, except in a cluster: another node may have the provider,
            # and claims the window (nodes claim only windows of providers they have).
            if (target.provider in self._queues or self._windows.shared)
            and target.user_id in wanted
        ]
        text, truncated = preview(message.text) if self._include_text else (None, None)
        openings = [
            Opening(
                user_id=target.user_id,
                device_id=target.device_id,
                channel_id=message.channel_id,
                sender_id=message.sender_id,
                message_id=message.message_id,
                seq=event.inbox_seqs[target.user_id],
                created_at=message.created_at,
                text=text,
                text_truncated=truncated,
                mentioned=target.user_id in mentioned,
                provider=target.provider,
            )
            for target in targets
        ]
        if not openings:
            return False
        await self._windows.add(openings)
        if self._window == 0:
            await self.flush_due()
        else:
            self._wake.set()
        return True

    async def flush_due(self) -> None:
        """Turn every window that has ended into a notification on its provider's queue."""
        due = await self._windows.take_due()
        if not due:
            return
        # Read when the window ends, not when it opened: a device revoked or
        # a target replaced meanwhile is seen.
        targets = {
            target.device_id: target
            for target in await self._directory.push_targets_of(
                {window.newest.user_id for window in due}
            )
        }
        wanted = await self._still_wanted(due)
        reading = await self._live.live_among({window.newest.user_id for window in due})
        names: dict[int, str] = {}
        for window in due:
            newest = window.newest
            target = targets.get(newest.device_id)
            queue = self._queues.get(target.provider) if target is not None else None
            if (
                target is None
                or (newest.channel_id, newest.user_id) not in wanted
                or newest.user_id in reading
            ):
                await self._windows.finished(window)
                continue
            if queue is None:
                # The device moved to a provider this server lacks since the window opened.
                await self._windows.hand_over(window, target.provider)
                continue
            if newest.sender_id not in names:
                names[newest.sender_id] = await self._sender_name(newest.sender_id)
            queue.put(
                Delivery(
                    target,
                    _notification(window, names[newest.sender_id]),
                    on_finished=functools.partial(self._windows.finished, window),
                )
            )

    async def _wanting(self, channel_id: int, mentioned: Mapping[int, bool]) -> set[int]:
        """Those of the users (each with whether the message mentions them) whose level in
        the channel wants it pushed; nobody when the channel is gone."""
        found = await self._levels.channel_levels(channel_id, mentioned.keys())
        if found is None:
            return set()
        direct = found.kind == "direct"
        return {
            user_id
            for user_id, level in found.levels.items()
            if wants_push(level, direct=direct, mentioned=mentioned[user_id])
        }

    async def _still_wanted(self, due: list[Window]) -> set[tuple[int, int]]:
        """`(channel_id, user_id)` of the due windows whose recipient's level, read now,
        still wants them: one read per channel."""
        by_channel: dict[int, dict[int, bool]] = {}
        for window in due:
            newest = window.newest
            mentions = by_channel.setdefault(newest.channel_id, {})
            mentions[newest.user_id] = mentions.get(newest.user_id, False) or window.mentioned
        return {
            (channel_id, user_id)
            for channel_id, mentioned in by_channel.items()
            for user_id in await self._wanting(channel_id, mentioned)
        }

    async def _flush_forever(self) -> None:
        while True:
            if not self._windows.shared and not self._windows.waiting():
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


def _notification(window: Window, sender_name: str) -> Notification:
    newest = window.newest
    return Notification(
        id=window.notification_id,
        user_id=newest.user_id,
        device_id=newest.device_id,
        channel_id=newest.channel_id,
        sender_id=newest.sender_id,
        sender_name=sender_name,
        message_id=newest.message_id,
        seq=newest.seq,
        count=window.count,
        created_at=newest.created_at,
        mentioned=window.mentioned,
        text=newest.text,
        text_truncated=newest.text_truncated,
    )
