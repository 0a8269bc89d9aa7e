"""`GET /channels` for a user in many groups with long last messages: time and loop stalls.

    .venv/bin/python -m bench.channel_list [--groups 1000] [--members 100]
        [--chars 100000] [--text emoji|letters] [--concurrent 10] [--source DIR]

Starts the server as its own process on a fresh data folder (with `--source`,
the `chatapp` of another checkout, e.g. `git archive HEAD chatapp migrations
config | tar -x -C /tmp/before`), puts one user in `--groups` groups of
`--members` members whose last message is `--chars` random emoji (or letters) long, then
restarts it and measures, cold (a fresh process) and warm: `GET /channels`
called one at a time, and `--concurrent` of them at once while `/healthz` is
polled every 10 ms (its latency is the event loop's stall as a client sees
it), with the server's own loop-lag gauge sampled throughout. Prints one
JSON object. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import string
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from chatapp.testing.process import ServerProcess

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery"
ALPHABETS = {
    "letters": string.ascii_letters + string.digits,
    # Four UTF-8 bytes each, and two UTF-16 code units: the heaviest text of a given length.
    "emoji": "".join(chr(code) for code in range(0x1F600, 0x1F650)),
}


async def main(argv: list[str] | None = None) -> None:
    options = _options(argv)
    # The server runs in the temporary folder, so `python -m` finds chatapp on
    # PYTHONPATH alone: this tree's, or the one `--source` names.
    env = {"PYTHONPATH": str(options.source or ROOT)}
    # Groups and members are what is measured: creating them is not limited here.
    env |= {"CHATAPP_GROUP_CHANGES_PER_USER": "10000000"}
    results: dict[str, Any] = {
        "groups": options.groups,
        "members": options.members,
        "chars": options.chars,
        "text": options.text,
        "source": str(options.source or "this tree"),
    }
    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)
        data = Path(folder) / "data"
        with ServerProcess(data, env=env) as server:
            async with aiohttp.ClientSession(server.url) as http:
                victim = await _fill(http, options)
            # A fresh process: nothing of the fill is in the server's memory.
            server.stop()
            server.start()
            async with aiohttp.ClientSession(server.url) as http:
                results["cold_concurrent"] = await _concurrently(http, server.url, victim, options)
                results["warm_sequential"] = await _one_by_one(http, server.url, victim, options)
                results["warm_concurrent"] = await _concurrently(http, server.url, victim, options)
            server.stop()
            server.start()
            async with aiohttp.ClientSession(server.url) as http:
                results["cold_sequential"] = await _one_by_one(http, server.url, victim, options)
            server.stop()
    print(json.dumps(results, indent=2))


def _options(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.channel_list")
    parser.add_argument("--groups", type=int, default=1000)
    parser.add_argument("--members", type=int, default=100, help="per group, the owner included")
    parser.add_argument("--chars", type=int, default=100_000, help="length of each last message")
    parser.add_argument(
        "--text", choices=sorted(ALPHABETS), default="emoji", help="what the messages are made of"
    )
    parser.add_argument("--concurrent", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5, help="sequential calls measured")
    parser.add_argument("--source", type=Path, help="a folder holding the chatapp to run")
    return parser.parse_args(argv)


async def _call(
    http: aiohttp.ClientSession, method: str, path: str, token: str | None = None, **kw: Any
) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.request(method, path, headers=headers, **kw) as answer:
        if answer.status >= 400:
            raise RuntimeError(f"{method} {path}: {answer.status} {await answer.text()}")
        return await answer.json() if answer.status != 204 else None


async def _user(http: aiohttp.ClientSession, name: str) -> tuple[int, str]:
    await _call(http, "POST", "/api/v1/auth/signup", json={"username": name, "password": PASSWORD})
    login = await _call(
        http, "POST", "/api/v1/auth/login", json={"username": name, "password": PASSWORD}
    )
    return login["user"]["user_id"], login["token"]


async def _fill(http: aiohttp.ClientSession, options: argparse.Namespace) -> str:
    """The victim's token, once it is in every group and every group has its long message."""
    _, owner = await _user(http, "owner")
    victim_id, victim = await _user(http, "victim")
    others = [(await _user(http, f"member{n}"))[0] for n in range(max(0, options.members - 2))]
    letters = ALPHABETS[options.text]
    rng = random.Random(17)
    started = time.monotonic()

    async def one(number: int) -> None:
        group = await _call(
            http,
            "POST",
            "/api/v1/channels/group",
            owner,
            json={"name": f"group {number}", "member_ids": [victim_id, *others]},
        )
        text = "".join(rng.choices(letters, k=options.chars))
        await _call(
            http,
            "POST",
            f"/api/v1/channels/{group['channel']['channel_id']}/messages",
            owner,
            json={"client_msg_id": f"m{number}", "text": text},
        )

    for first in range(0, options.groups, 20):
        await asyncio.gather(*(one(n) for n in range(first, min(first + 20, options.groups))))
    took = time.monotonic() - started
    print(f"filled {options.groups} groups in {took:.1f} s", file=sys.stderr, flush=True)
    return victim


