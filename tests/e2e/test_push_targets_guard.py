"""User-registered push URLs cannot point the server at its own network.

Through a real server and a real push receiver on 127.0.0.1: refused at
registration when the address or name says so, and refused at delivery
(dropped, counted as `refused`, never retried) when it was stored earlier or
a name resolves there. Redirects are never followed.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pydantic import JsonValue
from structlog.testing import capture_logs

from chatapp.accounts import Caller
from chatapp.client import ChatApiError
from chatapp.notify.providers.guard import AddressRefused, PublicOnlyResolver, target_session
from chatapp.testing import BrowserSubscription, PushReceiver, RunningServer, run_server

# Sent at once (no collapse window); a retry, if one were made, would come within 20 ms.
SETTINGS: dict[str, Any] = {
    "push_providers": ["ntfy", "webpush"],
    "push_allow_http_targets": True,
    "push_collapse_window_ms": 0,
    "push_retry_base_ms": 10,
    "push_retry_max_ms": 20,
}
PROVIDERS = ["ntfy", "webpush"]


def target_for(provider: str, url: str) -> JsonValue:
    """What a device of this provider registers to be reached at `url`."""
    if provider == "webpush":
        target: JsonValue = BrowserSubscription(url).target()
        return target
    return url


def counted(server: RunningServer, provider: str, outcome: str) -> float:
    value = server.services.metrics.registry.get_sample_value(
        "chatapp_push_notifications_total", {"provider": provider, "outcome": outcome}
    )
    return value or 0.0


async def until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    """Poll `condition` (a metric: nothing to wait on) until it holds, or fail."""
    for _ in range(int(seconds * 100)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"still not so after {seconds} s")


async def store_behind_the_guards_back(
    server: RunningServer, device: Caller, provider: str, target: JsonValue
) -> None:
    """Write a target as a server without the registration check would have (no route, no check)."""
    await server.services.accounts.set_push_target(device, device.device_id, provider, target)


async def message_bob(server: RunningServer, bob_id: int, text: str = "hello") -> None:
    """Alice (logged in again on this server) sends Bob, who has no live device, a message."""
    alice = await server.device("alice")
    channel = await alice.open_direct(bob_id)
    await alice.send_message(channel.channel_id, text)
    await server.settle()


async def assert_refused_once(server: RunningServer, provider: str, receiver: PushReceiver) -> None:
    """One delivery was refused, and nothing else happened: no attempt, no retry, no failure."""
    await until(lambda: counted(server, provider, "refused") == 1)
    await asyncio.sleep(0.1)  # well past the retry delay
    assert counted(server, provider, "refused") == 1
    assert [counted(server, provider, o) for o in ("sent", "failed", "retried")] == [0, 0, 0]
    assert receiver.attempts == 0


# -- at registration -----------------------------------------------------------------------

PRIVATE_TARGETS = [
    "https://127.0.0.1/topic",
    "https://10.1.2.3/topic",
    "https://169.254.169.254/latest/meta-data",
    "https://[::1]/topic",
    "https://192.168.0.10:8443/topic",
    # IPv4 in the spellings the OS resolver takes, and the HTTP client's IDNA mapping
    "https://127.1/topic",
    "https://2130706433/topic",
    "https://0x7f.1/topic",
    "https://0X7F000001/topic",
    "https://017700000001/topic",
    "https://0177.0.0.1/topic",
    "https://127.0.0.1./topic",
    "https://%31%32%37.0.0.1/topic",
    "https://\uff11\uff12\uff17\u3002\uff10\u3002\uff10\u3002\uff11/topic",  # full-width
    "https://0.0.0.0/topic",
    "https://0/topic",
    "https://100.64.0.1/topic",
    "https://224.0.0.1/topic",
    # IPv6, and IPv6 that carries IPv4
    "https://[::]/topic",
    "https://[0:0:0:0:0:0:0:1]/topic",
    "https://[::ffff:127.0.0.1]/topic",
    "https://[::ffff:7f00:1]/topic",
    "https://[::127.0.0.1]/topic",
    "https://[64:ff9b::a9fe:a9fe]/topic",
    "https://[2002:7f00:1::]/topic",
    "https://[fe80::1]/topic",
    "https://[fe80::1%25eth0]/topic",
    "https://[fd00::1]/topic",
    "https://[fec0::1]/topic",
    "https://[ff02::1]/topic",
    # names only this host or its own network answers
    "https://localhost/topic",
    "https://LOCALHOST./topic",
    "https://push.localhost/topic",
    "https://metadata.google.internal/computeMetadata/v1/",
    "https://printer.local/topic",
    "https://router.home.arpa/topic",
    "https://metadata/topic",
]


@pytest.mark.parametrize("target", PRIVATE_TARGETS)
async def test_private_address_targets_are_refused(tmp_path: Path, target: str) -> None:
    """An ntfy or Web Push URL reaching a private or local address, in any spelling, is 400."""
    async with run_server(tmp_path / "d", push_providers=PROVIDERS) as server:
        alice = await server.user()
        for provider in PROVIDERS:
            with pytest.raises(ChatApiError) as caught:
                await alice.set_push_target(alice.device_id, provider, target_for(provider, target))
            assert (caught.value.status, caught.value.code) == (400, "bad_request")
            assert "private or local" in caught.value.message


async def test_public_targets_and_allowed_private_ones_are_taken(tmp_path: Path) -> None:
    """Only what reaches the server's network is refused, and only while the setting is off."""
    public = [
        "https://push.example.org/topic",
        "https://93.184.216.34/topic",
        "https://[2606:4700:4700::1111]/topic",
        "https://[::ffff:93.184.216.34]/topic",
        "https://xn--bcher-kva.example/topic",
    ]
    async with run_server(tmp_path / "a", push_providers=PROVIDERS) as server:
        alice = await server.user()
        for target in public:
            for provider in PROVIDERS:
                await alice.set_push_target(alice.device_id, provider, target_for(provider, target))
    async with run_server(
        tmp_path / "b", push_providers=PROVIDERS, push_allow_private_targets=True
    ) as server:
        alice = await server.user()
        for target in ["https://localhost/topic", "https://127.1/topic", "https://[::1]/topic"]:
            await alice.set_push_target(alice.device_id, "ntfy", target)


