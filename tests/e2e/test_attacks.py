"""What one account can do to everyone else: each attack on the server's memory and
event loop, against the real server in a subprocess.

The attacker's sizes are scaled down from those that once made the server unusable,
with the same shape. While each attack runs, threads sample the server's resident
memory from /proc (VmRSS, and VmHWM for the moments between samples) and time
/healthz every ~25 ms, and two bystanders, alice and bob, exchange a message every
100 ms in their own channel. Each test then checks that the server stayed within
the bounds below, that the bystanders were served throughout, and that afterwards
it serves normally with nothing acknowledged lost.

Every bound was measured first on a 2-core machine shared with other work, then set
with two to three times headroom over the highest figure seen; the figures are beside
each one, with what the same attack did with its defence turned off.
"""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import string
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chatapp.client import ChatClient, RawAnswer
from chatapp.testing import RawSocket, ServerProcess
from chatapp.testing.attack import (
    AttackReport,
    AttackWatch,
    DeliveryProbe,
    ReadingMember,
    memory_of,
)
from chatapp.testing.bystanders import Account, Cast, assert_bystanders_unaffected
from chatapp.testing.server import DEFAULT_PASSWORD
from chatapp.testing.wire_socket import WireSocket

pytestmark = pytest.mark.slow

MIB = 1024 * 1024

# -- bounds for every attack ------------------------------------------------------------
# /healthz is a constant answer: all its latency is waiting for the event loop. Measured
# p99 during these attacks: 3-90 ms on a quiet machine, up to 200 ms (max 250 ms) while
# other test suites ran beside them. With the budgets off and the store read in one
# piece, replays took p99 to 3.0 s and /sync to 2.5 s (max 5.8 s).
HEALTHZ_P99_SECONDS = 0.5
# No single stall a user would notice as the server being down.
HEALTHZ_MAX_SECONDS = 2.0
# A bystander's message reaches the other bystander: measured p99 10-140 ms, up to
# 340 ms on a busy machine; with the budgets off and reads in one piece, 5.4-6.4 s.
DELIVERY_P99_SECONDS = 1.0

# -- 1. sockets that never read, in a big group receiving the longest messages --------------
# Was: 30 such sockets in a 100-member group, 200 messages of 100,000 emoji: RSS
# 75 MiB -> 2,426 MiB and nobody disconnected. Here 15 in a 40-member group. The budgets
# are lowered so that both act: 15 x 2 MiB per connection is more than the 8 MiB total.
FANOUT_MEMBERS = 40
FANOUT_NON_READERS = 15
FANOUT_MESSAGES = 200
EMOJI_TEXT = "\U0001f600" * 100_000  # 400,000 bytes of UTF-8: the longest text allowed
FANOUT_ENV = {
    "CHATAPP_CONNECTION_QUEUE_BYTES": str(2 * MIB),
    "CHATAPP_OUTGOING_BYTES_TOTAL": str(8 * MIB),
}
# Measured +34-36 MiB (the 8 MiB held, messages in flight, the store's buffers);
# without the budgets +1,117 MiB (each socket holds every message).
FANOUT_RSS_GROWTH_MIB = 80
# Once the non-readers are gone: measured 22-24 MiB kept (the allocator keeps some);
# without the budgets 535 MiB.
FANOUT_RSS_KEPT_MIB = 64

# -- 2 and 3. an inbox of long messages, replayed and paged ---------------------------------
# Was: 20,000 messages of 100,000 characters. Here 2,000, in a notes-to-self group (a
# group of one), written in ~3 s. Pages stop at page_max_bytes, left at its default.
INBOX_MESSAGES = 2_000
INBOX_TEXT_CHARS = 100_000
PAGE_MAX_BYTES = 4 * MIB
ATTACK_SECONDS = 5.0

# Was: each non-reading `hello last_seq=0` held ~155 MiB and the loop 0.6-1.3 s; eight
# sockets looping for 30 s took /healthz to a median of 946 ms. Here eight for 5 s, each
# dropping its socket after HELLO_HOLD_SECONDS and saying hello again.
HELLO_SOCKETS = 8
HELLO_HOLD_SECONDS = 1.0
# Measured +92-119 MiB (eight batches of 4-8 MiB queued, pieces read, allocator
# arenas); without the page and queue budgets +1,610-1,660 MiB in the same 5 s.
REPLAY_RSS_GROWTH_MIB = 256