async def _one_by_one(
    http: aiohttp.ClientSession, server_url: str, victim: str, options: argparse.Namespace
) -> dict[str, Any]:
    """`--repeat` calls one after the other, and the worst loop lag meanwhile."""
    lags: list[float] = []
    sampling = asyncio.create_task(_sample_lag(server_url, lags))
    took = [await _timed(http, victim) for _ in range(options.repeat)]
    await asyncio.sleep(1.2)  # one more window of the lag gauge
    sampling.cancel()
    return {
        "each_ms": [round(s * 1000, 1) for s in took],
        "median_ms": round(statistics.median(took) * 1000, 1),
        "answer_bytes": await _answer_size(http, victim),
        "loop_lag_max_ms": round(max(lags, default=0.0) * 1000, 1),
    }


async def _concurrently(
    http: aiohttp.ClientSession, server_url: str, victim: str, options: argparse.Namespace
) -> dict[str, Any]:
    """`--concurrent` calls at once while `/healthz` is polled, and the worst loop lag."""
    lags: list[float] = []
    health: list[float] = []
    sampling = asyncio.create_task(_sample_lag(server_url, lags))
    polling = asyncio.create_task(_poll_health(server_url, health))
    await asyncio.sleep(0.3)
    started = time.monotonic()
    each = await asyncio.gather(*(_timed(http, victim) for _ in range(options.concurrent)))
    together = time.monotonic() - started
    await asyncio.sleep(1.2)
    polling.cancel()
    sampling.cancel()
    health.sort()
    return {
        "calls": options.concurrent,
        "wall_ms": round(together * 1000, 1),
        "slowest_ms": round(max(each) * 1000, 1),
        "healthz_calls": len(health),
        "healthz_p50_ms": round(health[len(health) // 2] * 1000, 1),
        "healthz_p99_ms": round(health[int(len(health) * 0.99)] * 1000, 1),
        "healthz_max_ms": round(health[-1] * 1000, 1),
        "loop_lag_max_ms": round(max(lags, default=0.0) * 1000, 1),
    }


async def _answer_size(http: aiohttp.ClientSession, token: str) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    async with http.get("/api/v1/channels", headers=headers) as answer:
        return len(await answer.read())


async def _timed(http: aiohttp.ClientSession, token: str) -> float:
    started = time.monotonic()
    await _call(http, "GET", "/api/v1/channels", token)
    return time.monotonic() - started


async def _poll_health(url: str, latencies: list[float]) -> None:
    async with aiohttp.ClientSession(url) as own:  # its own connection
        while True:
            started = time.monotonic()
            async with own.get("/healthz") as answer:
                await answer.read()
            latencies.append(time.monotonic() - started)
            await asyncio.sleep(0.01)


async def _sample_lag(url: str, lags: list[float]) -> None:
    async with aiohttp.ClientSession(url) as own:
        while True:
            async with own.get("/metrics") as answer:
                for line in (await answer.text()).splitlines():
                    if line.startswith("chatapp_event_loop_lag_seconds "):
                        lags.append(float(line.split()[1]))
            await asyncio.sleep(0.25)


if __name__ == "__main__":
    asyncio.run(main())