async def test_a_numeric_host_the_http_client_would_refuse_is_400(tmp_path: Path) -> None:
    """`134744072` is 8.8.8.8 to the OS, but no URL the HTTP client takes: refused up front."""
    async with run_server(tmp_path / "d", push_providers=PROVIDERS) as server:
        alice = await server.user()
        with pytest.raises(ChatApiError) as caught:
            await alice.set_push_target(alice.device_id, "ntfy", "https://134744072/topic")
        assert caught.value.status == 400
        assert "four decimal numbers" in caught.value.message


# -- at delivery ---------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("stored", ["before the guard", "while private targets were allowed"])
async def test_a_private_target_stored_earlier_is_not_posted_to_after_a_restart(
    tmp_path: Path, provider: str, stored: str
) -> None:
    """A literal 127.0.0.1 target from the database is refused at delivery: no POST, no retry,
    one `refused` count (and the target is kept, for an operator who allows it again)."""
    data_dir = tmp_path / "d"
    async with PushReceiver() as receiver:
        target = target_for(provider, receiver.url("/stored-earlier"))
        first = {**SETTINGS, "push_allow_private_targets": stored != "before the guard"}
        async with run_server(data_dir, **first) as server:
            await server.user("alice")
            bob = await server.user("bob")
            if stored == "before the guard":
                device = Caller(user_id=bob.user_id, device_id=bob.device_id)
                await store_behind_the_guards_back(server, device, provider, target)
            else:
                await bob.set_push_target(bob.device_id, provider, target)
            bob_id = bob.user_id
        async with run_server(data_dir, **SETTINGS) as restarted:
            with capture_logs() as logs:
                await message_bob(restarted, bob_id)
                await assert_refused_once(restarted, provider, receiver)
            assert len(await restarted.services.accounts.push_targets_of([bob_id])) == 1
    refusals = [line for line in logs if line["event"] == "push_refused"]
    assert len(refusals) == 1
    assert "127.0.0.1 is a private or local address" in refusals[0]["reason"]