# Was: one `GET /sync?limit=1000` returned 160 MB in 2.3 s; eight at once peaked at
# 2.7 GiB and stalled /healthz 4.9 s. Here eight at once, each paging on for 5 s.
SYNC_WALKERS = 8
# Measured +280-325 MiB: each 4 MiB page is copied a few times on the way out (entries,
# JSON, bytes), and allocator arenas keep some; without the page budget +2,400-3,150 MiB.
SYNC_RSS_GROWTH_MIB = 768

# -- 4. sockets that never say anything -------------------------------------------------
PRESENCE_TIMEOUT_MS = 1_000  # an authenticated socket may be silent for twice this
HELLO_TIMEOUT_MS = 1_500  # the protocol's 10 s to say hello, scaled down
IDLE_PER_USER = 20  # three users' worth: max_connections_per_user is 32
IDLE_UNAUTHENTICATED = 60
# Closed no earlier than its timeout and at most this much later (measured: under 10 ms
# late; without the idle close, the authenticated ones were still open after 8 s).
IDLE_CLOSE_SLACK_SECONDS = 1.0
# How long the test waits for a close before it counts the socket as left open.
IDLE_GIVE_UP_SECONDS = 2 * PRESENCE_TIMEOUT_MS / 1000 + IDLE_CLOSE_SLACK_SECONDS + 5
# 120 silent sockets: measured +3 MiB.
IDLE_RSS_GROWTH_MIB = 32

# -- 5. a stranger guessing the owner's password ---------------------------------------------
OWNER_HOME = "203.0.113.7"
STRANGER = "198.51.100.66"
FAILURES_PER_ADDRESS = 3  # login_attempts_per_username: for one name from one address
GUESSERS = 4
LOGIN_ENV = {
    "CHATAPP_TRUSTED_PROXIES": "127.0.0.1",
    "CHATAPP_LOGIN_ATTEMPTS_PER_USERNAME": str(FAILURES_PER_ADDRESS),
    # The default (costly) password hashing, so the owner's logins cost what they do.
    "CHATAPP_PASSWORD_HASH_TIME_COST": "2",
    "CHATAPP_PASSWORD_HASH_MEMORY_KIB": "19456",
}
# Measured +20 MiB (the hashing threads' 19 MiB each were touched at sign-up already).
# Counting failures by name alone, as the limit once did, the owner got 1 login in 97.
LOGIN_RSS_GROWTH_MIB = 64


# -- the cast and their server ------------------------------------------------------------


async def _sign_up(url: str, names: list[str]) -> list[Account]:
    accounts = []
    async with ChatClient(url) as client:
        for name in names:
            await client.signup(name, DEFAULT_PASSWORD)
            answer = await client.login(name, DEFAULT_PASSWORD)
            accounts.append(Account(name, answer.user.user_id, answer.token))
    return accounts


def sign_up(url: str, names: list[str]) -> list[Account]:
    return asyncio.run(_sign_up(url, names))


def api(url: str, token: str, method: str, path: str, body: Any = None, **params: str) -> Any:
    """One HTTP call as the holder of `token`; the decoded answer."""

    async def call() -> Any:
        async with ChatClient(url, token=token) as client:
            return await client.request(method, path, body, params=params or None)

    return asyncio.run(call())


def ws_url_of(server: ServerProcess) -> str:
    return server.url.replace("http://", "ws://") + "/ws"


@dataclass(frozen=True)
class CastData:
    """Who the cast are, without the server: to start another on a copy of its folder."""

    mallory: Account
    alice: Account
    bob: Account
    own_channel: int
    foreign_channel: int


def start_cast(server: ServerProcess, data: CastData | None = None) -> Cast:
    """mallory (the attacker), alice and bob (bystanders) on `server`: signed up now,
    or those of `data` when the server runs on a copy of their folder."""
    if data is None:
        mallory, alice, bob = sign_up(server.url, ["mallory", "alice", "bob"])
        direct = "/api/v1/channels/direct"
        own = api(server.url, alice.token, "POST", direct, {"user_id": mallory.user_id})
        foreign = api(server.url, alice.token, "POST", direct, {"user_id": bob.user_id})
        data = CastData(
            mallory, alice, bob, own["channel"]["channel_id"], foreign["channel"]["channel_id"]
        )
    return Cast(server, ws_url_of(server), data.mallory, data.alice, data.bob,
                data.own_channel, data.foreign_channel)  # fmt: skip


