"""The notify module's logic on fakes: collapsing, choosing recipients, queueing and retrying."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path

import pytest
from pydantic import JsonValue
from structlog.testing import capture_logs

from chatapp.accounts import DeviceRevoked, PushTarget, User
from chatapp.clock import ManualClock
from chatapp.errors import NotFound
from chatapp.messaging.events import MessageAccepted
from chatapp.messaging.models import StoredMessage
from chatapp.notify import DeliveryFailed, Notification, Notifier, TargetGone
from chatapp.notify.delivery import Delivery, DeliveryQueue, RetryPolicy
from chatapp.notify.notification import PREVIEW_CHARS, preview
from chatapp.notify.notifier import wants_push
from chatapp.notify.pending import PendingSweeper
from chatapp.notify.providers.log import LogProvider
from chatapp.notify.vapid import VapidKeyError, load_or_create_key, public_key_text
from chatapp.notify.windows import MemoryWindows, Opening, Window
from chatapp.observability import Metrics
from chatapp.social.models import ChannelKind, ChannelLevels, NotificationLevel

ALICE, BOB, CAROL = 1, 2, 3
NAMES = {"alice": ALICE, "bob": BOB, "carol": CAROL}


def message(
    message_id: int,
    *,
    channel_id: int = 10,
    sender_id: int = ALICE,
    mentions: tuple[int, ...] = (),
) -> StoredMessage:
    return StoredMessage(
        channel_id=channel_id,
        message_id=message_id,
        sender_id=sender_id,
        text=f"text {message_id}",
        created_at=1000 + message_id,
        client_msg_id=f"c{message_id}",
        mentions=list(mentions),
    )


def target(user_id: int, device_id: int, provider: str = "fake") -> PushTarget:
    return PushTarget(user_id=user_id, device_id=device_id, provider=provider, target="t")


def notification(device_id: int = 1) -> Notification:
    return Notification(
        id="n",
        user_id=BOB,
        device_id=device_id,
        channel_id=10,
        sender_id=ALICE,
        sender_name="alice",
        message_id=1,
        seq=1,
        count=1,
        created_at=0,
    )


class FakeProvider:
    """Records what it is asked to send; fails as scripted first."""

    name = "fake"

    def __init__(self, failures: Iterable[BaseException] = ()) -> None:
        self.failures = list(failures)
        self.sent: list[Notification] = []
        self.delivered = asyncio.Event()

    def check_target(self, target: JsonValue) -> JsonValue:
        return target

    async def send(self, target: JsonValue, notification: Notification) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(notification)
        self.delivered.set()


class FakeDirectory:
    def __init__(self, targets: list[PushTarget]) -> None:
        self.targets = targets
        self.forgotten: list[int] = []

    async def push_targets_of(self, user_ids: Iterable[int]) -> list[PushTarget]:
        wanted = set(user_ids)
        return [t for t in self.targets if t.user_id in wanted]

    async def get_user(self, user_id: int) -> User:
        if user_id != ALICE:
            raise NotFound("not_found", "no such user")
        return User(user_id=ALICE, username="alice", display_name="Alice", about="", created_at=0)

    async def forget_push_target(self, device_id: int) -> None:
        self.forgotten.append(device_id)


class FakeLevels:
    """Every member of channel 10 (a group, unless told) at `all`, unless told otherwise."""

    def __init__(self, kind: ChannelKind = "group", **levels: NotificationLevel) -> None:
        self.kind: ChannelKind = kind
        self.levels = {user_id: levels.get(name, "all") for name, user_id in NAMES.items()}
        self.reads = 0

    async def channel_levels(
        self, channel_id: int, user_ids: Collection[int]
    ) -> ChannelLevels | None:
        self.reads += 1
        if channel_id != 10:
            return None
        chosen = {user_id: self.levels[user_id] for user_id in user_ids if user_id in self.levels}
        return ChannelLevels(kind=self.kind, levels=chosen)


class FakeLiveDevices:
    def __init__(self, *connected: int) -> None:
        self.connected = set(connected)
        self.asked: list[set[int]] = []

    async def has_live_device(self, user_id: int) -> bool:
        return user_id in self.connected

    async def live_among(self, user_ids: Collection[int]) -> set[int]:
        self.asked.append(set(user_ids))
        return self.connected.intersection(user_ids)


def delivery_queue(
    provider: FakeProvider, metrics: Metrics, *, size: int = 10, retries: int = 3
) -> tuple[DeliveryQueue, list[PushTarget]]:
    gone: list[PushTarget] = []

    async def on_gone(target: PushTarget) -> None:
        gone.append(target)

    queue = DeliveryQueue(
        provider,
        metrics,
        size=size,
        workers=1,
        timeout_seconds=1.0,
        retry=RetryPolicy(retries=retries, base_seconds=0.001, max_seconds=0.002),
        on_target_gone=on_gone,
    )
    return queue, gone


def counted(metrics: Metrics, outcome: str) -> float:
    value = metrics.registry.get_sample_value(
        "chatapp_push_notifications_total", {"provider": "fake", "outcome": outcome}
    )
    return value or 0.0


# -- collapsing ----------------------------------------------------------------------------


def opening(device_id: int, message_id: int, *, seq: int, channel_id: int = 10) -> Opening:
    return Opening(
        user_id=BOB,
        device_id=device_id,
        channel_id=channel_id,
        sender_id=ALICE,
        message_id=message_id,
        seq=seq,
        created_at=1000 + message_id,
        text=None,
        text_truncated=None,
    )


async def test_a_window_gathers_a_devices_messages_per_channel() -> None:
    """Messages for one device and channel inside the window become one, with the count."""
    clock = ManualClock()
    windows = MemoryWindows(clock, window_seconds=2.0)
    for message_id in (1, 3, 2):
        await windows.add([opening(7, message_id, seq=message_id)])
    await windows.add([opening(7, 1, seq=4, channel_id=11)])
    clock.advance(1.0)
    await windows.add([opening(8, 4, seq=5)])
    assert await windows.take_due() == []
    clock.advance(1.0)
    due = await windows.take_due()
    assert [(w.newest.device_id, w.newest.channel_id, w.count, w.newest.seq) for w in due] == [
        (7, 10, 3, 3),
        (7, 11, 1, 4),
    ]
    assert len({w.notification_id for w in due}) == 2
    assert windows.next_due() == pytest.approx(clock.monotonic() + 1.0)
    await windows.forget_device(8)
    assert len(windows) == 0
    assert not windows.waiting()


async def test_a_zero_window_sends_each_message_at_once() -> None:
    """With no window a message is due the moment it arrives."""
    windows = MemoryWindows(ManualClock(), window_seconds=0)
    await windows.add([opening(7, 1, seq=1)])
    assert [w.count for w in await windows.take_due()] == [1]


def test_long_text_is_cut_for_push() -> None:
    """Previews stay within push payload limits and say when they were cut."""
    assert preview("short") == ("short", False)
    text, cut = preview("x" * (PREVIEW_CHARS + 1))
    assert (len(text), text[-1], cut) == (PREVIEW_CHARS, "…", True)


# -- choosing recipients -------------------------------------------------------------------


async def test_the_notifier_skips_the_sender_and_connected_users() -> None:
    """Only members other than the sender with no live device are notified, once per device."""
    clock = ManualClock()
    provider = FakeProvider()
    metrics = Metrics()
    queue, _ = delivery_queue(provider, metrics)
    directory = FakeDirectory(
        [target(ALICE, 1), target(BOB, 2), target(BOB, 3), target(CAROL, 4), target(BOB, 5, "off")]
    )
    notifier = Notifier(
        directory=directory,
        levels=FakeLevels(),
        live_devices=FakeLiveDevices(CAROL),
        queues={"fake": queue},
        windows=MemoryWindows(clock, window_seconds=1.0),
        window_seconds=1.0,
        include_text=False,
    )
    event = MessageAccepted(message=message(1), inbox_seqs={ALICE: 5, BOB: 9, CAROL: 2})
    await notifier.message_accepted(event)
    clock.advance(1.0)
    await notifier.flush_due()
    queue.start()
    try:
        await asyncio.wait_for(queue.idle(), 2)
    finally:
        await queue.close()
    assert sorted(n.device_id for n in provider.sent) == [2, 3]
    first = provider.sent[0]
    assert (first.user_id, first.seq, first.sender_name, first.text) == (BOB, 9, "Alice", None)


def test_each_level_wants_what_it_says() -> None:
    """`all` wants every message, `none` none, `mentions` those that mention the member and
    every message of a direct channel."""
    for direct in (False, True):
        for mentioned in (False, True):
            assert wants_push("all", direct=direct, mentioned=mentioned)
            assert not wants_push("none", direct=direct, mentioned=mentioned)
            assert wants_push("mentions", direct=direct, mentioned=mentioned) == (
                direct or mentioned
            )


async def pushed(
    levels: FakeLevels, *events: MessageAccepted, change: dict[int, NotificationLevel]
) -> list[Notification]:
    """What the notifier sends for `events` (one window) to bob (device 2) and carol
    (device 3), when the levels in `change` are set after the events and before the window
    ends."""
    clock = ManualClock()
    provider = FakeProvider()
    queue, _ = delivery_queue(provider, Metrics())
    notifier = Notifier(
        directory=FakeDirectory([target(BOB, 2), target(CAROL, 3)]),
        levels=levels,
        live_devices=FakeLiveDevices(),
        queues={"fake": queue},
        windows=MemoryWindows(clock, window_seconds=1.0),
        window_seconds=1.0,
        include_text=True,
    )
    for event in events:
        await notifier.message_accepted(event)
    levels.levels.update(change)
    clock.advance(1.0)
    await notifier.flush_due()
    queue.start()
    try:
        await asyncio.wait_for(queue.idle(), 2)
    finally:
        await queue.close()
    return sorted(provider.sent, key=lambda sent: sent.device_id)


async def test_members_are_pushed_what_their_level_wants() -> None:
    """In a group, bob at `mentions` gets only the message that mentions him, carol at `none`
    nothing; the count is of the messages pushed."""
    levels = FakeLevels(bob="mentions", carol="none")
    plain = MessageAccepted(message=message(1), inbox_seqs={BOB: 1, CAROL: 1})
    naming = MessageAccepted(
        message=message(2, mentions=(BOB, CAROL)), inbox_seqs={BOB: 2, CAROL: 2}
    )
    later = MessageAccepted(message=message(3), inbox_seqs={BOB: 3, CAROL: 3})
    (sent,) = await pushed(levels, plain, naming, later, change={})
    assert (sent.user_id, sent.message_id, sent.count, sent.mentioned) == (BOB, 2, 1, True)


async def test_in_a_direct_channel_mentions_means_every_message() -> None:
    """At `mentions`, every message of a direct channel is pushed, mention or not."""
    levels = FakeLevels("direct", bob="mentions")
    event = MessageAccepted(message=message(1), inbox_seqs={BOB: 1})
    (sent,) = await pushed(levels, event, change={})
    assert (sent.user_id, sent.message_id, sent.mentioned) == (BOB, 1, False)


async def test_levels_are_asked_only_when_someone_is_offline() -> None:
    """A message every recipient is connected for asks no level; one with a recipient
    offline asks once, for the channel's recipients together."""
    clock = ManualClock()
    levels = FakeLevels()
    live = FakeLiveDevices(BOB, CAROL)
    queue, _ = delivery_queue(FakeProvider(), Metrics())
    notifier = Notifier(
        directory=FakeDirectory([target(BOB, 2), target(CAROL, 3)]),
        levels=levels,
        live_devices=live,
        queues={"fake": queue},
        windows=MemoryWindows(clock, window_seconds=1.0),
        window_seconds=1.0,
        include_text=True,
    )
    event = MessageAccepted(message=message(1), inbox_seqs={ALICE: 1, BOB: 1, CAROL: 1})
    await notifier.message_accepted(event)
    assert levels.reads == 0
    live.connected.discard(CAROL)
    await notifier.message_accepted(event)
    assert levels.reads == 1


