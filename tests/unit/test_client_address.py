"""Which address per-address limits see, with and without a trusted proxy."""

from __future__ import annotations

from chatapp.api.client_address import client_address, parse_networks

PROXIES = parse_networks(["127.0.0.1", "10.0.0.0/8"])


def test_without_trusted_proxies_the_connecting_address_counts() -> None:
    """A forwarded header from anyone not trusted is ignored."""
    assert client_address("203.0.113.5", "198.51.100.1", []) == "203.0.113.5"
    assert client_address("203.0.113.5", "198.51.100.1", PROXIES) == "203.0.113.5"


def test_a_trusted_proxy_names_the_client() -> None:
    """Through trusted proxies the nearest untrusted hop is the client."""
    assert client_address("127.0.0.1", "198.51.100.7", PROXIES) == "198.51.100.7"
    assert client_address("127.0.0.1", "198.51.100.7, 10.1.2.3", PROXIES) == "198.51.100.7"


def test_a_client_cannot_forge_its_way_past_the_proxy() -> None:
    """What a client writes on the left of X-Forwarded-For is not believed."""
    forged = "1.2.3.4, 198.51.100.7"
    assert client_address("127.0.0.1", forged, PROXIES) == "198.51.100.7"


def test_a_trusted_proxy_without_the_header_counts_as_itself() -> None:
    assert client_address("127.0.0.1", None, PROXIES) == "127.0.0.1"