def probe_for(cast: Cast) -> DeliveryProbe:
    return DeliveryProbe(cast.ws_url, cast.alice.token, cast.bob.token, cast.foreign_channel)


def history(url: str, token: str, channel_id: int) -> list[str]:
    """Every client_msg_id in the channel's history, oldest first, page by page."""

    async def read() -> list[str]:
        found: list[str] = []
        before: int | None = None
        async with ChatClient(url, token=token) as client:
            while True:
                page = await client.messages(channel_id, before=before, limit=200)
                found[:0] = [message.client_msg_id for message in page.messages]
                if not page.has_more or not page.messages:
                    return found
                before = page.messages[0].message_id

    return asyncio.run(read())


def assert_within_bounds(report: AttackReport, growth_mib: float, probe: DeliveryProbe) -> None:
    """Memory, /healthz and the bystanders' deliveries stayed within their bounds."""
    described = f"{report.describe()}; {probe.describe()}"
    print(described)
    assert report.memory.growth_mib < growth_mib, f"RSS grew past {growth_mib} MiB: {described}"
    assert report.healthz.failures == 0, described
    assert len(report.healthz.seconds) >= 10, f"/healthz was hardly asked: {described}"
    assert report.healthz.p99 < HEALTHZ_P99_SECONDS, f"/healthz too slow: {described}"
    assert report.healthz.max < HEALTHZ_MAX_SECONDS, f"/healthz stalled: {described}"
    assert probe.failure is None, described
    deliveries = probe.stop()
    assert len(deliveries.seconds) >= 3, f"the bystanders were hardly served: {described}"
    assert deliveries.p99 < DELIVERY_P99_SECONDS, f"bystanders' deliveries slow: {described}"


def assert_serves_normally(cast: Cast, probe: DeliveryProbe) -> None:
    """The bystanders still chat, every message they had acknowledged is in their history,
    and the server logged no error."""
    assert_bystanders_unaffected(cast)
    stored = history(cast.server.url, cast.alice.token, cast.foreign_channel)
    missing = set(probe.acked) - set(stored)
    assert not missing, f"{len(missing)} acknowledged messages are missing"


def close_code(wire: WireSocket, timeout: float) -> int | None:
    """The code the server closed `wire` with, reading what it still had; None if it
    had not closed it within `timeout`."""
    try:
        return wire.closed_with(timeout=timeout)
    except TimeoutError:
        return None


def send_each(wire: WireSocket, channel_id: int, text: str, count: int) -> list[str]:
    """Send `count` messages one after another, each once the last is acknowledged;
    the client_msg_ids acknowledged. UTF-8 as it is (not `\\u` escapes), as a browser."""
    acked: list[str] = []
    for n in range(count):
        cmid = f"m{n}"
        frame = {"type": "send", "client_msg_id": cmid, "channel_id": channel_id, "text": text}
        wire.send_text(json.dumps(frame, ensure_ascii=False))
        while True:
            answer = wire.receive_json(15)
            if answer.get("type") == "ack":
                acked.append(answer["client_msg_id"])
                break
            assert answer.get("type") != "error", answer
    return acked


async def inbox_of(url: str, token: str) -> list[str]:
    """The client_msg_id of every entry of the caller's inbox, by `GET /sync` pages."""
    found: list[str] = []
    since = 0
    async with ChatClient(url, token=token) as client:
        while True:
            page = await client.sync(since, limit=1000)
            found += [e.message.client_msg_id for e in page.events if e.message is not None]
            since = page.next_since
            if not page.has_more:
                return found


# -- 1. sockets that never read ---------------------------------------------------------------


