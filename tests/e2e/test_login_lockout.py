"""Failed-login limits through a real server behind a trusted proxy: a stranger guessing
a name cannot lock its owner out, and guessers at many addresses are slowed together."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from chatapp.client import ChatClient, RawAnswer
from chatapp.testing import run_server

PASSWORD = "password1"
OWNER_HOME = "203.0.113.7"
STRANGER = "198.51.100.66"
PER_ADDRESS = 3  # login_attempts_per_username: failures for one name from one address


async def login_from(client: ChatClient, address: str, password: str) -> RawAnswer:
    """POST /auth/login as a proxy would forward it for a client at `address`."""
    return await client.raw_request(
        "POST",
        "/api/v1/auth/login",
        data=json.dumps({"username": "nina", "password": password}),
        headers={"X-Forwarded-For": address},
    )


async def test_the_owner_logs_in_while_a_stranger_hammers_wrong_passwords(tmp_path: Path) -> None:
    """While a stranger sends wrong passwords for nina without pause (answered 401, then 429
    once their failures are spent), nina logs in from her own address every time."""
    async with run_server(
        tmp_path / "d", login_attempts_per_username=PER_ADDRESS, trusted_proxies=["127.0.0.1"]
    ) as server:
        client = server.client()
        await client.signup("nina", PASSWORD)
        stranger_answers: list[int] = []
        owner_answers: list[int] = []

        async def hammer() -> None:
            while len(stranger_answers) < 60:
                stranger_answers.append((await login_from(client, STRANGER, "guess123")).status)

        async def log_in_as_owner() -> None:
            while len(stranger_answers) < 60:
                owner_answers.append((await login_from(client, OWNER_HOME, PASSWORD)).status)
                await asyncio.sleep(0.01)

        await asyncio.gather(hammer(), log_in_as_owner())

        assert stranger_answers[:PER_ADDRESS] == [401] * PER_ADDRESS
        assert set(stranger_answers[PER_ADDRESS:]) == {429}
        assert owner_answers
        assert set(owner_answers) == {200}
        # The right password from the stranger's address waits too: guessing it tells nothing.
        assert (await login_from(client, STRANGER, PASSWORD)).status == 429


async def test_guessers_at_many_addresses_hit_the_backoff_per_username(tmp_path: Path) -> None:
    """Ten times the per-address budget of failures for one name, each from its own
    address, makes every further login for it wait (429 with Retry-After)."""
    async with run_server(
        tmp_path / "d", login_attempts_per_username=PER_ADDRESS, trusted_proxies=["127.0.0.1"]
    ) as server:
        client = server.client()
        await client.signup("nina", PASSWORD)
        for n in range(PER_ADDRESS * 10):
            assert (await login_from(client, f"198.51.100.{n + 1}", "guess123")).status == 401

        refused = await login_from(client, "192.0.2.1", "guess123")
        assert refused.status == 429
        assert int(refused.headers["Retry-After"]) >= 1