async def test_a_level_chosen_while_a_window_is_open_counts_when_it_ends() -> None:
    """Bob turns notifications off and carol to mentions while their windows are open: at
    the window's end neither is sent (carol's messages mentioned her not)."""
    levels = FakeLevels()
    event = MessageAccepted(message=message(1), inbox_seqs={BOB: 1, CAROL: 1})
    assert await pushed(levels, event, change={BOB: "none", CAROL: "mentions"}) == []
    levels = FakeLevels()
    event = MessageAccepted(message=message(1, mentions=(CAROL,)), inbox_seqs={BOB: 1, CAROL: 1})
    (sent,) = await pushed(levels, event, change={BOB: "none", CAROL: "mentions"})
    assert sent.user_id == CAROL


async def test_a_member_who_left_or_a_channel_gone_is_pushed_nothing() -> None:
    """Levels name only members: a recipient who left the channel, or a channel that is gone,
    gets no notification."""
    levels = FakeLevels()
    del levels.levels[CAROL]
    event = MessageAccepted(message=message(1), inbox_seqs={BOB: 1, CAROL: 1})
    assert [sent.user_id for sent in await pushed(levels, event, change={})] == [BOB]
    elsewhere = MessageAccepted(message=message(1, channel_id=11), inbox_seqs={BOB: 1})
    assert await pushed(FakeLevels(), elsewhere, change={}) == []