def test_sockets_that_never_read_in_a_big_group_are_closed_at_the_byte_budgets(
    tmp_path: Path,
) -> None:
    """Members whose sockets never read, in a group receiving messages of 100,000 emoji,
    are closed 1013 once they hold their budget or the server's total, so the server's
    memory stays bounded (and goes back down), while a member who reads gets every
    message and the bystanders are served. Every acknowledged message is in the history,
    and a closed member catches up from the store."""
    with ServerProcess(tmp_path / "data", env=FANOUT_ENV) as server:
        assert server.process is not None
        cast = start_cast(server)
        members = sign_up(server.url, [f"member{n}" for n in range(1, FANOUT_MEMBERS)])
        group = api(server.url, cast.mallory.token, "POST", "/api/v1/channels/group",
                    {"name": "big", "member_ids": [m.user_id for m in members]})  # fmt: skip
        group_id = group["channel"]["channel_id"]
        non_readers = []
        for member in members[:FANOUT_NON_READERS]:
            wire = WireSocket.connect(cast.ws_url)
            wire.send_json({"type": "hello", "token": member.token})
            non_readers.append(wire)
        reader = ReadingMember(cast.ws_url, members[FANOUT_NON_READERS].token, FANOUT_MESSAGES)
        sender = WireSocket.open(cast.ws_url, cast.mallory.token)

        with AttackWatch(server.process.pid, server.url) as watch, probe_for(cast) as probe:
            reader.start()
            acked = send_each(sender, group_id, EMOJI_TEXT, FANOUT_MESSAGES)
            reader.join()
        report = watch.stop()

        assert_within_bounds(report, FANOUT_RSS_GROWTH_MIB, probe)
        assert acked == [f"m{n}" for n in range(FANOUT_MESSAGES)]
        assert reader.failure is None, f"the reading member stopped: {reader.failure!r}"
        assert reader.close_code is None, f"the reading member was closed {reader.close_code}"
        assert reader.received == acked
        codes = [close_code(wire, timeout=10) for wire in non_readers]
        assert codes == [1013] * FANOUT_NON_READERS, f"close codes (None: still open): {codes}"
        for wire in (*non_readers, sender):
            wire.abort()
        reader.close()
        time.sleep(0.5)  # the server's side of the closes
        kept_mib = (memory_of(server.process.pid).rss_kib - report.memory.before_kib) / 1024
        print(f"{kept_mib:.0f} MiB kept once the non-readers were closed")
        assert kept_mib < FANOUT_RSS_KEPT_MIB, f"{kept_mib:.0f} MiB kept: {report.describe()}"

        assert history(server.url, cast.mallory.token, group_id) == acked
        # A member that was cut off catches up from the store, page by page.
        assert asyncio.run(inbox_of(server.url, members[0].token)) == acked
        assert_serves_normally(cast, probe)


# -- 2 and 3. a big inbox ------------------------------------------------------------------


@dataclass(frozen=True)
class BigInbox:
    """A stopped server's data folder whose mallory has INBOX_MESSAGES long notes."""

    data_dir: Path
    cast: CastData


@pytest.fixture(scope="module")
def big_inbox(tmp_path_factory: pytest.TempPathFactory) -> BigInbox:
    data_dir = tmp_path_factory.mktemp("big-inbox") / "data"
    with ServerProcess(data_dir) as server:
        cast = start_cast(server)
        notes = api(server.url, cast.mallory.token, "POST", "/api/v1/channels/group",
                    {"name": "notes", "member_ids": []})  # fmt: skip
        # Letters at random: text the store cannot compress to nothing.
        body = "".join(random.Random(17).choices(string.ascii_letters + " ", k=INBOX_TEXT_CHARS))
        with WireSocket.open(cast.ws_url, cast.mallory.token) as wire:
            fill(wire, notes["channel"]["channel_id"], body)
        assert server.stop() == 0
    # 200 MB of text sent in seconds leaves the search index behind, and each copy's
    # server would index it while being attacked; the attacks measure replays, so the
    # index is made whole first.
    reindex = [sys.executable, "-m", "chatapp", "reindex", "--data-dir", str(data_dir)]
    assert subprocess.run(reindex, capture_output=True, check=False).returncode == 0
    data = CastData(cast.mallory, cast.alice, cast.bob, cast.own_channel, cast.foreign_channel)
    return BigInbox(data_dir, data)


def fill(wire: WireSocket, channel_id: int, body: str, window: int = 16) -> None:
    """INBOX_MESSAGES sends, `window` in flight, each text `body` under its number."""
    sent = acked = 0
    while acked < INBOX_MESSAGES:
        while sent < INBOX_MESSAGES and sent - acked < window:
            text = f"{sent:06d}{body[6:]}"
            wire.send_json({"type": "send", "client_msg_id": f"n{sent}",
                            "channel_id": channel_id, "text": text})  # fmt: skip
            sent += 1
        frame = wire.receive_json(30)
        assert frame.get("type") != "error", frame
        acked += frame.get("type") == "ack"


