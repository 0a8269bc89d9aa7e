"""Push notifications through a real server to a real local webhook receiver."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import statistics
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from chatapp.client import ChatApiError, ChatClient
from chatapp.clock import ManualClock
from chatapp.testing import (
    PushReceiver,
    RawSocket,
    ReceivedPush,
    RunningServer,
    run_server,
)

SECRET = "a webhook secret, long enough"


@asynccontextmanager
async def webhook_server(
    tmp_path: Path, receiver: PushReceiver, clock: ManualClock | None = None, **settings: Any
) -> AsyncIterator[RunningServer]:
    """A server whose only provider is the webhook, posting to `receiver`."""
    async with run_server(
        tmp_path / "chat-data",
        clock=clock,
        push_providers=["webhook"],
        push_webhook_url=receiver.url("/hook"),
        push_webhook_secret=SECRET,
        push_retry_base_ms=10,
        push_retry_max_ms=40,
        **settings,
    ) as server:
        yield server


def verified(push: ReceivedPush) -> dict[str, Any]:
    """The webhook body, after checking its HMAC-SHA256 signature over timestamp and body."""
    timestamp = push.headers["X-Chatapp-Timestamp"]
    expected = hmac.new(
        SECRET.encode(), timestamp.encode() + b"." + push.body, hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(push.headers["X-Chatapp-Signature"], f"sha256={expected}")
    assert push.headers["Content-Type"] == "application/json"
    document: dict[str, Any] = push.json()
    return document


async def connect(server: RunningServer, client: ChatClient) -> RawSocket:
    await server.settle()  # channel events from set-up requests must not arrive on it
    raw = await RawSocket.open(server.ws_url, client.token or "")
    await raw.until("synced")
    await server.settle()  # presence has seen the connection
    return raw


async def window_ends(server: RunningServer, clock: ManualClock, seconds: float = 1.0) -> None:
    """Let the notifier see what was sent, then move past the collapse window."""
    await server.settle()
    clock.advance(seconds)


async def push_counts(server: RunningServer) -> dict[tuple[str, str], float]:
    """chatapp_push_notifications_total from /metrics, by (provider, outcome)."""
    text = (await server.client().raw_request("GET", "/metrics")).text
    return {
        (sample.labels["provider"], sample.labels["outcome"]): sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "chatapp_push_notifications"
        for sample in family.samples
        if sample.name == "chatapp_push_notifications_total"
    }


async def _tick() -> None:
    await asyncio.sleep(0.02)


# -- registration ------------------------------------------------------------------------


async def test_push_targets_are_checked_when_registered(chat_server: RunningServer) -> None:
    """PUT checks the provider (422), the target (400) and the device (404); DELETE removes."""
    alice = await chat_server.user("alice")
    bob = await chat_server.user("bob")
    assert await alice.request("GET", "/api/v1/push/config") == {"providers": ["log"]}

    async def refused(client: ChatClient, device_id: int, body: Any) -> tuple[int, str]:
        with pytest.raises(ChatApiError) as caught:
            await client.request("PUT", f"/api/v1/me/devices/{device_id}/push", body)
        return caught.value.status, caught.value.code

    mine = alice.device_id
    assert await refused(alice, mine, {"provider": "webpush", "target": {}}) == (
        422,
        "unknown_provider",
    )
    assert await refused(alice, mine, {"provider": "log", "target": 7}) == (400, "bad_request")
    assert await refused(alice, mine, {"provider": "log"}) == (400, "bad_request")
    assert await refused(alice, mine, {"provider": 1, "target": "x"}) == (400, "bad_request")
    assert await refused(alice, bob.device_id, {"provider": "log", "target": "x"}) == (
        404,
        "not_found",
    )
    assert await refused(alice, 999_999, {"provider": "log", "target": "x"}) == (404, "not_found")

    await alice.set_push_target(mine, "log", "laptop")
    await alice.set_push_target(mine, "log", "laptop, again")  # replaces
    await alice.remove_push_target(mine)
    await alice.remove_push_target(mine)  # nothing to remove is fine
    with pytest.raises(ChatApiError) as caught:
        await alice.remove_push_target(bob.device_id)
    assert caught.value.status == 404

    phone = await chat_server.device("alice")
    await alice.revoke_device(phone.device_id)
    assert await refused(alice, phone.device_id, {"provider": "log", "target": "x"}) == (
        404,
        "not_found",
    )


# -- who gets notified ---------------------------------------------------------------------


async def test_offline_recipients_get_one_signed_notification_per_device(tmp_path: Path) -> None:
    """Each device of an offline member gets one signed POST; the sender and a connected
    member get none."""
    clock = ManualClock()
    async with PushReceiver() as receiver, webhook_server(tmp_path, receiver, clock) as server:
        alice = await server.user("alice")
        bob_phone = await server.user("bob", device_name="phone")
        bob_laptop = await server.device("bob", device_name="laptop")
        carol = await server.user("carol")
        group = await alice.create_group("g", [bob_phone.user_id, carol.user_id])
        for client, token in [
            (alice, "alice-token"),
            (bob_phone, "bob-phone-token"),
            (bob_laptop, "bob-laptop-token"),
            (carol, "carol-token"),
        ]:
            await client.set_push_target(client.device_id, "webhook", token)
        carol_socket = await connect(server, carol)
        try:
            sent = await alice.send_message(group.channel_id, "hello all")
            await window_ends(server, clock)
            bodies = [verified(await receiver.next()) for _ in range(2)]
            assert await receiver.silent(0.3)
            assert (await carol_socket.expect("message"))["message"]["text"] == "hello all"
        finally:
            await carol_socket.close()
    by_target = {body["target"]: body["notification"] for body in bodies}
    assert set(by_target) == {"bob-phone-token", "bob-laptop-token"}
    phone = by_target["bob-phone-token"]
    assert phone == {
        "type": "message",
        "id": phone["id"],
        "user_id": bob_phone.user_id,
        "device_id": bob_phone.device_id,
        "channel_id": group.channel_id,
        "sender_id": alice.user_id,
        "sender_name": "alice",
        "message_id": sent.message.message_id,
        "seq": phone["seq"],
        "count": 1,
        "created_at": clock.now_ms() - 1000,
        "mentioned": False,
        "text": "hello all",
        "text_truncated": False,
    }
    assert by_target["bob-laptop-token"]["device_id"] == bob_laptop.device_id


async def test_a_burst_collapses_to_one_notification_with_the_count(tmp_path: Path) -> None:
    """50 messages inside one window reach each device as one notification saying 50."""
    clock = ManualClock()
    async with PushReceiver() as receiver, webhook_server(tmp_path, receiver, clock) as server:
        alice, bob = await server.users(2)
        channel = await alice.open_direct(bob.user_id)
        other = await alice.create_group("other", [bob.user_id])
        await bob.set_push_target(bob.device_id, "webhook", "bob")
        socket = await connect(server, alice)
        try:
            for i in range(50):
                await socket.send(
                    {
                        "type": "send",
                        "client_msg_id": f"m{i}",
                        "channel_id": channel.channel_id,
                        "text": f"message {i}",
                    }
                )
            for _ in range(50):
                await socket.expect("ack")
        finally:
            await socket.close()
        await alice.send_message(other.channel_id, "elsewhere")
        await server.settle()
        clock.advance(0.5)
        assert await receiver.silent(0.3)  # the window is still open
        clock.advance(0.5)
        notes = [verified(await receiver.next())["notification"] for _ in range(2)]
        assert await receiver.silent(0.3)
    by_channel = {note["channel_id"]: note for note in notes}
    burst = by_channel[channel.channel_id]
    assert (burst["count"], burst["message_id"], burst["text"]) == (50, 50, "message 49")
    assert by_channel[other.channel_id]["count"] == 1


async def test_privacy_setting_leaves_the_text_out(tmp_path: Path) -> None:
    """With push_include_text = false a notification names the sender and channel only."""
    clock = ManualClock()
    async with (
        PushReceiver() as receiver,
        webhook_server(tmp_path, receiver, clock, push_include_text=False) as server,
    ):
        alice, bob = await server.users(2)
        channel = await alice.open_direct(bob.user_id)
        await bob.set_push_target(bob.device_id, "webhook", "bob")
        await alice.send_message(channel.channel_id, "nobody else may read this")
        await window_ends(server, clock)
        push = await receiver.next()
    note = verified(push)["notification"]
    assert "text" not in note
    assert "text_truncated" not in note
    assert (note["sender_id"], note["channel_id"]) == (alice.user_id, channel.channel_id)
    assert b"nobody else" not in push.body


async def test_a_revoked_device_gets_nothing(tmp_path: Path) -> None:
    """Logging out or revoking a device removes its push target, and pending windows with it."""
    clock = ManualClock()
    async with PushReceiver() as receiver, webhook_server(tmp_path, receiver, clock) as server:
        alice = await server.user("alice")
        bob = await server.user("bob", device_name="kept")
        tablet = await server.device("bob", device_name="revoked")
        phone = await server.device("bob", device_name="logged out")
        channel = await alice.open_direct(bob.user_id)
        for client in (bob, tablet, phone):
            await client.set_push_target(client.device_id, "webhook", f"device-{client.device_id}")

        await alice.send_message(channel.channel_id, "before")
        await server.settle()
        await bob.revoke_device(tablet.device_id)  # while its window is open
        await phone.logout()
        await alice.send_message(channel.channel_id, "after")
        await window_ends(server, clock)
        push = verified(await receiver.next())
        assert await receiver.silent(0.3)
        remaining = await server.services.accounts.push_targets_of([bob.user_id])
    assert push["target"] == f"device-{bob.device_id}"
    assert push["notification"]["count"] == 2
    assert [target.device_id for target in remaining] == [bob.device_id]


# -- delivery ------------------------------------------------------------------------------


async def test_a_failing_receiver_gets_the_notification_after_retries(tmp_path: Path) -> None:
    """Two 503 answers, then success: the third attempt delivers it, and /metrics says so."""
    clock = ManualClock()
    async with PushReceiver() as receiver, webhook_server(tmp_path, receiver, clock) as server:
        alice, bob = await server.users(2)
        channel = await alice.open_direct(bob.user_id)
        await bob.set_push_target(bob.device_id, "webhook", "bob")
        receiver.fail_next(2)
        await alice.send_message(channel.channel_id, "third time lucky")
        await window_ends(server, clock)
        push = await receiver.next()
        assert verified(push)["notification"]["text"] == "third time lucky"
        assert receiver.attempts == 3
        counts = await push_counts(server)
    assert counts[("webhook", "retried")] == 2
    assert counts[("webhook", "sent")] == 1
    assert counts[("webhook", "failed")] == 0


async def test_a_receiver_that_stays_down_is_given_up_on(tmp_path: Path) -> None:
    """After push_retries retries a delivery counts as failed; sends are not affected."""
    clock = ManualClock()
    async with (
        PushReceiver() as receiver,
        webhook_server(tmp_path, receiver, clock, push_retries=2) as server,
    ):
        alice, bob = await server.users(2)
        channel = await alice.open_direct(bob.user_id)
        await bob.set_push_target(bob.device_id, "webhook", "bob")
        receiver.fail_next(100, status=500)
        await alice.send_message(channel.channel_id, "lost")
        await window_ends(server, clock)
        for _ in range(200):
            counts = await push_counts(server)
            if counts.get(("webhook", "failed")):
                break
            await _tick()
    assert receiver.attempts == 3
    assert (counts[("webhook", "retried")], counts[("webhook", "failed")]) == (2, 1)


async def ack_latencies(server: RunningServer, count: int) -> list[float]:
    """Seconds from `send` to `ack` for `count` messages from a connected user to an offline one."""
    alice, bob = await server.users(2)
    channel = await alice.open_direct(bob.user_id)
    if "webhook" in server.services.settings.push_providers:
        await bob.set_push_target(bob.device_id, "webhook", "bob")
    socket = await connect(server, alice)
    latencies = []
    try:
        for i in range(count):
            frame = {
                "type": "send",
                "client_msg_id": f"m{i}",
                "channel_id": channel.channel_id,
                "text": "ping",
            }
            started = time.perf_counter()
            await socket.send(frame)
            await socket.expect("ack")
            latencies.append(time.perf_counter() - started)
    finally:
        await socket.close()
    return latencies


async def test_a_hanging_receiver_does_not_slow_sends(tmp_path: Path) -> None:
    """Acks come as fast with a provider that never answers as with push off, or with a
    receiver that answers at once; the full queue's drops are counted."""
    count = 60
    hurried: dict[str, Any] = {
        "push_collapse_window_ms": 0,
        "push_workers": 2,
        "push_queue_size": 10,
    }
    async with run_server(tmp_path / "off", push_providers=[]) as server:
        push_off = await ack_latencies(server, count)
    async with (
        PushReceiver() as receiver,
        webhook_server(tmp_path / "answering", receiver, **hurried) as server,
    ):
        answering = await ack_latencies(server, count)
    async with PushReceiver() as receiver:
        receiver.hang = True
        async with webhook_server(
            tmp_path / "hanging", receiver, push_timeout_ms=60_000, **hurried
        ) as server:
            hanging = await ack_latencies(server, count)
            await server.settle()
            counts = await push_counts(server)
            attempts = receiver.attempts
    print("\nack latency over", count, "sends (median / max, ms):")
    for name, latencies in [("push off", push_off), ("answering", answering), ("hanging", hanging)]:
        print(
            f"  {name:>9}: {statistics.median(latencies) * 1000:.2f} / {max(latencies) * 1000:.2f}"
        )
    # Generous: the point is that nothing waits for the receiver (a 60 s timeout).
    assert statistics.median(hanging) < 3 * statistics.median(push_off) + 0.02
    assert statistics.median(hanging) < 3 * statistics.median(answering) + 0.02
    assert max(hanging) < 1.0
    assert attempts == 2  # one request per worker, each still hanging
    assert counts[("webhook", "dropped")] == count - 2 - 10
    assert counts[("webhook", "sent")] == 0