async def test_a_window_that_ends_while_the_user_is_back_sends_nothing() -> None:
    """Someone who connected during the window is reading already."""
    clock = ManualClock()
    live = FakeLiveDevices()
    provider = FakeProvider()
    queue, _ = delivery_queue(provider, Metrics(), size=1)
    notifier = Notifier(
        directory=FakeDirectory([target(BOB, 2)]),
        levels=FakeLevels(),
        live_devices=live,
        queues={"fake": queue},
        windows=MemoryWindows(clock, window_seconds=1.0),
        window_seconds=1.0,
        include_text=True,
    )
    await notifier.message_accepted(MessageAccepted(message=message(1), inbox_seqs={BOB: 1}))
    live.connected.add(BOB)
    clock.advance(1.0)
    await notifier.flush_due()
    queue.put(Delivery(target(BOB, 2), notification()))  # fits only if nothing was queued
    assert queue.dropped == 0


# -- delivery ------------------------------------------------------------------------------


async def test_retryable_failures_are_retried_then_delivered() -> None:
    """A retryable failure and a timeout are retried; the third attempt delivers."""
    provider = FakeProvider([DeliveryFailed("503", retryable=True), TimeoutError()])
    metrics = Metrics()
    queue, _ = delivery_queue(provider, metrics)
    queue.start()
    try:
        queue.put(Delivery(target(BOB, 2), notification()))
        await asyncio.wait_for(provider.delivered.wait(), 2)
    finally:
        await queue.close()
    assert (counted(metrics, "retried"), counted(metrics, "sent")) == (2, 1)