@pytest.fixture
def inbox_cast(big_inbox: BigInbox, tmp_path: Path) -> Iterator[Cast]:
    """A server of its own on a copy of the big inbox."""
    shutil.copytree(big_inbox.data_dir, tmp_path / "data")
    with ServerProcess(tmp_path / "data") as server:
        yield start_cast(server, big_inbox.cast)


def test_looping_replays_of_a_big_inbox_on_sockets_that_never_read(inbox_cast: Cast) -> None:
    """Eight sockets saying `hello last_seq=0` over and over, never reading, on an inbox of
    2,000 messages of 100,000 characters: each replay stops at the page budget and waits
    for room, so memory stays bounded and the event loop keeps answering; afterwards the
    inbox still holds every message, and a client that reads is replayed from seq 1."""
    cast = inbox_cast
    process = cast.server.process
    assert process is not None
    stop = threading.Event()
    hellos: list[int] = []
    failures: list[BaseException] = []

    def say_hello_again_and_again() -> None:
        try:
            while not stop.is_set():
                wire = WireSocket.connect(cast.ws_url)
                wire.send_json({"type": "hello", "token": cast.mallory.token, "last_seq": 0})
                hellos.append(1)
                stop.wait(HELLO_HOLD_SECONDS)
                wire.abort()
        except BaseException as exc:
            failures.append(exc)

    attackers = [threading.Thread(target=say_hello_again_and_again) for _ in range(HELLO_SOCKETS)]
    with AttackWatch(process.pid, cast.server.url) as watch, probe_for(cast) as probe:
        for attacker in attackers:
            attacker.start()
        time.sleep(ATTACK_SECONDS)
        stop.set()
        for attacker in attackers:
            attacker.join(10)
    report = watch.stop()

    assert not failures, failures
    assert len(hellos) >= HELLO_SOCKETS * ATTACK_SECONDS / HELLO_HOLD_SECONDS / 2
    print(f"{len(hellos)} hellos")
    assert_within_bounds(report, REPLAY_RSS_GROWTH_MIB, probe)

    replay = asyncio.run(first_replay(cast))
    assert replay["max_seq"] == INBOX_MESSAGES
    assert replay["has_more"] is True
    assert replay["seqs"] == list(range(1, len(replay["seqs"]) + 1))
    last = INBOX_MESSAGES - 1
    tail = api(cast.server.url, cast.mallory.token, "GET", "/api/v1/sync", since=str(last))
    assert [event["message"]["client_msg_id"] for event in tail["events"]] == [f"n{last}"]
    assert_serves_normally(cast, probe)


def test_a_replay_batch_stops_at_page_max_bytes(inbox_cast: Cast) -> None:
    """`hello last_seq=0` on the big inbox replays at most page_max_bytes of text (at least
    one message) before `synced {has_more: true}`, as docs/protocol.md says."""
    replay = asyncio.run(first_replay(inbox_cast))
    assert replay["has_more"] is True
    assert replay["seqs"] == list(range(1, len(replay["seqs"]) + 1))
    text_bytes = sum(replay["sizes"])
    assert text_bytes <= PAGE_MAX_BYTES or len(replay["seqs"]) == 1, (
        f"{len(replay['seqs'])} messages, {text_bytes} bytes of text"
    )


async def first_replay(cast: Cast) -> dict[str, Any]:
    """`ready.max_seq`, and the seqs, text sizes (UTF-8) and `has_more` of a
    `hello last_seq=0` replay read to its `synced`."""
    async with await RawSocket.open(cast.ws_url, cast.mallory.token, last_seq=0) as raw:
        frames = await raw.until("synced", timeout=30)
    messages = [frame for frame in frames if frame["type"] == "message"]
    return {
        "max_seq": raw.ready["max_seq"],
        "seqs": [frame["seq"] for frame in messages],
        "sizes": [len(frame["message"]["text"].encode()) for frame in messages],
        "has_more": frames[-1]["has_more"],
    }


@dataclass(frozen=True)
class SyncPage:
    since: int
    seqs: list[int]
    text_bytes: int
    has_more: bool


