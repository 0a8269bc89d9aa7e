"""The WebSocket client against a real server, with connections broken for real by a TCP proxy."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from chatapp.client import (
    Backoff,
    ChatClient,
    ErrorEvent,
    MessageEvent,
    ReadEvent,
    RealtimeClient,
    RealtimeError,
    State,
    TypingEvent,
)
from chatapp.protocol.http import ChannelAnswer, MessageOut, MessagesAnswer, SyncAnswer
from chatapp.testing import RunningServer, TcpProxy, free_port, run_server

# Reconnect almost at once, so that each test spends its time on the behaviour.
FAST = Backoff(initial=0.01, maximum=0.05, multiplier=2.0, jitter=0.2)
WAIT = 10.0
"""The most any single step may take before the test fails instead of hanging."""


@pytest.fixture
async def proxy(chat_server: RunningServer) -> AsyncIterator[TcpProxy]:
    async with TcpProxy(port_of(chat_server.url)) as relay:
        yield relay


def port_of(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None
    return port


def token_of(client: ChatClient) -> str:
    assert client.token is not None
    return client.token


@asynccontextmanager
async def live(
    ws_url: str, client: ChatClient, *, last_seq: int | None = None
) -> AsyncIterator[RealtimeClient]:
    """A started RealtimeClient for this user, connected and caught up."""
    async with RealtimeClient(ws_url, token_of(client), last_seq=last_seq, backoff=FAST) as rt:
        async with asyncio.timeout(WAIT):
            await rt.wait_ready()
        yield rt


async def pair(server: RunningServer) -> tuple[ChatClient, ChatClient, int]:
    """Two new users and the direct channel between them, its `channel` events delivered
    (so none arrives late on a socket opened next)."""
    alice, bob = await server.user(), await server.user()
    opened = await alice.request("POST", "/api/v1/channels/direct", {"user_id": bob.user_id})
    await server.settle()
    return alice, bob, ChannelAnswer.model_validate(opened).channel.channel_id


async def post(client: ChatClient, channel_id: int, text: str) -> None:
    body = {"client_msg_id": f"http-{text}", "text": text}
    await client.request("POST", f"/api/v1/channels/{channel_id}/messages", body)


async def history(client: ChatClient, channel_id: int) -> list[MessageOut]:
    answer = await client.request(
        "GET", f"/api/v1/channels/{channel_id}/messages", params={"limit": "200"}
    )
    return MessagesAnswer.model_validate(answer).messages


async def inbox(client: ChatClient) -> SyncAnswer:
    answer = await client.request("GET", "/api/v1/sync", params={"since": "0", "limit": "1000"})
    return SyncAnswer.model_validate(answer)


async def until_stored(client: ChatClient, count: int) -> None:
    """Poll the user's inbox over HTTP until it holds `count` entries."""
    async with asyncio.timeout(WAIT):
        while True:
            if len((await inbox(client)).events) >= count:
                return
            await asyncio.sleep(0.01)


async def take_messages(rt: RealtimeClient, count: int) -> list[MessageEvent]:
    messages: list[MessageEvent] = []
    while len(messages) < count:
        event = await rt.next_event(timeout=WAIT)
        assert not isinstance(event, ErrorEvent), event
        if isinstance(event, MessageEvent):
            messages.append(event)
    return messages


async def assert_quiet(rt: RealtimeClient) -> None:
    """Nothing more arrives: no repeats trail behind the expected messages."""
    with pytest.raises(TimeoutError):
        await rt.next_event(timeout=0.2)


def texts(messages: list[MessageEvent]) -> list[str]:
    return [event.message.text for event in messages]


async def test_two_users_chat_both_ways_in_order(chat_server: RunningServer) -> None:
    """Each side receives the other's messages in the order sent, matching the sender's acks;
    a client that starts without last_seq is not sent older messages."""
    alice, bob, channel_id = await pair(chat_server)
    await post(bob, channel_id, "before alice connected")
    async with live(chat_server.ws_url, alice) as a, live(chat_server.ws_url, bob) as b:
        acks = [await a.send(channel_id, f"a{i}") for i in range(5)]
        from_alice = await take_messages(b, 5)
        assert texts(from_alice) == [f"a{i}" for i in range(5)]
        assert [e.message.message_id for e in from_alice] == [k.message.message_id for k in acks]

        # Pipelined sends and answers crossing them on the wire.
        b_sends = asyncio.gather(*(b.send(channel_id, f"b{i}") for i in range(5)))
        a_sends = asyncio.gather(*(a.send(channel_id, f"a{i}") for i in range(5, 10)))
        await asyncio.gather(b_sends, a_sends)
        from_bob = await take_messages(a, 5)
        assert texts(from_bob) == [f"b{i}" for i in range(5)]
        assert texts(await take_messages(b, 5)) == [f"a{i}" for i in range(5, 10)]
        await assert_quiet(a)
        assert a.last_seq == from_bob[-1].seq
        assert b.unacknowledged == 0