async def test_a_notification_says_whether_its_messages_mention_the_recipient(
    tmp_path: Path,
) -> None:
    """A window with a mention among its messages says `mentioned`; edits and reactions
    notify nobody."""
    clock = ManualClock()
    async with PushReceiver() as receiver, webhook_server(tmp_path, receiver, clock) as server:
        alice = await server.user("alice")
        bob, carol = await server.user("bob"), await server.user("carol")
        group = await alice.create_group("team", [bob.user_id, carol.user_id])
        await bob.set_push_target(bob.device_id, "webhook", "bob")
        await carol.set_push_target(carol.device_id, "webhook", "carol")
        await alice.send_message(group.channel_id, "hello @bob")
        last = await alice.send_message(group.channel_id, "and everyone")
        await window_ends(server, clock)
        notes = [verified(await receiver.next())["notification"] for _ in range(2)]
        by_user = {note["user_id"]: note for note in notes}
        assert by_user[bob.user_id]["mentioned"] is True
        assert by_user[bob.user_id]["count"] == 2
        assert by_user[carol.user_id]["mentioned"] is False
        await alice.edit_message(group.channel_id, last.message.message_id, "and @carol")
        await alice.react(group.channel_id, last.message.message_id, "👍")
        await window_ends(server, clock)
        assert await receiver.silent(0.3)