async def walk_sync(url: str, token: str, seconds: float) -> list[SyncPage]:
    """Page through the whole inbox with `GET /sync?limit=1000`, again and again, until
    `seconds` have passed and it was walked whole at least once."""
    pages: list[SyncPage] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    since, walks = 0, 0
    async with ChatClient(url, token=token) as client:
        while walks == 0 or loop.time() < deadline:
            answer = await client.request(
                "GET", "/api/v1/sync", params={"since": str(since), "limit": "1000"}
            )
            events = answer["events"]
            pages.append(SyncPage(
                since=since,
                seqs=[event["seq"] for event in events],
                text_bytes=sum(len(event["message"]["text"].encode()) for event in events),
                has_more=answer["has_more"],
            ))  # fmt: skip
            since = answer["next_since"]
            if not answer["has_more"]:
                since, walks = 0, walks + 1
    return pages


def test_eight_concurrent_syncs_of_a_big_inbox(inbox_cast: Cast) -> None:
    """Eight clients paging `GET /sync?limit=1000` through 2,000 messages of 100,000
    characters at once: every page stops at page_max_bytes with `has_more`, so memory
    stays bounded and /healthz answers; every walk finds every seq, in order."""
    cast = inbox_cast
    process = cast.server.process
    assert process is not None

    async def walk_all() -> list[list[SyncPage]]:
        walkers = [
            walk_sync(cast.server.url, cast.mallory.token, ATTACK_SECONDS)
            for _ in range(SYNC_WALKERS)
        ]
        return await asyncio.gather(*walkers)

    with AttackWatch(process.pid, cast.server.url) as watch, probe_for(cast) as probe:
        walks = asyncio.run(walk_all())
    report = watch.stop()

    pages = [page for walk in walks for page in walk]
    print(f"{len(pages)} pages of at most {max(len(page.seqs) for page in pages)} entries")
    assert_within_bounds(report, SYNC_RSS_GROWTH_MIB, probe)
    for page in pages:
        assert page.seqs == list(range(page.since + 1, page.since + 1 + len(page.seqs)))
        assert page.text_bytes <= PAGE_MAX_BYTES or len(page.seqs) == 1, page.text_bytes
        assert page.has_more is (page.seqs[-1] < INBOX_MESSAGES)
    for walk in walks:
        first_walk = []
        for page in walk:
            first_walk += page.seqs
            if not page.has_more:
                break
        assert first_walk == list(range(1, INBOX_MESSAGES + 1))
    assert_serves_normally(cast, probe)


# -- 4. idle sockets -------------------------------------------------------------------------


async def closed_after(raw: RawSocket, since: float) -> tuple[int | None, float]:
    """The close code the server sent (None: still open after IDLE_GIVE_UP_SECONDS),
    and the seconds from `since` until it came."""
    try:
        code = await raw.closed_with(timeout=IDLE_GIVE_UP_SECONDS)
    except TimeoutError:
        code = None
    seconds = asyncio.get_running_loop().time() - since
    await raw.close()
    return code, seconds


async def idle_attack(cast: Cast, idlers: list[Account]) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    ws_url = cast.ws_url
    silent: list[tuple[RawSocket, float]] = []
    for _ in range(IDLE_UNAUTHENTICATED):
        silent.append((await RawSocket.connect(ws_url), loop.time()))
    said_hello: list[tuple[RawSocket, float]] = []
    for account in idlers:
        for _ in range(IDLE_PER_USER):
            raw = await RawSocket.open(ws_url, account.token)
            said_hello.append((raw, loop.time()))
    beating = await RawSocket.open(ws_url, cast.mallory.token)
    await beating.until("synced")
    waits = [closed_after(raw, since) for raw, since in silent + said_hello]
    closes = asyncio.gather(*waits)
    beats = 0
    while not closes.done() or beats < 5:
        await beating.send({"type": "heartbeat", "ref": f"b{beats}"})
        assert (await beating.expect("heartbeat_ack"))["ref"] == f"b{beats}"
        beats += 1
        await asyncio.sleep(0.3)
    results = await closes
    await beating.close()
    return {
        "unauthenticated": results[:IDLE_UNAUTHENTICATED],
        "authenticated": results[IDLE_UNAUTHENTICATED:],
    }