async def test_typing_read_and_refused_sends(chat_server: RunningServer) -> None:
    """`typing` reaches the other member, `read` the reader's other device, and a send the
    server refuses raises its error code while the connection carries on."""
    alice, bob, channel_id = await pair(chat_server)
    alice_phone = await chat_server.device((await alice.me()).username)
    async with (
        live(chat_server.ws_url, alice) as a,
        live(chat_server.ws_url, alice_phone) as phone,
        live(chat_server.ws_url, bob) as b,
    ):
        assert await a.typing(channel_id)
        assert await b.next_event(timeout=WAIT) == TypingEvent(
            channel_id=channel_id, user_id=alice.user_id
        )
        sent = await b.send(channel_id, "read me")
        assert texts(await take_messages(a, 1)) == ["read me"]
        assert texts(await take_messages(phone, 1)) == ["read me"]
        assert await a.read(channel_id, sent.message.message_id)
        assert await phone.next_event(timeout=WAIT) == ReadEvent(
            channel_id=channel_id, message_id=sent.message.message_id
        )
        with pytest.raises(RealtimeError) as refused:
            await a.send(channel_id, "")
        assert refused.value.code == "text_empty"
        assert (await a.send(channel_id, "still here")).message.text == "still here"


async def test_a_cut_connection_resumes_with_exactly_the_missed_messages(
    chat_server: RunningServer, proxy: TcpProxy
) -> None:
    """Cut mid-stream and kept out for a while, the client reconnects by itself and ends
    up with every message once, in order: the missed ones come from the replay."""
    alice, bob, channel_id = await pair(chat_server)
    async with (
        live(proxy.through(chat_server.ws_url), alice) as a,
        live(chat_server.ws_url, bob) as b,
    ):

        async def talk() -> None:
            for i in range(60):
                await b.send(channel_id, f"m{i}")
                await asyncio.sleep(0.002)

        talking = asyncio.create_task(talk())
        first = await take_messages(a, 10)
        proxy.cut(refuse_for=0.2)
        rest = await take_messages(a, 50)
        await talking
        assert texts(first + rest) == [f"m{i}" for i in range(60)]
        await assert_quiet(a)
        assert proxy.accepted == 2
        assert a.last_seq == 60


async def test_sends_made_while_disconnected_are_delivered_once_after_reconnecting(
    chat_server: RunningServer, proxy: TcpProxy
) -> None:
    """Sends queued while the server is unreachable wait, then go out in order on the next
    connection; the store holds each exactly once, and the client's own earlier message,
    replayed on reconnecting, is not handed to it again as news."""
    alice, bob, channel_id = await pair(chat_server)
    async with (
        live(proxy.through(chat_server.ws_url), alice) as a,
        live(chat_server.ws_url, bob) as b,
    ):
        online = await a.send(channel_id, "online")
        assert online.seq > (a.last_seq or 0)
        proxy.refuse_new()
        proxy.cut()
        sends = [asyncio.create_task(a.send(channel_id, f"offline {i}")) for i in range(3)]
        await asyncio.sleep(0.1)
        assert not any(send.done() for send in sends)
        assert a.state is State.CONNECTING
        proxy.accept_new()
        async with asyncio.timeout(WAIT):
            acks = await asyncio.gather(*sends)
        expected = ["online"] + [f"offline {i}" for i in range(3)]
        assert texts(await take_messages(b, 4)) == expected
        await assert_quiet(a)
    stored = await history(bob, channel_id)
    assert [m.text for m in stored] == expected
    assert [m.client_msg_id for m in stored[1:]] == [ack.client_msg_id for ack in acks]
    assert len((await inbox(alice)).events) == 4


async def test_a_send_whose_ack_was_lost_is_retried_and_stored_once(
    chat_server: RunningServer, proxy: TcpProxy
) -> None:
    """The server stores a send but its ack never arrives; once the connection breaks and
    comes back, the send resolves to the original message (the client writes it again with
    the same client_msg_id) and the store holds it once."""
    alice, bob, channel_id = await pair(chat_server)
    async with live(proxy.through(chat_server.ws_url), alice) as a:
        proxy.mute_server()
        sending = asyncio.create_task(a.send(channel_id, "exactly once", client_msg_id="cm-1"))
        await until_stored(alice, 1)
        await asyncio.sleep(0.05)
        assert not sending.done()
        proxy.cut()
        async with asyncio.timeout(WAIT):
            ack = await sending
        # Sends on one connection are handled in order, so once this one is
        # acknowledged the server has also answered the repeat before it.
        await a.send(channel_id, "after")
    assert proxy.accepted == 2
    stored = await history(bob, channel_id)
    assert [m.text for m in stored] == ["exactly once", "after"]
    assert stored[0].client_msg_id == "cm-1"
    assert ack.message == stored[0]
    assert ack.seq == (await inbox(alice)).events[0].seq


