"""Hostile WebSocket input: garbage, broken frames, protocol violations, floods, memory.

The server runs as a subprocess, so a crash cannot hide and its memory can be
read from /proc. Mallory is a signed-in user whose client sends whatever it
likes, down to hand-made frames no WebSocket library would write (invalid
UTF-8, reserved opcodes, lying lengths). After each test alice and bob check
that the server still serves them normally and that it logged no error.
"""

from __future__ import annotations

import contextlib
import json
import random
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from chatapp.testing.bystanders import (
    Cast,
    Stopwatch,
    assert_bystanders_unaffected,
    frames_until_closed,
    heartbeat_round_trip,
    resident_kib,
    start_cast,
)
from chatapp.testing.hostile_frames import Expect, Hostile, exchange
from chatapp.testing.hostile_strategies import MAX_FRAME_BYTES, answered_frames, closing_frames
from chatapp.testing.wire_socket import (
    OPCODE_BINARY,
    OPCODE_CLOSE,
    OPCODE_CONTINUATION,
    OPCODE_PING,
    OPCODE_TEXT,
    WireClosed,
    WireSocket,
    encode_frame,
)

CLOSE_PROTOCOL_ERROR = 1002
CLOSE_UNSUPPORTED_DATA = 1003
CLOSE_INVALID_TEXT = 1007
CLOSE_TOO_BIG = 1009
CLOSE_SLOW_CONSUMER = 1013


@pytest.fixture
def cast(tmp_path: Path) -> Iterator[Cast]:
    yield from start_cast(tmp_path / "data")


# -- frames made by Hypothesis ------------------------------------------------------------


def test_generated_frames_get_errors_or_protocol_closes(cast: Cast) -> None:
    """Generated frames (garbage, wrong types, huge numbers, deep nesting, binary, invalid
    UTF-8, over 2 MiB) each get the answer the protocol owes; bystanders are unaffected."""

    @settings(
        max_examples=150,
        deadline=None,
        # A failure is reported with the frame that failed and the answer it got; shrinking
        # would wait out the silence of a broken connection again and again.
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                               HealthCheck.large_base_example],
    )  # fmt: skip
    @given(
        frames=st.lists(answered_frames(cast.targets), min_size=1, max_size=6),
        last=st.none() | closing_frames(),
    )
    def each_frame_is_answered(frames: list[Hostile], last: Hostile | None) -> None:
        with WireSocket.open(cast.ws_url, cast.mallory.token) as wire:
            for index, hostile in enumerate([*frames, *([last] if last else [])]):
                exchange(wire, hostile, probe_ref=f"probe-{index}")

    each_frame_is_answered()
    assert_bystanders_unaffected(cast)


# -- known hostile frames, one by one ------------------------------------------------------

BAD = Expect(error_codes=frozenset({"bad_request"}), ref="r", echo_optional=True)
"""bad_request, repeating ref "r" if the server could read it."""
ECHO_OR_REFUSE = Expect(
    replies=frozenset({"heartbeat_ack"}),
    error_codes=frozenset({"bad_request"}),
    ref="\ud800",
    echo_optional=True,
)

