"""The push guard's logic: reading hosts as addresses, judging them, and what a refusal costs."""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import aiohttp
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from pydantic import JsonValue

from chatapp.accounts import PushTarget
from chatapp.notify import DeliveryFailed, Notification
from chatapp.notify.delivery import Delivery, DeliveryQueue, RetryPolicy, TargetRefused
from chatapp.notify.provider import InvalidTarget
from chatapp.notify.providers.addresses import (
    is_local_name,
    is_public,
    is_public_address,
    parse_address,
)
from chatapp.notify.providers.guard import AddressRefused, PublicOnlyResolver, open_public_socket
from chatapp.notify.providers.web import check_answer, check_url
from chatapp.observability import Metrics

LOOPBACK = ipaddress.ip_address("127.0.0.1")

# -- reading a host ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "127.1",
        "127.0.1",
        "2130706433",
        "0x7f000001",
        "0x7f.1",
        "0X7F.0.0.1",
        "017700000001",
        "0177.0.0.01",
        "127.000.000.001",
        "127.0.0.1.",
        "%31%32%37.0.0.1",
    ],
)
def test_every_ipv4_spelling_of_loopback_reads_as_127_0_0_1(host: str) -> None:
    """inet_aton's old forms (one to four parts, octal, hex), a trailing dot and escapes."""
    assert parse_address(host) == LOOPBACK


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("[::1]", "::1"),
        ("0:0:0:0:0:0:0:1", "::1"),
        ("[::ffff:127.0.0.1]", "::ffff:7f00:1"),
        ("::ffff:7f00:1", "::ffff:7f00:1"),
        ("fe80::1%25eth0", "fe80::1%eth0"),
    ],
)
def test_ipv6_hosts_read_as_addresses(host: str, address: str) -> None:
    """Brackets, embedded dotted quads and zone ids (percent-escaped in URLs) are understood."""
    assert parse_address(host) == ipaddress.ip_address(address)


@pytest.mark.parametrize(
    "host", ["push.example.org", "0x", "08.1", "1.256.1", "1.2.3.4.5", "4294967296", "127..1", ""]
)
def test_names_and_broken_numbers_are_not_addresses(host: str) -> None:
    """What neither the HTTP client nor the OS takes for an address is a name (or nothing)."""
    assert parse_address(host) is None


# -- judging an address --------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "93.184.216.34",
        "2606:4700:4700::1111",
        "::ffff:93.184.216.34",  # mapped: judged by the IPv4 address
        "64:ff9b::5db8:d822",  # NAT64 to 93.184.216.34
        "2002:5db8:d822::1",  # 6to4 from 93.184.216.34
    ],
)
def test_globally_routable_unicast_addresses_are_public(address: str) -> None:
    """Public addresses, including IPv6 ones that carry a public IPv4 address."""
    assert is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "192.0.2.1",
        "198.18.0.1",
        "224.0.0.1",
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
        "::",
        "::1",
        "fc00::1",
        "fd12:3456::1",
        "fe80::1",
        "fec0::1",
        "ff02::1",
        "ff0e::1",
        "2001:db8::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::127.0.0.1",
        "::ffff:0:7f00:1",
        "64:ff9b::a9fe:a9fe",
        "64:ff9b:1::1",
        "2002:7f00:1::",
        "2002:a00:1::",
        "2001:0:4136:e378:8000:63bf:80ff:fffe",
    ],
)
def test_private_local_special_and_multicast_addresses_are_not_public(address: str) -> None:
    """Loopback, private, link-local, shared, documentation, multicast and reserved ranges,
    and IPv6 addresses that carry one of them (mapped, compatible, NAT64, 6to4, Teredo)."""
    assert not is_public(ipaddress.ip_address(address))


def test_a_name_is_never_a_public_address() -> None:
    """`is_public_address` answers for addresses only; names are judged when resolved."""
    assert is_public_address("0x5d.0xb8.0xd8.0x22")
    assert not is_public_address("0x7f.1")
    assert not is_public_address("push.example.org")


@pytest.mark.parametrize(
    "name",
    [
        "localhost",
        "LOCALHOST.",
        "push.localhost",
        "localhost.localdomain",
        "printer.local",
        "metadata.google.internal",
        "router.home.arpa",
        "1.0.0.127.in-addr.arpa",
        "nas.lan",
        "metadata",
        "redis",
    ],
)
def test_names_only_the_servers_network_answers_are_local(name: str) -> None:
    """localhost, mDNS, private-use and undelegated suffixes, and names without a dot."""
    assert is_local_name(name)


@pytest.mark.parametrize(
    "name", ["push.example.org", "fcm.googleapis.com", "updates.push.services.mozilla.com"]
)
def test_public_push_services_are_not_local_names(name: str) -> None:
    """The push services browsers and ntfy use are ordinary public names."""
    assert not is_local_name(name)


# -- registration --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://127.1/t",
        "https://0x7f.1/t",
        "https://[::ffff:127.0.0.1]/t",
        "https://\u2460\u2461\u2466.\u24ea.\u24ea.\u2460/t",  # circled: IDNA makes 127.0.0.1
        "https://localhost:8443/t",
        "https://x.localhost/t",
        "https://metadata/t",
    ],
)
def test_a_url_reaching_the_servers_network_is_refused_unless_allowed(url: str) -> None:
    """The host is read as the HTTP client will read it; the setting lifts the check."""
    with pytest.raises(InvalidTarget, match="private or local"):
        check_url(url, allow_http=False, field="target", allow_private=False)
    assert check_url(url, allow_http=False, field="target", allow_private=True) == url