async def test_a_server_restart_loses_and_repeats_nothing(tmp_path: Path) -> None:
    """Across a restart on the same port and data folder the client comes back by itself:
    what it missed is replayed once, a send stored just before the restart but never
    acknowledged is not stored twice, and a send queued while the server was down goes out."""
    data_dir, port = tmp_path / "chat-data", free_port()
    async with run_server(data_dir, port=port) as server:
        alice, bob, channel_id = await pair(server)
        alice_token, bob_token = token_of(alice), token_of(bob)
        await post(bob, channel_id, "before")
    ws_url = f"ws://127.0.0.1:{port}/ws"
    async with (
        TcpProxy(port) as proxy,
        RealtimeClient(proxy.through(ws_url), alice_token, last_seq=0, backoff=FAST) as a,
    ):
        async with run_server(data_dir, port=port) as server:
            assert texts(await take_messages(a, 1)) == ["before"]
            proxy.mute_server()
            unacknowledged = asyncio.create_task(a.send(channel_id, "in flight"))
            await until_stored(server.client(alice_token), 2)
            # A dying process drops its connections. Dropping them before the stop,
            # and refusing new ones, keeps the client off the server being stopped,
            # which would wait for its open WebSockets to end.
            proxy.refuse_new()
            proxy.cut()
        queued = asyncio.create_task(a.send(channel_id, "while down"))
        async with run_server(data_dir, port=port) as server:
            await post(server.client(bob_token), channel_id, "after")
            proxy.accept_new()
            async with asyncio.timeout(WAIT):
                await asyncio.gather(unacknowledged, queued)
            assert texts(await take_messages(a, 1)) == ["after"]
            await assert_quiet(a)
            stored = await history(server.client(bob_token), channel_id)
            # Closed while the server runs, because a stopping server waits for
            # its open WebSockets to end before it closes them.
            await a.close()
    assert [m.text for m in stored] == ["before", "in flight", "after", "while down"]
    assert a.last_seq == 3


async def test_a_revoked_token_stops_the_client(
    chat_server: RunningServer, proxy: TcpProxy
) -> None:
    """Logging the device out closes its socket with 4401: the client stops with an error,
    fails its sends, and a client given the dead token never retries."""
    alice = await chat_server.user()
    async with live(proxy.through(chat_server.ws_url), alice) as a:
        await alice.logout()
        with pytest.raises(RealtimeError) as stopped:
            await a.next_event(timeout=WAIT)
        assert stopped.value.code == "unauthorized"
        assert a.state is State.CLOSED
        with pytest.raises(RealtimeError):
            await a.send(1, "too late")
        await asyncio.sleep(0.1)
    assert proxy.accepted == 1
    async with RealtimeClient(
        proxy.through(chat_server.ws_url), token_of(alice), backoff=FAST
    ) as again:
        with pytest.raises(RealtimeError) as refused:
            await asyncio.wait_for(again.wait_ready(), WAIT)
        assert refused.value.code == "unauthorized"
        await asyncio.sleep(0.1)
    assert proxy.accepted == 2


async def test_more_than_a_batch_of_missed_messages_is_caught_up_in_pages(
    chat_server: RunningServer,
) -> None:
    """A client 1,234 messages behind gets them all, once each and in order, although the
    server replays at most 1,000 before asking for another `sync`."""
    alice, bob, channel_id = await pair(chat_server)
    async with live(chat_server.ws_url, bob) as b:
        await asyncio.gather(*(b.send(channel_id, f"m{i}") for i in range(1234)))
    async with live(chat_server.ws_url, alice, last_seq=0) as a:
        caught_up = await take_messages(a, 1234)
        assert texts(caught_up) == [f"m{i}" for i in range(1234)]
        assert [event.seq for event in caught_up] == list(range(1, 1235))
        assert a.last_seq == 1234
        await assert_quiet(a)


async def test_a_dropped_client_asks_discovery_where_to_reconnect(
    chat_server: RunningServer, proxy: TcpProxy
) -> None:
    """With `discover`, a client whose node went away reconnects where discovery says
    (in a cluster, another node) and carries on with nothing lost."""
    alice, bob, channel_id = await pair(chat_server)
    asked: list[str] = []

    async def discover() -> str:
        url = await alice.discovery()
        asked.append(url)
        return url

    rt = RealtimeClient(
        proxy.through(chat_server.ws_url), token_of(alice), backoff=FAST, discover=discover
    )
    async with rt:
        async with asyncio.timeout(WAIT):
            await rt.wait_ready()
        proxy.refuse_new()
        proxy.cut()
        await post(bob, channel_id, "while moving")
        async with asyncio.timeout(WAIT):
            event = await rt.next_event()
        assert isinstance(event, MessageEvent)
        assert event.message.text == "while moving"
        assert rt.ws_url in chat_server.ws_urls
        assert asked
        ack = await rt.send(channel_id, "from the new node")
        assert ack.message.text == "from the new node"