KNOWN_HOSTILE: dict[str, tuple[str, Expect]] = {
    "integer of 5,000 digits": ('{"type":"sync","since":' + "9" * 5_000 + ',"ref":"r"}', BAD),
    "integer of 5,000 digits in an ignored field": (
        '{"type":"heartbeat","x":' + "1" * 5_000 + ',"ref":"r"}',
        Expect(
            replies=frozenset({"heartbeat_ack"}),
            error_codes=frozenset({"bad_request"}),
            ref="r",
            echo_optional=True,
        ),
    ),
    "negative integer of 5,000 digits": (
        '{"type":"read","channel_id":-' + "9" * 5_000 + ',"message_id":1,"ref":"r"}',
        BAD,
    ),
    "integer of 5,000 digits as the frame": ("7" * 5_000, BAD),
    "exponent past any float": ('{"type":"sync","since":1e999999,"ref":"r"}', BAD),
    "NaN as an id": ('{"type":"typing","channel_id":NaN,"ref":"r"}', BAD),
    "arrays 100,000 deep": ("[" * 100_000 + "]" * 100_000, BAD),
    "type nested 900 deep": ('{"type":' + "[" * 900 + "]" * 900 + ',"ref":"r"}', BAD),
    "type an object nested 900 deep": ('{"type":' + '{"a":' * 900 + "1" + "}" * 900 + "}", BAD),
    "ref nested 100,000 deep": (
        '{"type":"heartbeat","ref":' + "[" * 100_000 + "]" * 100_000 + "}",
        BAD,
    ),
    "unknown type of 100,000 characters": (json.dumps({"type": "t" * 100_000, "ref": "r"}), BAD),
    # The contract sets no length for ref: repeating it or refusing it are both fine.
    "ref of 100,000 characters": (
        json.dumps({"type": "heartbeat", "ref": "r" * 100_000}),
        replace(BAD, ref="r" * 100_000, replies=frozenset({"heartbeat_ack"})),
    ),
    "duplicate keys": ('{"type":"heartbeat","type":"bogus","ref":"r"}', BAD),
    "lone surrogate as type": ('{"type":"\\ud800","ref":"r"}', BAD),
    "NUL in type": ('{"type":"heartbeat\\u0000","ref":"r"}', BAD),
    "trailing garbage": ('{"type":"heartbeat","ref":"r"} {"type":"heartbeat"}', BAD),
    "empty text": ("", BAD),
    "byte order mark before the object": ('\ufeff{"type":"heartbeat","ref":"r"}', BAD),
    "lone surrogate as ref": ('{"type":"heartbeat","ref":"\\ud800"}', ECHO_OR_REFUSE),
    "lone surrogate as ref of an unknown type": (
        '{"type":"nope","ref":"\\ud800"}',
        replace(ECHO_OR_REFUSE, replies=frozenset()),
    ),
    "lone surrogate as client_msg_id": (
        '{"type":"send","client_msg_id":"\\ud800","channel_id":"1","text":"x","ref":"r"}',
        replace(BAD, client_msg_id="\ud800"),
    ),
}


def test_known_hostile_frames_get_their_answer(cast: Cast) -> None:
    """Each known troublemaker (giant numbers, deep nesting, huge strings, duplicate keys,
    lone surrogates) gets one answer, mostly `error` bad_request, and the connection stays
    open for the next frame; nothing is logged as an error."""
    failures = []
    for name, (text, expect) in KNOWN_HOSTILE.items():
        hostile = Hostile(name, OPCODE_TEXT, text.encode("utf-8", "surrogatepass"), expect)
        with WireSocket.open(cast.ws_url, cast.mallory.token) as wire:
            try:
                exchange(wire, hostile, probe_ref="after")
            except (AssertionError, OSError) as exc:
                failures.append(f"{name}: {str(exc)[-300:]}")
    assert not failures, f"{len(failures)} of {len(KNOWN_HOSTILE)} failed:\n" + "\n".join(failures)
    assert_bystanders_unaffected(cast)


# -- the WebSocket protocol itself --------------------------------------------------------


