"""The gateway's own WebSocket end, once aiohttp has handed it the upgraded socket.

Raw clients (`chatapp.testing.wire_socket`) against a server in its own
process: what arrives with the upgrade request, the two closing handshakes,
and the HTTP answer to a request that is not an upgrade.
"""

from __future__ import annotations

import json
import struct
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from chatapp.testing.bystanders import Cast, assert_bystanders_unaffected, start_cast
from chatapp.testing.wire_socket import (
    OPCODE_CLOSE,
    OPCODE_PING,
    OPCODE_PONG,
    OPCODE_TEXT,
    WireClosed,
    WireSocket,
    encode_frame,
)


@pytest.fixture(scope="module")
def cast(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cast]:
    yield from start_cast(tmp_path_factory.mktemp("wire") / "data")


def hello(token: str, ref: str) -> bytes:
    return encode_frame(
        OPCODE_TEXT, json.dumps({"type": "hello", "token": token, "ref": ref}).encode()
    )


def test_frames_sent_with_the_upgrade_request_are_read(cast: Cast) -> None:
    """A client that sends its hello (and a ping) in the same write as the upgrade request,
    before the 101 came back, is answered as if it had waited."""
    early = encode_frame(OPCODE_PING, b"early") + hello(cast.mallory.token, "h1")
    with WireSocket.connect(cast.ws_url, early=early) as wire:
        pong = wire.receive(5)
        assert (pong.opcode, pong.payload) == (OPCODE_PONG, b"early")
        ready = wire.expect("ready", 5)
        assert ready["user_id"] == cast.mallory.user_id
        assert ready["ref"] == "h1"
        wire.until("synced", 5)
        wire.send_json({"type": "heartbeat", "ref": "after"})
        assert wire.expect("heartbeat_ack", 5)["ref"] == "after"
    assert_bystanders_unaffected(cast)


def test_a_client_close_is_answered_then_the_server_ends_tcp(cast: Cast) -> None:
    with WireSocket.open(cast.ws_url, cast.mallory.token) as wire:
        wire.send_frame(OPCODE_CLOSE, struct.pack("!H", 4000) + b"bye")
        answer = wire.receive(5)
        assert answer.opcode == OPCODE_CLOSE
        assert answer.close_code == 1000
        with pytest.raises(WireClosed) as ended:
            wire.receive(5)
        assert ended.value.code is None  # TCP ended, no second close frame


def test_a_server_close_ends_tcp_once_the_client_answers(cast: Cast) -> None:
    with WireSocket.open(cast.ws_url, cast.mallory.token) as wire:
        for index in range(20):
            wire.send_text(f"not json {index}")
        assert wire.closed_with(5) == 1003
        wire.send_frame(OPCODE_CLOSE, struct.pack("!H", 1000))
        with pytest.raises(WireClosed) as ended:
            wire.receive(5)
        assert ended.value.code is None
    assert_bystanders_unaffected(cast)


def test_a_request_that_is_no_upgrade_gets_a_400_in_the_envelope(cast: Cast) -> None:
    url = cast.ws_url.replace("ws://", "http://")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url, timeout=5)
    assert refused.value.code == 400
    with refused.value:
        assert json.loads(refused.value.read())["error"]["code"] == "bad_request"
    request = urllib.request.Request(
        url,
        headers={"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
                 "Sec-WebSocket-Key": "too short"},
    )  # fmt: skip
    with pytest.raises(urllib.error.HTTPError) as bad_key:
        urllib.request.urlopen(request, timeout=5)
    bad_key.value.close()
    assert bad_key.value.code == 400
    assert_bystanders_unaffected(cast)


def test_many_sockets_open_and_close_and_the_server_stays_whole(cast: Cast) -> None:
    """Sockets closed every way (politely, by TCP alone, mid-frame) leave nothing behind:
    the user's connection limit still lets the next ones in."""
    for round_ in range(10):  # 40 sockets of one user: over the limit of 32 if any lingered
        polite = WireSocket.open(cast.ws_url, cast.mallory.token)
        polite.close()
        dropped = WireSocket.open(cast.ws_url, cast.mallory.token)
        dropped.abort()
        half = WireSocket.open(cast.ws_url, cast.mallory.token)
        half.send_raw(encode_frame(OPCODE_TEXT, b'{"type":"heartbeat"}')[:5])
        half.abort()
        with WireSocket.open(cast.ws_url, cast.mallory.token) as wire:
            wire.send_json({"type": "heartbeat", "ref": f"r{round_}"})
            assert wire.expect("heartbeat_ack", 5)["ref"] == f"r{round_}"
    assert_bystanders_unaffected(cast)