async def test_final_failures_and_gone_targets_are_not_retried() -> None:
    """A 4xx refusal fails at once; a gone target fails and is handed back to be forgotten."""
    provider = FakeProvider([DeliveryFailed("400", retryable=False), TargetGone("410")])
    metrics = Metrics()
    queue, gone = delivery_queue(provider, metrics)
    queue.start()
    try:
        queue.put(Delivery(target(BOB, 2), notification()))
        queue.put(Delivery(target(BOB, 3), notification()))
        await asyncio.wait_for(queue.idle(), 2)
    finally:
        await queue.close()
    assert (counted(metrics, "failed"), counted(metrics, "retried")) == (2, 0)
    assert [t.device_id for t in gone] == [3]


async def test_a_full_queue_drops_and_counts() -> None:
    """Nothing waits for a full queue: the delivery is dropped and counted."""
    metrics = Metrics()
    queue, _ = delivery_queue(FakeProvider(), metrics, size=2)
    for _ in range(5):
        queue.put(Delivery(target(BOB, 2), notification()))
    assert (queue.dropped, counted(metrics, "dropped")) == (3, 3)


def test_retry_delays_grow_with_jitter_up_to_the_cap() -> None:
    """Each wait is between half and all of base·2ⁿ, never above the cap."""
    policy = RetryPolicy(retries=5, base_seconds=1.0, max_seconds=5.0)
    for attempt, ceiling in [(0, 1.0), (1, 2.0), (2, 4.0), (3, 5.0), (4, 5.0)]:
        for _ in range(50):
            assert ceiling / 2 <= policy.delay(attempt) <= ceiling