HALF_LIMIT = b"x" * (MAX_FRAME_BYTES // 2 + 1)
VIOLATIONS: dict[str, tuple[list[bytes], int]] = {
    "invalid UTF-8": ([encode_frame(OPCODE_TEXT, b'{"type":"heartbeat"}\xff')], 1007),
    "UTF-16 surrogate in UTF-8": ([encode_frame(OPCODE_TEXT, b'"\xed\xa0\x80"')], 1007),
    "overlong UTF-8": ([encode_frame(OPCODE_TEXT, b"\xc0\xaf")], 1007),
    "invalid UTF-8 split across fragments": (
        [
            encode_frame(OPCODE_TEXT, b'{"type":"heartbeat","x":"\xe2\x82', fin=False),
            encode_frame(OPCODE_CONTINUATION, b'"}'),
        ],
        1007,
    ),
    "reserved data opcode": ([encode_frame(0x3, b"{}")], 1002),
    "reserved control opcode": ([encode_frame(0xB, b"")], 1002),
    "reserved bit set": ([encode_frame(OPCODE_TEXT, b"{}", rsv=4)], 1002),
    "continuation with nothing to continue": ([encode_frame(OPCODE_CONTINUATION, b"{}")], 1002),
    "fragmented control frame": ([encode_frame(OPCODE_PING, b"x", fin=False)], 1002),
    "control frame over 125 bytes": ([encode_frame(OPCODE_PING, b"x" * 126)], 1002),
    "new message inside a fragmented one": (
        [encode_frame(OPCODE_TEXT, b'{"type":', fin=False), encode_frame(OPCODE_TEXT, b"{}")],
        1002,
    ),
    "header declaring 2^63 - 1 bytes": (
        [encode_frame(OPCODE_TEXT, b"", declared_length=2**63 - 1)],
        1009,
    ),
    "binary header declaring 3 MiB": (
        [encode_frame(OPCODE_BINARY, b"", declared_length=3 * 1024 * 1024)],
        1009,
    ),
    "fragments adding up past 2 MiB": (
        [
            encode_frame(OPCODE_TEXT, HALF_LIMIT, fin=False),
            encode_frame(OPCODE_CONTINUATION, HALF_LIMIT, fin=False),
            encode_frame(OPCODE_CONTINUATION, HALF_LIMIT),
        ],
        1009,
    ),
}


def test_websocket_violations_close_with_the_rfc_codes(cast: Cast) -> None:
    """Frames RFC 6455 forbids close the connection at once with its code (1007 invalid
    UTF-8, 1002 protocol error, 1009 too big: before a lying length's payload is awaited)."""
    failures = []
    for name, (frames, code) in VIOLATIONS.items():
        with WireSocket.open(cast.ws_url, cast.mallory.token) as wire:
            started = time.monotonic()
            # The server may close before every byte was written.
            with contextlib.suppress(OSError):
                wire.send_raw(b"".join(frames))
            try:
                closed = wire.closed_with(timeout=5)
            except TimeoutError:
                closed = None
            if closed != code or time.monotonic() - started > 2:
                failures.append(f"{name}: closed with {closed}, expected {code}")
    assert not failures, "\n".join(failures)
    assert_bystanders_unaffected(cast)


def test_fragmented_messages_are_reassembled(cast: Cast) -> None:
    """A frame split in fragments, with a ping between them, is one frame to the protocol."""
    with WireSocket.open(cast.ws_url, cast.mallory.token) as wire:
        wire.send_frame(OPCODE_TEXT, b'{"type":"heart', fin=False)
        wire.send_frame(OPCODE_PING, b"mid-message")
        wire.send_frame(OPCODE_CONTINUATION, b'beat","ref":"joined"}')
        pong = wire.receive(5)
        assert (pong.opcode, pong.payload) == (0xA, b"mid-message")
        assert wire.expect("heartbeat_ack") == {"type": "heartbeat_ack", "ref": "joined"}
    assert_bystanders_unaffected(cast)


def test_frame_limit_is_two_mebibytes(cast: Cast) -> None:
    """A frame of exactly 2 MiB is within the limit and answered; one byte more closes
    with 1009 (the contract: connection closed with 1009 for a frame over 2 MiB)."""
    head = b'{"type":"heartbeat","ref":"edge","pad":"'
    outcomes = {}
    for size in (MAX_FRAME_BYTES - 1, MAX_FRAME_BYTES, MAX_FRAME_BYTES + 1):
        payload = head + b"x" * (size - len(head) - 2) + b'"}'
        with WireSocket.open(cast.ws_url, cast.mallory.token) as wire:
            try:
                wire.send_frame(OPCODE_TEXT, payload)
                outcomes[size] = str(wire.receive_json(10).get("type"))
            except WireClosed as closed:
                outcomes[size] = f"closed {closed.code}"
            except ConnectionResetError:
                # The server closes as soon as the frame is too big; when part
                # of it is still unread there, its kernel answers with a reset
                # that can overtake the close frame.
                outcomes[size] = "reset"
    too_big = outcomes.pop(MAX_FRAME_BYTES + 1)
    assert too_big in (f"closed {CLOSE_TOO_BIG}", "reset"), too_big
    assert outcomes == {
        MAX_FRAME_BYTES - 1: "heartbeat_ack",
        MAX_FRAME_BYTES: "heartbeat_ack",
    }
    assert_bystanders_unaffected(cast)


def test_twenty_unreadable_frames_in_a_row_close_with_1003(cast: Cast) -> None:
    """19 unreadable frames then a good one keep the socket; 20 in a row close it with 1003."""
    with WireSocket.open(cast.ws_url, cast.mallory.token) as wire:
        for index in range(19):
            wire.send_text(f"garbage {index}") if index % 2 else wire.send_binary(b"\x00")
        assert heartbeat_round_trip(wire, "reset") < 5
        for index in range(20):
            wire.send_text(f"garbage {index}")
        answers, code = frames_until_closed(wire, limit=21)
    assert code == CLOSE_UNSUPPORTED_DATA, f"closed with {code} after {answers}"
    # Every error goes out before the close: the client learns why it was closed.
    assert [frame.get("code") for frame in answers] == ["bad_request"] * 20
    assert_bystanders_unaffected(cast)


# -- floods ------------------------------------------------------------------------------


def flood_batch(count: int, rng: random.Random) -> bytes:
    """`count` frames in one buffer, each answered with heartbeat_ack or an error."""
    chunks = []
    for index in range(count):
        roll = rng.random()
        if roll < 0.4:
            frame: dict[str, object] = {"type": "heartbeat", "ref": f"f{index}"}
        elif roll < 0.8:
            frame = {"type": rng.choice(["nope", "SEND", ""]), "ref": f"f{index}"}
        else:
            frame = {"type": "sync", "since": "zero", "ref": f"f{index}"}
        chunks.append(encode_frame(OPCODE_TEXT, json.dumps(frame).encode()))
    return b"".join(chunks)


def test_pipelined_frames_of_a_reading_client_are_all_answered(cast: Cast) -> None:
    """5,000 frames written at once by a client that reads all the while are all answered:
    1013 is for a client that does not read, and this one does."""
    total = 5_000
    batch = flood_batch(total, random.Random(7))
    answers: list[str] = []
    closed: list[int | None] = []
    with WireSocket.open(cast.ws_url, cast.mallory.token) as wire:

        def read_all() -> None:
            try:
                while len(answers) < total:
                    answers.append(str(wire.receive_json(20).get("type")))
            except WireClosed as exc:
                closed.append(exc.code)

        reader = threading.Thread(target=read_all, daemon=True)
        reader.start()
        wire.send_raw(batch)
        reader.join(60)
    assert not closed, f"closed with {closed} after {len(answers)} of {total} answers"
    assert len(answers) == total
    assert set(answers) <= {"heartbeat_ack", "error"}
    assert_bystanders_unaffected(cast)


class Flooder:
    """Writes whole batches of frames as fast as the socket takes them until a deadline, then
    a probe heartbeat; blocking writes, so a server that stops reading slows it down."""

    def __init__(self, wire: WireSocket, batch: bytes, frames_per_batch: int) -> None:
        self.wire, self.batch, self.per_batch = wire, batch, frames_per_batch
        self.written = 0
        self.cut_off = False
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self, seconds: float) -> None:
        self._deadline = time.monotonic() + seconds
        self._thread.start()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        self.wire.sock.settimeout(None)
        try:
            while time.monotonic() < self._deadline:
                self.wire.send_raw(self.batch)
                self.written += self.per_batch
            self.wire.send_json({"type": "heartbeat", "ref": "end-of-flood"})
        except OSError:  # the server closed the connection
            self.cut_off = True


