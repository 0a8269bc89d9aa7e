"""What a hostile WebSocket client sends, and the answer the protocol owes each frame.

Every `Hostile` frame carries the answer protocol version 1 requires: an
`error` (with the codes allowed and the `ref` and `client_msg_id` it must
repeat), a normal reply for a frame that is well formed after all, silence
where the protocol answers nothing, or a close with a given code. `exchange`
sends one frame on a `WireSocket`, follows it with a heartbeat as a probe, and
checks what came back in between. `chatapp.testing.hostile_strategies` makes
such frames with Hypothesis.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, replace
from typing import Any

from chatapp.testing.wire_socket import WireClosed, WireSocket


@dataclass(frozen=True)
class Expect:
    """The answers the protocol allows to one frame."""

    error_codes: frozenset[str] = frozenset()
    """An `error` with one of these codes is a right answer."""
    replies: frozenset[str] = frozenset()
    """Frame types that are a right answer (`synced` may follow `message` frames)."""
    silent: bool = False
    """No answer at all is right (read and typing are not answered)."""
    close_codes: frozenset[int] = frozenset()
    """The connection must be closed with one of these codes instead."""
    ref: str | None = None
    """The `ref` the answer repeats; None: the answer has no `ref`."""
    client_msg_id: str | None = None
    """A send the answer (ack or error) repeats, and which may be answered after later frames."""
    echo_optional: bool = False
    """The answer repeats `ref` and `client_msg_id` or has none: for a frame too deeply
    nested to parse, a value with a lone surrogate (not UTF-8 as it is: the server may
    escape it or refuse it), or a value over its limit."""

    @classmethod
    def bad_request(cls, ref: str | None = None, client_msg_id: str | None = None) -> Expect:
        return cls(error_codes=frozenset({"bad_request"}), ref=ref, client_msg_id=client_msg_id)


class Hostile:
    """One frame and the answer owed to it.

    Not a dataclass: Hypothesis prints a failing example field by field, and a
    payload can be megabytes; this repr keeps its start.
    """

    def __init__(
        self,
        what: str,
        opcode: int,
        payload: bytes,
        expect: Expect,
        fresh_send: dict[str, Any] | None = None,
    ) -> None:
        self.what = what
        self.opcode = opcode
        self.payload = payload
        self.expect = expect
        # A well-formed send, encoded at send time with a client_msg_id never used before
        # (a repeated one is answered with the original message, whatever else it says).
        self.fresh_send = fresh_send

    def prepared(self) -> Hostile:
        if self.fresh_send is None:
            return self
        fresh = uuid.uuid4().hex
        frame = {**self.fresh_send, "client_msg_id": fresh}
        expect = replace(self.expect, client_msg_id=fresh)
        return Hostile(self.what, self.opcode, json.dumps(frame).encode(), expect)

    def __repr__(self) -> str:
        shown = self.payload[:300]
        more = f"... ({len(self.payload)} bytes)" if len(self.payload) > 300 else ""
        expect = repr(self.expect)
        expect = expect if len(expect) < 600 else expect[:600] + "..."
        return f"Hostile({self.what}: opcode {self.opcode}, {shown!r}{more}, {expect})"


def exchange(wire: WireSocket, hostile: Hostile, probe_ref: str, timeout: float = 3.0) -> None:
    """Send one hostile frame and check the answer against what the protocol requires."""
    hostile = hostile.prepared()
    try:
        wire.send_frame(hostile.opcode, hostile.payload)
    except OSError:
        if not hostile.expect.close_codes:
            raise
    if hostile.expect.close_codes:
        code = wire.closed_with(timeout)
        assert code in hostile.expect.close_codes, f"{hostile!r}: closed with {code}"
        return
    wire.send_json({"type": "heartbeat", "ref": probe_ref})
    answers: list[dict[str, Any]] = []
    probed = False
    send_answered = hostile.expect.client_msg_id is None
    while not (probed and send_answered):
        try:
            frame = wire.receive_json(timeout)
        except WireClosed as closed:
            raise AssertionError(f"{hostile!r}: the server closed with {closed.code}") from None
        except TimeoutError:
            raise AssertionError(
                f"{hostile!r}: the connection went silent (answers so far: {answers}, "
                f"heartbeat after it answered: {probed})"
            ) from None
        if frame.get("type") == "heartbeat_ack" and frame.get("ref") == probe_ref:
            probed = True
            continue
        answers.append(frame)
        send_answered = send_answered or _answers_send(frame, hostile.expect)
    judge(hostile, answers)


def _answers_send(frame: dict[str, Any], expect: Expect) -> bool:
    if frame.get("type") not in ("ack", "error"):
        return False
    cmid = frame.get("client_msg_id")
    return cmid == expect.client_msg_id or (expect.echo_optional and cmid is None)


def judge(hostile: Hostile, answers: list[dict[str, Any]]) -> None:
    """AssertionError unless `answers` is one of the answers `hostile.expect` allows."""
    expect = hostile.expect
    if not answers:
        assert expect.silent, f"{hostile!r}: no answer"
        return
    *before, last = answers
    kind = last.get("type")
    if kind == "error":
        assert not before, f"{hostile!r}: more than one answer: {answers}"
        assert last.get("code") in expect.error_codes, f"{hostile!r}: answered {last}"
    elif kind in expect.replies:
        stray = [frame for frame in before if not (kind == "synced" and frame["type"] == "message")]
        assert not stray, f"{hostile!r}: unexpected frames before the answer: {stray}"
    else:
        raise AssertionError(f"{hostile!r}: answered {answers}")
    refs = (expect.ref, None) if expect.echo_optional else (expect.ref,)
    assert last.get("ref") in refs, f"{hostile!r}: ref not repeated: {last}"
    if expect.client_msg_id is not None:
        cmids = (expect.client_msg_id, None) if expect.echo_optional else (expect.client_msg_id,)
        assert last.get("client_msg_id") in cmids, (
            f"{hostile!r}: client_msg_id not repeated: {last}"
        )
