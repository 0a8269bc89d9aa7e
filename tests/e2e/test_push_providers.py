"""Each push provider through a real server: log lines, Web Push to a local push service, ntfy."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from chatapp.client import ChatApiError
from chatapp.clock import ManualClock
from chatapp.testing import BrowserSubscription, PushReceiver, RunningServer, run_server


async def window_ends(server: RunningServer, clock: ManualClock, seconds: float = 1.0) -> None:
    """Let the notifier see what was sent, then move past the collapse window."""
    await server.settle()
    clock.advance(seconds)


async def _tick() -> None:
    await asyncio.sleep(0.02)


async def test_log_provider_writes_one_line_without_the_text(tmp_path: Path) -> None:
    """The default provider logs each notification as one structured line, never the text."""
    clock = ManualClock()
    async with run_server(tmp_path / "d", clock=clock) as server:
        alice, bob = await server.users(2)
        channel = await alice.open_direct(bob.user_id)
        await bob.set_push_target(bob.device_id, "log", "bob's phone")
        with capture_logs() as events:
            await alice.send_message(channel.channel_id, "a secret plan")
            await window_ends(server, clock)
            for _ in range(100):
                lines = [e for e in events if e["event"] == "push_notification"]
                if lines:
                    break
                await server.settle()
                await _tick()
    assert len(lines) == 1
    line = lines[0]
    assert line["target"] == "bob's phone"
    assert (line["user_id"], line["device_id"]) == (bob.user_id, bob.device_id)
    assert (line["sender_id"], line["count"], line["text_chars"]) == (alice.user_id, 1, 13)
    assert "a secret plan" not in json.dumps(line)


async def test_web_push_is_encrypted_for_the_subscription_and_vapid_signed(
    tmp_path: Path,
) -> None:
    """The browser's push service gets an aes128gcm body only the subscription can open,
    signed with the VAPID key that /push/config serves; the key survives a restart."""
    clock = ManualClock()
    data_dir = tmp_path / "chat-data"
    settings: dict[str, Any] = {
        "clock": clock,
        "push_providers": ["webpush"],
        "push_allow_http_targets": True,
        "push_allow_private_targets": True,
        "push_vapid_subject": "mailto:ops@example.org",
    }
    async with PushReceiver() as receiver:
        async with run_server(data_dir, **settings) as server:
            alice, bob = await server.users(2)
            config = await bob.push_config()
            assert config.providers == ["webpush"]
            public_key = config.webpush_public_key
            assert public_key is not None
            subscription = BrowserSubscription(receiver.url("/wp/bob-device"))
            await bob.set_push_target(bob.device_id, "webpush", subscription.target())
            channel = await alice.open_direct(bob.user_id)
            await alice.send_message(channel.channel_id, "héllo bob 👋")
            await window_ends(server, clock)
            push = await receiver.next()
            assert await receiver.silent(0.2)
        async with run_server(data_dir, **settings) as restarted:
            carol = await restarted.user("carol")
            assert (await carol.push_config()).webpush_public_key == public_key
    assert (data_dir / "vapid_private.pem").exists()
    assert push.path == "/wp/bob-device"
    assert push.headers["Content-Encoding"] == "aes128gcm"
    assert push.headers["TTL"] == "86400"
    claims = subscription.verify_vapid(push.headers["Authorization"], public_key=public_key)
    assert claims["aud"] == receiver.url("")
    assert claims["sub"] == "mailto:ops@example.org"
    assert clock.now_ms() // 1000 < claims["exp"] <= clock.now_ms() // 1000 + 24 * 3600
    payload = json.loads(subscription.decrypt(push.body))
    assert (payload["text"], payload["count"], payload["sender_id"]) == (
        "héllo bob 👋",
        1,
        alice.user_id,
    )
    with pytest.raises(ValueError, match="another key"):
        subscription.verify_vapid(
            push.headers["Authorization"], public_key=public_key[:-4] + "AAAA"
        )


async def test_web_push_subscription_is_checked(tmp_path: Path) -> None:
    """A subscription without valid keys or with a plain-http endpoint is refused with 400."""
    async with run_server(tmp_path / "d", push_providers=["webpush"]) as server:
        bob = await server.user()
        good = BrowserSubscription("https://push.example.org/sub/1").target()
        await bob.set_push_target(bob.device_id, "webpush", good)
        for bad in [
            "https://push.example.org/sub/1",
            {**good, "endpoint": "http://push.example.org/sub/1"},
            {**good, "endpoint": "ftp://push.example.org/"},
            {**good, "keys": {"p256dh": "AAAA", "auth": good["keys"]["auth"]}},
            {**good, "keys": {"p256dh": good["keys"]["p256dh"], "auth": "c2hvcnQ"}},
            {"endpoint": good["endpoint"]},
        ]:
            with pytest.raises(ChatApiError) as caught:
                await bob.set_push_target(bob.device_id, "webpush", bad)
            assert (caught.value.status, caught.value.code) == (400, "bad_request")


async def test_an_expired_web_push_subscription_is_forgotten(tmp_path: Path) -> None:
    """A 410 from the push service deletes the target: later messages are not sent to it."""
    clock = ManualClock()
    async with (
        PushReceiver() as receiver,
        run_server(
            tmp_path / "d",
            clock=clock,
            push_providers=["webpush"],
            push_allow_http_targets=True,
            push_allow_private_targets=True,
        ) as server,
    ):
        alice, bob = await server.users(2)
        subscription = BrowserSubscription(receiver.url("/wp/gone"))
        await bob.set_push_target(bob.device_id, "webpush", subscription.target())
        channel = await alice.open_direct(bob.user_id)
        receiver.status = 410
        await alice.send_message(channel.channel_id, "anyone there?")
        await window_ends(server, clock)
        for _ in range(200):
            if not await server.services.accounts.push_targets_of([bob.user_id]):
                break
            await _tick()
        assert await server.services.accounts.push_targets_of([bob.user_id]) == []
        assert (
            server.services.metrics.registry.get_sample_value(
                "chatapp_push_notifications_total", {"provider": "webpush", "outcome": "failed"}
            )
            == 1
        )


async def test_ntfy_topic_gets_the_notification_json(tmp_path: Path) -> None:
    """An ntfy / UnifiedPush topic URL receives a POST whose body is the notification."""
    clock = ManualClock()
    async with (
        PushReceiver() as receiver,
        run_server(
            tmp_path / "d",
            clock=clock,
            push_providers=["ntfy", "log"],
            push_allow_http_targets=True,
            push_allow_private_targets=True,
        ) as server,
    ):
        alice, bob = await server.users(2)
        assert (await bob.push_config()).providers == ["ntfy", "log"]
        await bob.set_push_target(bob.device_id, "ntfy", receiver.url("/upAbC123") + "?up=1")
        channel = await alice.open_direct(bob.user_id)
        await alice.send_message(channel.channel_id, "over ntfy")
        await window_ends(server, clock)
        push = await receiver.next()
    assert (push.path, push.query) == ("/upAbC123", {"up": "1"})
    note = push.json()
    assert (note["text"], note["device_id"], note["count"]) == ("over ntfy", bob.device_id, 1)