def test_flood_keeps_the_server_responsive_to_others(cast: Cast) -> None:
    """For 3 s mallory writes frames as fast as it can without reading: bob's heartbeats
    come back within 2 s throughout. When mallory reads again, every frame has its answer,
    or the server had cut it off with 1013; messages flow afterwards."""
    batch = flood_batch(1_000, random.Random(11))
    answers: list[str] = []
    with (
        WireSocket.open(cast.ws_url, cast.bob.token) as bob,
        WireSocket.open(cast.ws_url, cast.mallory.token) as wire,
    ):
        flooder = Flooder(wire, batch, 1_000)
        with Stopwatch(bob) as watch:
            flooder.start(seconds=3)
            time.sleep(3)
        ending = None
        try:
            while True:
                frame = wire.receive_json(timeout=30)
                if frame.get("ref") == "end-of-flood":
                    break
                answers.append(str(frame.get("type")))
        except WireClosed as closed:
            ending = closed.code
        flooder.join(30)
    assert watch.failure is None, watch.failure
    assert ending in (None, CLOSE_SLOW_CONSUMER), f"closed with {ending}"
    if ending is None:
        assert len(answers) == flooder.written, "some frames of the flood were not answered"
    assert set(answers) <= {"heartbeat_ack", "error"}
    assert flooder.written >= 20_000, f"only {flooder.written} frames in 3 s"
    assert len(watch.round_trips) >= 10
    slowest = max(watch.round_trips)
    print(f"flood: {flooder.written} frames, {len(answers)} answers read, closed with "
          f"{ending}, slowest heartbeat of a bystander {slowest:.3f} s")  # fmt: skip
    assert slowest < 2.0, f"slowest heartbeat {slowest:.2f} s during the flood"
    assert_bystanders_unaffected(cast)