# -- providers and keys --------------------------------------------------------------------


async def test_the_log_provider_logs_without_the_text() -> None:
    """One line per notification, with the text's length instead of the text."""
    provider = LogProvider()
    assert provider.check_target("kitchen tablet") == "kitchen tablet"
    with capture_logs() as events:
        await provider.send("kitchen tablet", notification().model_copy(update={"text": "psst"}))
    assert len(events) == 1
    assert events[0]["event"] == "push_notification"
    assert (events[0]["target"], events[0]["text_chars"]) == ("kitchen tablet", 4)
    assert "psst" not in str(events[0])


def test_the_vapid_key_is_made_once_and_kept(tmp_path: Path) -> None:
    """The first start writes the key (owner-only); later starts read the same one."""
    first = load_or_create_key(tmp_path)
    again = load_or_create_key(tmp_path)
    assert public_key_text(first) == public_key_text(again)
    assert len(public_key_text(first)) == 87  # 65 bytes, base64url without padding
    assert (tmp_path / "vapid_private.pem").stat().st_mode & 0o077 == 0
    (tmp_path / "vapid_private.pem").write_text("not a key")
    with pytest.raises(VapidKeyError, match=r"vapid_private\.pem"):
        load_or_create_key(tmp_path)


class RecordingWindows(MemoryWindows):
    """Windows in memory that remember which were finished, and when."""

    def __init__(self, clock: ManualClock, provider: FakeProvider) -> None:
        super().__init__(clock, window_seconds=1.0)
        self.provider = provider
        self.finished_after: list[tuple[str, int]] = []

    async def finished(self, window: Window) -> None:
        self.finished_after.append((window.notification_id, len(self.provider.sent)))


async def test_a_window_is_finished_only_when_its_delivery_is_final() -> None:
    """A retried delivery leaves its window unfinished (in a cluster another node would take
    it over); the window is finished once the notification is sent, carrying its id."""
    clock = ManualClock()
    provider = FakeProvider([DeliveryFailed("busy", retryable=True)])
    queue, _ = delivery_queue(provider, Metrics())
    windows = RecordingWindows(clock, provider)
    notifier = Notifier(
        directory=FakeDirectory([target(BOB, 2)]),
        levels=FakeLevels(),
        live_devices=FakeLiveDevices(),
        queues={"fake": queue},
        windows=windows,
        window_seconds=1.0,
        include_text=True,
    )
    await notifier.message_accepted(MessageAccepted(message=message(1), inbox_seqs={BOB: 1}))
    clock.advance(1.0)
    await notifier.flush_due()
    queue.start()
    try:
        await asyncio.wait_for(provider.delivered.wait(), 2)
        await asyncio.wait_for(queue.idle(), 2)
    finally:
        await queue.close()
    (sent,) = provider.sent
    assert windows.finished_after == [(sent.id, 1)]