def test_a_url_to_a_public_host_is_taken_as_it_was_given() -> None:
    """Public names and addresses pass, and are stored unchanged."""
    public = ["https://push.example.org/t?up=1", "https://93.184.216.34/t", "https://[2606::1]/t"]
    for url in public:
        assert check_url(url, allow_http=False, field="target", allow_private=False) == url


def test_a_numeric_host_is_taken_only_as_a_dotted_quad() -> None:
    """The HTTP client refuses other numeric forms, so a public one would never be delivered."""
    with pytest.raises(InvalidTarget, match="four decimal numbers"):
        check_url("https://134744072/t", allow_http=False, field="target", allow_private=False)


# -- at delivery ---------------------------------------------------------------------------


class ScriptedResolver(AbstractResolver):
    """Answers every name with the addresses it was given."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses
        self.closed = False

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(hostname=host, host=address, port=port, family=family, proto=0, flags=0)
            for address in self.addresses
        ]

    async def close(self) -> None:
        self.closed = True


async def test_the_resolver_keeps_only_public_answers() -> None:
    """A name with public and private addresses is connected to its public ones only."""
    resolver = PublicOnlyResolver(ScriptedResolver("10.0.0.7", "93.184.216.34", "::1"))
    found = await resolver.resolve("push.example.org", 443)
    assert [result["host"] for result in found] == ["93.184.216.34"]
    await resolver.close()


async def test_a_name_with_only_private_answers_is_refused() -> None:
    """No public address left: AddressRefused, which delivery never retries."""
    inner = ScriptedResolver("127.0.0.1", "::ffff:169.254.169.254")
    resolver = PublicOnlyResolver(inner)
    with pytest.raises(AddressRefused, match=r"rebound\.example resolves only to private"):
        await resolver.resolve("rebound.example", 443)
    await resolver.close()
    assert inner.closed


@pytest.mark.parametrize(
    "addr_info",
    [
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 443)),
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", 80)),
        (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::ffff:7f00:1", 443, 0, 0)),
        (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("fe80::1%lo", 443, 0, 1)),
    ],
)
def test_no_socket_is_opened_for_a_private_address(addr_info: aiohttp.AddrInfoType) -> None:
    """The connection attempt itself is refused, for literal and resolved addresses alike."""
    with pytest.raises(AddressRefused, match="private or local"):
        open_public_socket(addr_info)


def test_a_socket_is_opened_for_a_public_address() -> None:
    """A public address gets an ordinary socket of its family (not connected here)."""
    sock = open_public_socket((socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 443)))
    with sock:
        assert (sock.family, sock.type) == (socket.AF_INET, socket.SOCK_STREAM)


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_answer_is_a_final_failure(status: int) -> None:
    """Redirects are not followed, and asking again would get the same answer."""
    with pytest.raises(DeliveryFailed, match="redirects are not followed") as caught:
        check_answer(status, "Moved", gone=(404, 410))
    assert not caught.value.retryable


class FailingOnceProvider:
    """Raises `failure` on its first delivery, then takes every one."""

    name = "fake"

    def __init__(self, failure: Exception) -> None:
        self.failure: Exception | None = failure
        self.sent = 0

    def check_target(self, target: JsonValue) -> JsonValue:
        return target

    async def send(self, target: JsonValue, notification: Notification) -> None:
        failure, self.failure = self.failure, None
        if failure is not None:
            raise failure
        self.sent += 1


async def deliver_twice(provider: FailingOnceProvider) -> tuple[Metrics, list[PushTarget]]:
    """Two deliveries to one device through a queue that would retry three times, fast."""
    metrics = Metrics()
    gone: list[PushTarget] = []

    async def forget(target: PushTarget) -> None:
        gone.append(target)

    queue = DeliveryQueue(
        provider,
        metrics,
        size=10,
        workers=1,
        timeout_seconds=1.0,
        retry=RetryPolicy(retries=3, base_seconds=0.001, max_seconds=0.002),
        on_target_gone=forget,
    )
    device = PushTarget(user_id=2, device_id=1, provider="fake", target="https://127.1/")
    note = Notification(
        id="n", user_id=2, device_id=1, channel_id=10, sender_id=1, sender_name="alice",
        message_id=1, seq=1, count=1, created_at=0,
    )  # fmt: skip
    queue.start()
    try:
        for _ in range(2):
            queue.put(Delivery(device, note))
            await queue.idle()
        await asyncio.sleep(0.02)  # past any retry's delay
    finally:
        await queue.close()
    return metrics, gone


def counted(metrics: Metrics, outcome: str) -> float:
    value = metrics.registry.get_sample_value(
        "chatapp_push_notifications_total", {"provider": "fake", "outcome": outcome}
    )
    return value or 0.0


async def test_a_refused_target_is_counted_once_and_never_retried() -> None:
    """TargetRefused drops the delivery with the `refused` outcome; the target is kept."""
    provider = FailingOnceProvider(TargetRefused("127.0.0.1 is a private or local address"))
    metrics, gone = await deliver_twice(provider)
    assert counted(metrics, "refused") == 1
    assert (counted(metrics, "retried"), counted(metrics, "failed")) == (0, 0)
    assert counted(metrics, "sent") == provider.sent == 1  # the next delivery went through
    assert gone == []


async def test_a_url_the_http_client_will_never_take_is_not_retried() -> None:
    """aiohttp's InvalidURL (a numeric host it refuses) is a final failure, not a network error."""
    provider = FailingOnceProvider(aiohttp.InvalidUrlClientError("127.1"))
    metrics, _ = await deliver_twice(provider)
    assert (counted(metrics, "failed"), counted(metrics, "retried")) == (1, 0)
    assert counted(metrics, "sent") == 1