# -- memory --------------------------------------------------------------------------------


def _hostile_round(cast: Cast, frames: int, rng: random.Random) -> None:
    """`frames` hostile frames over several connections, each answer read and counted."""
    sizes = [0, 10, 1_000, 60_000, 600_000]
    sent = 0
    while sent < frames:
        with WireSocket.open(cast.ws_url, cast.mallory.token) as wire:
            for _ in range(10):
                chunk = []
                for index in range(100):
                    pad = "p" * rng.choice(sizes) if index % 25 == 0 else ""
                    chunk.append(rng.choice([
                        json.dumps({"type": "send", "channel_id": cast.foreign_channel,
                                    "client_msg_id": f"m{sent + index}", "text": "x" + pad}),
                        json.dumps({"type": "send", "channel_id": "1", "text": pad}),
                        json.dumps({"type": "bogus" + pad[:50], "ref": pad}),
                        json.dumps({"type": "read", "channel_id": cast.foreign_channel,
                                    "message_id": 1}),
                        json.dumps({"type": "typing", "channel_id": 2**60}),
                        "[" * rng.randint(1, 5_000),
                        "not json " + pad,
                    ]))  # fmt: skip
                for text in chunk:
                    wire.send_text(text)
                for _ in chunk:
                    frame = wire.receive_json(20)
                    assert frame["type"] == "error", frame
                sent += len(chunk)
            wire.send_binary(b"\x00" * 1000)
            assert wire.expect("error")["code"] == "bad_request"
        with WireSocket.open(cast.ws_url, cast.mallory.token) as broken:
            broken.send_frame(OPCODE_TEXT, b'{"type":"heartbeat"}\xff')
            assert broken.closed_with() == CLOSE_INVALID_TEXT
        with WireSocket.open(cast.ws_url, cast.mallory.token) as big:
            with contextlib.suppress(OSError):  # closed before the last byte was written
                big.send_frame(OPCODE_TEXT, b"x" * (MAX_FRAME_BYTES + 1))
            assert big.closed_with() == CLOSE_TOO_BIG


def test_memory_stays_bounded_under_hostile_frames(cast: Cast) -> None:
    """20,000 hostile frames (after 5,000 to warm up), with connections opened, broken and
    closed: the server's resident memory grows by less than 40 MiB."""
    assert cast.server.process is not None
    pid = cast.server.process.pid
    rng = random.Random(2024)
    _hostile_round(cast, 5_000, rng)
    time.sleep(0.5)
    before = resident_kib(pid)
    _hostile_round(cast, 20_000, rng)
    time.sleep(0.5)
    after = resident_kib(pid)
    growth_mib = (after - before) / 1024
    print(f"server RSS: {before / 1024:.1f} MiB -> {after / 1024:.1f} MiB")
    assert growth_mib < 40, f"resident memory grew by {growth_mib:.1f} MiB"
    assert_bystanders_unaffected(cast)


def test_close_frames_with_odd_codes_end_cleanly(cast: Cast) -> None:
    """Close frames with a 1-byte body, a reserved code or a bad reason end only that
    connection; the server does not crash."""
    bodies = [b"\x03", struct.pack("!H", 999), struct.pack("!H", 1005),
              struct.pack("!H", 1000) + b"\xff\xfe", struct.pack("!H", 4999) + b"bye"]  # fmt: skip
    for body in bodies:
        with WireSocket.open(cast.ws_url, cast.mallory.token) as wire:
            wire.send_frame(OPCODE_CLOSE, body)
            with contextlib.suppress(WireClosed):
                wire.closed_with(timeout=5)
    assert_bystanders_unaffected(cast)