async def test_events_handed_over_together_ask_who_is_online_once() -> None:
    """Messages the notifier gets as one batch share one online question, are handled in
    order, and a revocation between them closes the windows opened before it."""
    clock = ManualClock()
    provider = FakeProvider()
    queue, _ = delivery_queue(provider, Metrics())
    live = FakeLiveDevices(CAROL)
    windows = MemoryWindows(clock, window_seconds=1.0)
    notifier = Notifier(
        directory=FakeDirectory([target(BOB, 2), target(CAROL, 3)]),
        levels=FakeLevels(),
        live_devices=live,
        queues={"fake": queue},
        windows=windows,
        window_seconds=1.0,
        include_text=False,
    )
    await notifier.observe_many(
        [
            MessageAccepted(message=message(1), inbox_seqs={ALICE: 1, BOB: 1}),
            DeviceRevoked(user_id=BOB, device_id=2),
            MessageAccepted(message=message(2), inbox_seqs={BOB: 2, CAROL: 1}),
            MessageAccepted(message=message(3), inbox_seqs={ALICE: 3, BOB: 3}),
        ]
    )
    assert live.asked == [{BOB, CAROL}]
    clock.advance(1.0)
    # Message 1's window went with the revocation; 2 and 3 opened one after it.
    assert [(w.newest.message_id, w.count) for w in await windows.take_due()] == [(3, 2)]

    live.connected.clear()
    await notifier.observe_many(
        [MessageAccepted(message=message(4), inbox_seqs={BOB: 4, CAROL: 2})]
    )
    live.asked.clear()
    clock.advance(1.0)
    await notifier.flush_due()
    assert live.asked == [{BOB, CAROL}]  # one question for both windows that ended


async def test_a_window_for_a_device_that_came_back_is_finished_unsent() -> None:
    """The recipient connected before the window ended: nothing is sent, the window is done."""
    clock = ManualClock()
    provider = FakeProvider()
    queue, _ = delivery_queue(provider, Metrics())
    windows = RecordingWindows(clock, provider)
    live = FakeLiveDevices()
    notifier = Notifier(
        directory=FakeDirectory([target(BOB, 2)]),
        levels=FakeLevels(),
        live_devices=live,
        queues={"fake": queue},
        windows=windows,
        window_seconds=1.0,
        include_text=False,
    )
    await notifier.message_accepted(MessageAccepted(message=message(1), inbox_seqs={BOB: 1}))
    live.connected.add(BOB)
    clock.advance(1.0)
    await notifier.flush_due()
    assert [sent_before for _, sent_before in windows.finished_after] == [0]
    assert provider.sent == []


class FakePending:
    """`PendingPushes` in memory: the handled keys, and stale events to hand over."""

    def __init__(self, stale: Iterable[MessageAccepted] = ()) -> None:
        self.handled_keys: list[tuple[int, int]] = []
        self.flushed: list[tuple[int, int]] = []
        self.stale = list(stale)

    def handled(self, channel_id: int, message_id: int) -> None:
        self.handled_keys.append((channel_id, message_id))

    async def flush_handled(self) -> None:
        self.flushed += self.handled_keys
        self.handled_keys = []

    async def claim_stale(self) -> list[MessageAccepted]:
        claimed, self.stale = self.stale, []
        return claimed


def pending_notifier(
    clock: ManualClock, pending: FakePending, *connected: int
) -> tuple[Notifier, MemoryWindows]:
    windows = MemoryWindows(clock, window_seconds=1.0)
    queue, _ = delivery_queue(FakeProvider(), Metrics())
    notifier = Notifier(
        directory=FakeDirectory([target(BOB, 2), target(CAROL, 3)]),
        levels=FakeLevels(carol="none"),
        live_devices=FakeLiveDevices(*connected),
        queues={"fake": queue},
        windows=windows,
        window_seconds=1.0,
        include_text=False,
        pending=pending,
    )
    return notifier, windows


async def test_a_message_that_opens_no_window_is_named_handled_and_one_that_does_is_not() -> None:
    """Nobody to push (alone, everyone connected, nobody wanting it): the message is handled
    here; one that opens a window is not, since opening its windows takes its row off."""
    clock = ManualClock()
    pending = FakePending()
    notifier, windows = pending_notifier(clock, pending, BOB)
    await notifier.message_accepted(MessageAccepted(message=message(1), inbox_seqs={ALICE: 1}))
    await notifier.message_accepted(MessageAccepted(message=message(2), inbox_seqs={BOB: 1}))
    await notifier.message_accepted(MessageAccepted(message=message(3), inbox_seqs={CAROL: 1}))
    assert pending.handled_keys == [(10, 1), (10, 2), (10, 3)]
    assert len(windows) == 0
    offline, windows = pending_notifier(clock, pending)
    await offline.message_accepted(MessageAccepted(message=message(4), inbox_seqs={BOB: 2}))
    assert pending.handled_keys == [(10, 1), (10, 2), (10, 3)]
    assert len(windows) == 1


