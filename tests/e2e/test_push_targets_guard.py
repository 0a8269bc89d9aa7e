"""User-registered push URLs cannot point the server at its own network."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatapp.client import ChatApiError
from chatapp.notify.providers.guard import PublicOnlyResolver, is_public_address
from chatapp.testing import run_server


@pytest.mark.parametrize(
    "target",
    [
        "https://127.0.0.1/topic",
        "https://10.1.2.3/topic",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/topic",
        "https://192.168.0.10:8443/topic",
    ],
)
async def test_private_address_targets_are_refused(tmp_path: Path, target: str) -> None:
    """An ntfy or Web Push URL with a private or local address is 400 when registered."""
    async with run_server(tmp_path / "d", push_providers=["ntfy", "webpush"]) as server:
        alice = await server.user()
        with pytest.raises(ChatApiError) as caught:
            await alice.set_push_target(alice.device_id, "ntfy", target)
        assert (caught.value.status, caught.value.code) == (400, "bad_request")
        assert "private or local" in caught.value.message
        subscription = {"endpoint": target, "keys": {"p256dh": "x", "auth": "y"}}
        with pytest.raises(ChatApiError) as caught:
            await alice.set_push_target(alice.device_id, "webpush", subscription)
        assert caught.value.status == 400
        assert "private or local" in caught.value.message


async def test_names_that_resolve_to_local_addresses_are_not_connected() -> None:
    """A name is checked when it is resolved, on every connection (no DNS rebinding)."""
    resolver = PublicOnlyResolver()
    try:
        with pytest.raises(OSError, match="private or local"):
            await resolver.resolve("localhost", 443)
    finally:
        await resolver.close()


def test_which_addresses_are_public() -> None:
    """Only globally routable addresses count as public."""
    assert is_public_address("93.184.216.34")
    assert is_public_address("2606:4700:4700::1111")
    for private in ["127.0.0.1", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254",
                    "::1", "fc00::1", "fe80::1", "0.0.0.0", "100.64.0.1", "not-an-ip"]:  # fmt: skip
        assert not is_public_address(private)