async def test_a_name_resolving_to_loopback_is_dropped_once_not_retried(tmp_path: Path) -> None:
    """A name is judged where it resolves, on each delivery: `localhost` reaches no one, and
    each notification for it is one `refused` drop, never a retried network error."""
    async with PushReceiver() as receiver, run_server(tmp_path / "d", **SETTINGS) as server:
        await server.user("alice")
        bob = await server.user("bob")
        port = receiver.url().split(":")[-1].split("/")[0]
        device = Caller(user_id=bob.user_id, device_id=bob.device_id)
        await store_behind_the_guards_back(server, device, "ntfy", f"http://localhost:{port}/n")
        with capture_logs() as logs:
            await message_bob(server, bob.user_id)
            await assert_refused_once(server, "ntfy", receiver)
            await message_bob(server, bob.user_id, "again")
            await until(lambda: counted(server, "ntfy", "refused") == 2)
    reasons = [line["reason"] for line in logs if line["event"] == "push_refused"]
    assert reasons == ["localhost resolves only to private or local addresses"] * 2
    assert not [line for line in logs if line["event"] == "push_retrying"]


@asynccontextmanager
async def redirector(status: int, location: str) -> AsyncIterator[tuple[str, list[str]]]:
    """A push service on 127.0.0.1 that answers every POST with a redirect to `location`.

    Yields its URL and the list of paths it was asked for.
    """
    asked: list[str] = []

    async def redirect(request: web.Request) -> web.Response:
        asked.append(request.path)
        return web.Response(status=status, headers={"Location": location})

    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", redirect)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    await web.SockSite(runner, listener).start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/moved"
    try:
        yield url, asked
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(("provider", "status"), [("ntfy", 307), ("ntfy", 308), ("webpush", 308)])
async def test_a_redirect_to_a_private_address_is_not_followed(
    tmp_path: Path, provider: str, status: int
) -> None:
    """A 307 or 308 pointing at the server's network is a failure, not followed and not retried.

    Redirects are never followed, whatever `push_allow_private_targets` says;
    the setting is on here only so the first hop can be a receiver on 127.0.0.1.
    """
    settings = {**SETTINGS, "push_allow_private_targets": True}
    async with (
        PushReceiver() as inside,
        redirector(status, inside.url("/admin")) as (url, asked),
        run_server(tmp_path / "d", **settings) as server,
    ):
        await server.user("alice")
        bob = await server.user("bob")
        await bob.set_push_target(bob.device_id, provider, target_for(provider, url))
        await message_bob(server, bob.user_id)
        await until(lambda: counted(server, provider, "failed") == 1)
        await asyncio.sleep(0.1)  # well past the retry delay
        assert asked == ["/moved"]
        assert inside.attempts == 0
        assert counted(server, provider, "retried") == 0


# -- the guarded HTTP client itself --------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "[::ffff:127.0.0.1]", "[::1]"])
async def test_the_guarded_client_refuses_literal_addresses_as_it_connects(host: str) -> None:
    """Literal addresses skip the resolver, so the socket for each attempt is checked instead:
    nothing reaches the receiver, whatever the caller checked before."""
    async with PushReceiver() as receiver:
        port = receiver.url().split(":")[-1].split("/")[0]
        async with target_session(allow_private=False) as session:
            with pytest.raises(aiohttp.ClientConnectorError) as caught:
                await session.post(f"http://{host}:{port}/direct", data=b"{}")
        assert isinstance(caught.value.os_error, AddressRefused)
        assert receiver.attempts == 0


async def test_names_that_resolve_to_local_addresses_are_not_connected() -> None:
    """A name is checked when it is resolved, on every connection (no DNS rebinding)."""
    resolver = PublicOnlyResolver()
    try:
        with pytest.raises(AddressRefused, match="private or local"):
            await resolver.resolve("localhost", 443)
    finally:
        await resolver.close()