async def test_the_sweeper_runs_the_notifiers_handling_for_each_stale_message() -> None:
    """Each stale message is handled as if its node had heard it, one failing not stopping
    the next; a sweep with nothing stale does nothing."""
    handled: list[int] = []

    async def handle(event: MessageAccepted) -> None:
        if event.message.message_id == 1:
            raise RuntimeError("the store went away")
        handled.append(event.message.message_id)

    stale = [MessageAccepted(message=message(n), inbox_seqs={BOB: n}) for n in (1, 2, 3)]
    sweeper = PendingSweeper(FakePending(stale), handle, sweep_seconds=1.0)
    with capture_logs() as logs:
        assert await sweeper.sweep() == 3
    assert handled == [2, 3]
    assert [entry["event"] for entry in logs] == [
        "pending_push_failed",
        "pending_pushes_taken_over",
    ]
    assert await sweeper.sweep() == 0


class SharedWindows(MemoryWindows):
    """Windows as a cluster keeps them, where other nodes deliver too: the openings noted."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock, window_seconds=1.0)
        self.opened: list[Opening] = []
        self.handed: list[tuple[int, str]] = []

    @property
    def shared(self) -> bool:
        return True

    async def add(self, openings: Sequence[Opening]) -> None:
        self.opened.extend(openings)
        await super().add(openings)

    async def hand_over(self, window: Window, provider: str) -> None:
        self.handed.append((window.newest.device_id, provider))


async def test_a_cluster_node_opens_windows_for_providers_it_does_not_have() -> None:
    """Another node may have the provider: the window names it, for that node to claim. A
    server alone opens windows only for the providers it has."""
    clock = ManualClock()
    provider = FakeProvider()
    queue, _ = delivery_queue(provider, Metrics())
    targets = [target(BOB, 2), target(CAROL, 3, provider="apns")]
    shared, alone = SharedWindows(clock), RecordingWindows(clock, provider)
    for windows in (shared, alone):
        notifier = Notifier(
            directory=FakeDirectory(targets),
            levels=FakeLevels(),
            live_devices=FakeLiveDevices(),
            queues={"fake": queue},
            windows=windows,
            window_seconds=1.0,
            include_text=True,
        )
        await notifier.message_accepted(
            MessageAccepted(message=message(1), inbox_seqs={BOB: 1, CAROL: 1})
        )
    assert [(o.device_id, o.provider) for o in shared.opened] == [(2, "fake"), (3, "apns")]
    clock.advance(1.0)
    assert [w.newest.device_id for w in await alone.take_due()] == [2]


async def test_a_window_whose_device_moved_provider_is_handed_over_unsent() -> None:
    """The device's target moved to a provider this node lacks after its window opened: at
    the window's end nothing is sent here, and the window is handed to the nodes that have
    the new provider."""
    clock = ManualClock()
    provider = FakeProvider()
    queue, _ = delivery_queue(provider, Metrics())
    directory = FakeDirectory([target(BOB, 2)])
    windows = SharedWindows(clock)
    notifier = Notifier(
        directory=directory,
        levels=FakeLevels(),
        live_devices=FakeLiveDevices(),
        queues={"fake": queue},
        windows=windows,
        window_seconds=1.0,
        include_text=True,
    )
    await notifier.message_accepted(MessageAccepted(message=message(1), inbox_seqs={BOB: 1}))
    directory.targets = [target(BOB, 2, provider="apns")]
    clock.advance(1.0)
    await notifier.flush_due()
    assert windows.handed == [(2, "apns")]
    queue.start()
    try:
        await asyncio.wait_for(queue.idle(), 2)
    finally:
        await queue.close()
    assert provider.sent == []