def test_sockets_that_never_send_a_frame_are_closed(tmp_path: Path) -> None:
    """Sockets that say nothing are closed 4408 from the server's side: without hello
    after hello_timeout, after hello after twice presence_timeout, measured at the
    client; one that heartbeats stays, and the server lets go of what they held."""
    env = {
        "CHATAPP_PRESENCE_TIMEOUT_MS": str(PRESENCE_TIMEOUT_MS),
        "CHATAPP_HELLO_TIMEOUT_MS": str(HELLO_TIMEOUT_MS),
    }
    with ServerProcess(tmp_path / "data", env=env) as server:
        assert server.process is not None
        cast = start_cast(server)
        idlers = sign_up(server.url, ["idler1", "idler2", "idler3"])
        with AttackWatch(server.process.pid, server.url) as watch, probe_for(cast) as probe:
            results = asyncio.run(idle_attack(cast, idlers))
        report = watch.stop()

        assert_within_bounds(report, IDLE_RSS_GROWTH_MIB, probe)
        for kind, timeout_ms in (
            ("unauthenticated", HELLO_TIMEOUT_MS),
            ("authenticated", 2 * PRESENCE_TIMEOUT_MS),
        ):
            codes = {code for code, _ in results[kind]}
            seconds = [seconds for _, seconds in results[kind]]
            measured = f"{kind}: closed after {min(seconds):.2f}-{max(seconds):.2f} s"
            print(measured)
            assert codes == {4408}, f"{kind}: {codes}"
            assert min(seconds) >= timeout_ms / 1000 - 0.05, measured
            assert max(seconds) <= timeout_ms / 1000 + IDLE_CLOSE_SLACK_SECONDS, measured
        metrics = urllib.request.urlopen(server.url + "/metrics", timeout=5).read().decode()
        sockets = [line for line in metrics.splitlines()
                   if line.startswith('chatapp_open_connections{kind="websocket"}')]  # fmt: skip
        assert sockets, "no open-connections gauge in /metrics"
        assert float(sockets[0].split()[-1]) <= 2, sockets  # the probe's two may be closing
        assert_serves_normally(cast, probe)


# -- 5. login lockout ------------------------------------------------------------------------


async def login_from(client: ChatClient, address: str, password: str) -> RawAnswer:
    """POST /auth/login for mallory, as the trusted proxy forwards it from `address`."""
    return await client.raw_request(
        "POST",
        "/api/v1/auth/login",
        data=json.dumps({"username": "mallory", "password": password}),
        headers={"X-Forwarded-For": address, "Content-Type": "application/json"},
    )


async def guess_while_the_owner_logs_in(url: str) -> tuple[list[RawAnswer], list[int]]:
    """GUESSERS concurrent wrong passwords from the stranger's address without pause,
    while the owner logs in from home every 50 ms, for ATTACK_SECONDS."""
    guesses: list[RawAnswer] = []
    owner: list[int] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ATTACK_SECONDS
    async with ChatClient(url) as client:

        async def guess() -> None:
            while loop.time() < deadline:
                guesses.append(await login_from(client, STRANGER, f"guess-{len(guesses)}"))

        async def log_in_as_owner() -> None:
            while loop.time() < deadline:
                owner.append((await login_from(client, OWNER_HOME, DEFAULT_PASSWORD)).status)
                await asyncio.sleep(0.05)

        await asyncio.gather(log_in_as_owner(), *(guess() for _ in range(GUESSERS)))
    return guesses, owner


def test_a_stranger_guessing_cannot_lock_the_owner_out(tmp_path: Path) -> None:
    """Behind a trusted proxy, wrong passwords for mallory from a stranger's address get
    401 until that address's failures are spent, then 429 with Retry-After, even with
    the right password; meanwhile mallory logs in from home every time, and the server
    stays responsive while it hashes passwords."""
    with ServerProcess(tmp_path / "data", env=LOGIN_ENV) as server:
        assert server.process is not None
        cast = start_cast(server)
        with AttackWatch(server.process.pid, server.url) as watch, probe_for(cast) as probe:
            guesses, owner = asyncio.run(guess_while_the_owner_logs_in(server.url))
        report = watch.stop()

        assert_within_bounds(report, LOGIN_RSS_GROWTH_MIB, probe)
        statuses = [answer.status for answer in guesses]
        seen = (
            f"owner: {len(owner)} logins, {owner.count(200)} answered 200; stranger:"
            f" {len(guesses)} guesses, {statuses.count(401)} answered 401"
        )
        print(seen)
        assert len(owner) >= 10, seen
        assert set(owner) == {200}, seen
        assert statuses.count(401) == FAILURES_PER_ADDRESS, seen
        assert set(statuses) == {401, 429}, seen
        assert all(
            float(answer.headers["Retry-After"]) >= 1 for answer in guesses if answer.status == 429
        )

        async def right_password_from_the_stranger() -> int:
            async with ChatClient(server.url) as client:
                return (await login_from(client, STRANGER, DEFAULT_PASSWORD)).status

        assert asyncio.run(right_password_from_the_stranger()) == 429
        assert_serves_normally(cast, probe)


# -- 6. a user put into many groups with long last messages --------------------------------
# Was: a user put in 1,000 groups with long last messages: GET /channels took 1.0-1.1 s
# on the event loop, ten at once 10.4 s, /healthz up to 4.6 s. Any user could put any
# user into groups (1,000 groups of 100 members in 5.6 s). Here 400 groups, each with a
# last message of 100,000 characters, and ten GET /channels at once for 5 s. Group
# creation is counted by `group_changes_per_user` (60 a minute by default; lifted for
# the set-up, as TEST_SETTINGS do).
CROWDED_GROUPS = 400
LONG_TEXT = "x" * 100_000
CHANNEL_LISTERS = 10
# Measured +26 MiB, /healthz p99 72 ms, each list 20-390 ms and about 60 KB. Before the
# preview (each last message read whole, already off the loop): +24 MiB, p99 71 ms, each
# list 0.2-0.54 s and 40 MB; the preview check is what fails then. On the loop, as the
# attack was first found, lists stalled /healthz for seconds.
CHANNELS_RSS_GROWTH_MIB = 128
PREVIEW_MAX_CHARS = 200


async def crowd(url: str, mallory: Account, victim: Account) -> None:
    """mallory puts the victim into CROWDED_GROUPS groups and posts a long message in each."""
    async with ChatClient(url, token=mallory.token) as client:
        for first in range(0, CROWDED_GROUPS, 20):
            groups = await asyncio.gather(
                *(
                    client.create_group(f"g{n}", [victim.user_id])
                    for n in range(first, min(first + 20, CROWDED_GROUPS))
                )
            )
            await asyncio.gather(
                *(
                    client.send_message(group.channel_id, LONG_TEXT, client_msg_id=f"g{n}")
                    for n, group in enumerate(groups, start=first)
                )
            )


async def list_channels_for(url: str, token: str, seconds: float) -> list[tuple[float, Any]]:
    """CHANNEL_LISTERS loops of GET /channels for `seconds`; each call's time and answer."""
    calls: list[tuple[float, Any]] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    async with ChatClient(url, token=token) as client:

        async def lister() -> None:
            while loop.time() < deadline:
                started = loop.time()
                answer = await client.request("GET", "/api/v1/channels")
                calls.append((loop.time() - started, answer))

        await asyncio.gather(*(lister() for _ in range(CHANNEL_LISTERS)))
    return calls


def test_many_channel_lists_of_a_user_in_hundreds_of_groups(tmp_path: Path) -> None:
    """A user put into hundreds of groups, each ending in a message of 100,000 characters,
    lists their channels ten at a time: each list carries a short preview of each last
    message (not the whole text), the server's memory and /healthz stay within bounds and
    the bystanders are served."""
    with ServerProcess(tmp_path / "data") as server:
        assert server.process is not None
        cast = start_cast(server)
        (victim,) = sign_up(server.url, ["victim"])
        asyncio.run(crowd(server.url, cast.mallory, victim))
        with AttackWatch(server.process.pid, server.url) as watch, probe_for(cast) as probe:
            calls = asyncio.run(list_channels_for(server.url, victim.token, ATTACK_SECONDS))
        report = watch.stop()

        assert_within_bounds(report, CHANNELS_RSS_GROWTH_MIB, probe)
        times = sorted(seconds for seconds, _ in calls)
        print(f"{len(calls)} lists, each {times[0]:.3f}-{times[-1]:.3f} s")
        assert len(calls) >= CHANNEL_LISTERS
        for _, answer in calls:
            channels = answer["channels"]
            assert len(channels) == CROWDED_GROUPS
            previews = [channel["last_message"] for channel in channels]
            assert all(p["truncated"] and len(p["text"]) <= PREVIEW_MAX_CHARS for p in previews)
        assert_serves_normally(cast, probe)
