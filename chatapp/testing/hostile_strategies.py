"""Hypothesis strategies for hostile WebSocket frames, each with the answer it is owed.

Real frame types and field names with missing, mistyped and out-of-range
values; number literals of thousands of digits; nesting 100,000 deep; lone
surrogates; binary frames; invalid UTF-8; frames over 2 MiB. See
`chatapp.testing.hostile_frames` for what is checked. Needs `hypothesis`
(a test dependency).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from hypothesis import strategies as st

from chatapp.testing.hostile_frames import Expect, Hostile
from chatapp.testing.wire_socket import OPCODE_BINARY, OPCODE_TEXT

MAX_FRAME_BYTES = 2 * 1024 * 1024
MAX_ID = 2**53 - 1
MAX_REF = 256
MAX_TEXT = 100_000
CLOSE_INVALID_TEXT = 1007
CLOSE_TOO_BIG = 1009

FRAME_TYPES = ("hello", "sync", "send", "heartbeat", "read", "typing")
REQUIRED: dict[str, tuple[str, ...]] = {
    "hello": ("token",),
    "sync": ("since",),
    "send": ("client_msg_id", "channel_id", "text"),
    "heartbeat": (),
    "read": ("channel_id", "message_id"),
    "typing": ("channel_id",),
}
# The least value of each integer field; every one is below 2^53.
INT_MINIMUM = {"since": 0, "channel_id": 1, "message_id": 0, "last_seq": 0}
FIELD_NAMES = ("type", "ref", "token", "last_seq", "since", "client_msg_id", "channel_id",
               "text", "message_id")  # fmt: skip
# Codes the gateway may refuse a well-formed frame with, besides bad_request.
# Nesting surely within what a JSON parser reads (Python's stops near 1,000).
PARSEABLE_DEPTH = 500

_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
_lone_surrogate = st.characters(categories=["Cs"])
refs = st.text(max_size=MAX_REF) | st.builds(
    lambda before, lone, after: before + lone + after,
    st.text(max_size=100),
    _lone_surrogate,
    st.text(max_size=100),
)
"""Valid refs; half hold a lone surrogate (JSON carries it as an escape, UTF-8 cannot)."""


def has_surrogate(value: object) -> bool:
    return isinstance(value, str) and any(0xD800 <= ord(char) <= 0xDFFF for char in value)


json_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
"""Any JSON value (as Python), of moderate size."""


@dataclass(frozen=True)
class Targets:
    """What the strategies aim at: the hostile user's token and channels."""

    token: str
    own_channel: int
    """A channel the hostile user is a member of."""
    foreign_channel: int
    """A channel of other users."""


# -- frames the protocol answers -------------------------------------------------------


def answered_frames(targets: Targets) -> st.SearchStrategy[Hostile]:
    """Frames after which the connection stays open, each answered as the protocol says."""
    return st.one_of(
        not_json_objects(),
        binary_frames(),
        broken_objects(targets),
        huge_numbers(targets),
        deep_nesting(targets),
        well_formed_edges(targets),
    )


def _is_json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


def not_json_objects() -> st.SearchStrategy[Hostile]:
    """Garbage text, and JSON that is not an object: an error each, without a ref."""
    garbage = st.text(max_size=200).filter(lambda text: not _is_json_object(text))
    non_objects = json_values.filter(lambda value: not isinstance(value, dict)).map(json.dumps)
    return st.one_of(garbage, non_objects).map(
        lambda text: Hostile(
            "not a JSON object",
            OPCODE_TEXT,
            text.encode("utf-8", "surrogatepass"),
            Expect.bad_request(),
        )
    )


def binary_frames() -> st.SearchStrategy[Hostile]:
    return st.binary(max_size=300).map(
        lambda data: Hostile("binary", OPCODE_BINARY, data, Expect.bad_request())
    )


def _valid_frame(draw: st.DrawFn, kind: str, targets: Targets) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": kind}
    if kind == "hello":
        frame["token"] = targets.token
    elif kind == "sync":
        frame["since"] = draw(st.integers(0, MAX_ID))
    elif kind == "send":
        frame["client_msg_id"] = draw(st.text(st.characters(min_codepoint=32, max_codepoint=126),
                                              min_size=1, max_size=64))  # fmt: skip
        frame["channel_id"] = targets.own_channel
        frame["text"] = draw(st.text(min_size=1, max_size=40))
    elif kind in ("read", "typing"):
        frame["channel_id"] = targets.own_channel
        if kind == "read":
            frame["message_id"] = draw(st.integers(0, MAX_ID))
    return frame


def _wrong_value(field_name: str) -> st.SearchStrategy[Any]:
    """A value of the wrong JSON type for the field (the server never converts types)."""
    containers = st.lists(_scalars, max_size=3) | st.dictionaries(st.text(max_size=5), _scalars)
    if field_name in INT_MINIMUM:
        not_int = st.booleans() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
        return not_int | st.none() | containers
    if field_name == "ref":  # null is a valid ref: absent
        return st.integers() | st.booleans() | st.floats(allow_nan=False) | containers
    return st.integers() | st.booleans() | st.floats(allow_nan=False) | st.none() | containers


def _out_of_range(field_name: str) -> st.SearchStrategy[int]:
    return st.integers(max_value=INT_MINIMUM[field_name] - 1) | st.integers(min_value=MAX_ID + 1)


@st.composite
def broken_objects(draw: st.DrawFn, targets: Targets) -> Hostile:
    """A real frame type and real field names, then at least one field missing or wrong."""
    kind = draw(st.sampled_from(FRAME_TYPES))
    frame = _valid_frame(draw, kind, targets)
    own_fields = {"type", "ref", *REQUIRED[kind], *(("last_seq",) if kind == "hello" else ())}
    extra_names = [name for name in FIELD_NAMES if name not in own_fields] + ["extra", "__proto__"]
    frame.update(draw(st.dictionaries(st.sampled_from(extra_names), json_values, max_size=3)))
    if draw(st.booleans()):
        frame["ref"] = draw(refs)
    required = REQUIRED[kind]
    ints = [name for name in required if name in INT_MINIMUM]
    ways = ["type", "ref"] + (["drop", "retype"] if required else []) + (["range"] if ints else [])
    for way in draw(st.lists(st.sampled_from(ways), min_size=1, max_size=3)):
        if way == "type":
            wrong_type = st.text(max_size=30).filter(lambda name: name not in FRAME_TYPES)
            frame["type"] = draw(wrong_type | _wrong_value("type") | st.just(kind.upper()))
        elif way == "ref":
            frame["ref"] = draw(_wrong_value("ref"))
        elif way == "drop":
            frame.pop(draw(st.sampled_from(required)), None)
        elif way == "retype":
            name = draw(st.sampled_from(required))
            frame[name] = draw(_wrong_value(name))
        else:
            name = draw(st.sampled_from(ints))
            frame[name] = draw(_out_of_range(name))
    ref = frame.get("ref") if isinstance(frame.get("ref"), str) else None
    cmid = frame.get("client_msg_id") if frame.get("type") == "send" else None
    expect = Expect.bad_request(ref, cmid if isinstance(cmid, str) else None)
    # A ref over the limit, or one with a lone surrogate, need not be repeated.
    odd = has_surrogate(ref) or has_surrogate(cmid) or len(ref or "") > MAX_REF
    expect = replace(expect, echo_optional=odd)
    return Hostile(f"broken {kind}", OPCODE_TEXT, json.dumps(frame).encode(), expect)


@st.composite
def huge_numbers(draw: st.DrawFn, targets: Targets) -> Hostile:
    """Number literals no id can be: thousands of digits, exponents past any float."""
    kind, name = draw(st.sampled_from([("sync", "since"), ("read", "message_id"),
                                       ("read", "channel_id"), ("send", "channel_id"),
                                       ("typing", "channel_id")]))  # fmt: skip
    frame = _valid_frame(draw, kind, targets)
    frame[name] = "@NUMBER@"
    frame["ref"] = "huge"
    # Past 2^53 at 17 digits, past a float at 309, past CPython's int parsing at 4,301.
    digits = draw(st.sampled_from([17, 309, 4_300, 4_301, 10_000]) | st.integers(17, 12_000))
    form = draw(st.sampled_from(["{n}", "-{n}", "{n}.5", "0.{n}", "1e{e}", "-1E+{e}", "1e-{e}"]))
    literal = form.format(n="9" * digits, e=digits * 100)
    text = json.dumps(frame).replace('"@NUMBER@"', literal)
    cmid = frame.get("client_msg_id")
    expect = Expect.bad_request("huge", cmid if isinstance(cmid, str) else None)
    return Hostile(f"{len(literal)}-character number as {name}", OPCODE_TEXT, text.encode(), expect)


@st.composite
def deep_nesting(draw: st.DrawFn, targets: Targets) -> Hostile:
    """Arrays or objects nested up to 100,000 deep: in a field, or as the whole frame."""
    depth = draw(st.integers(min_value=1, max_value=100_000))
    opening, closing = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
    nested = opening * depth + ("1" if opening != "[" else "") + closing * depth
    kind = draw(st.sampled_from(FRAME_TYPES))
    frame = _valid_frame(draw, kind, targets)
    place = draw(st.sampled_from(["type", "ref", "whole", *REQUIRED[kind]]))
    if place == "whole":
        return Hostile(f"nested {depth} deep", OPCODE_TEXT, nested.encode(), Expect.bad_request())
    frame[place] = "@NESTED@"
    frame["ref"] = frame["ref"] if place == "ref" else "nested"
    text = json.dumps(frame).replace('"@NESTED@"', nested)
    ref = None if place == "ref" else "nested"
    cmid = frame.get("client_msg_id") if place not in ("type", "client_msg_id") else None
    expect = Expect.bad_request(ref, cmid if kind == "send" and isinstance(cmid, str) else None)
    # Past the parser's depth the frame is unreadable, and nothing in it can be repeated.
    expect = replace(expect, echo_optional=depth > PARSEABLE_DEPTH)
    return Hostile(f"{place} nested {depth} deep", OPCODE_TEXT, text.encode(), expect)


@st.composite
def well_formed_edges(draw: st.DrawFn, targets: Targets) -> Hostile:
    """Frames the gateway must parse, with edge values: answered, refused, or not answered."""
    kind = draw(st.sampled_from(FRAME_TYPES))
    ref = draw(refs)
    frame = _valid_frame(draw, kind, targets) | {"ref": ref}
    extra_names = st.sampled_from(["extra", "x", "__proto__", "constructor"])
    frame.update(draw(st.dictionaries(extra_names, json_values)))
    problems: set[str] = set()
    if kind == "hello":
        problems.add("bad_request")
    elif kind in ("read", "typing", "send"):
        where = draw(st.sampled_from(["own", "foreign", "unknown"]))
        if where == "foreign":
            frame["channel_id"] = targets.foreign_channel
            problems.add("not_member")
        elif where == "unknown":
            frame["channel_id"] = draw(st.integers(min_value=10**9, max_value=MAX_ID))
            problems |= {"not_found", "not_member"}
        kind = f"{kind} in {where} channel"
    bad_cmid = _edge_send(draw, frame, problems) if frame["type"] == "send" else None
    replies = {"heartbeat": "heartbeat_ack", "sync": "synced", "send": "ack"}.get(frame["type"])
    # A lone surrogate cannot be sent back as it is: escaping it or refusing the frame is
    # fine. A client_msg_id that breaks the rules need not be repeated either.
    odd = has_surrogate(ref) or bad_cmid is not None
    expect = Expect(
        error_codes=frozenset(problems | ({"bad_request"} if odd else set())),
        replies=frozenset({replies}) if replies and not problems else frozenset(),
        silent=frame["type"] in ("read", "typing") and not problems,
        ref=ref,
        client_msg_id=bad_cmid,
        echo_optional=odd,
    )
    encoded = json.dumps(frame).encode()
    # A valid client_msg_id is replaced by a fresh one when sent; a bad one is sent as it is.
    fresh = frame if frame["type"] == "send" and bad_cmid is None else None
    return Hostile(kind, OPCODE_TEXT, encoded, expect, fresh)


def _edge_send(draw: st.DrawFn, frame: dict[str, Any], problems: set[str]) -> str | None:
    """Give a send an edge text and maybe a bad client_msg_id; the bad one, if any."""
    text = draw(st.sampled_from(["valid", "", "a\ud800b", "x" * (MAX_TEXT + 1), "é" * MAX_TEXT]))
    if text != "valid":
        frame["text"] = text
    problems |= {"": {"text_empty"}, "a\ud800b": {"bad_request"}}.get(text, set())
    problems |= {"text_too_long"} if len(text) > MAX_TEXT else set()
    bad_cmid = draw(
        st.sampled_from([None, "", "x" * 65, "é", "a\nb", "\x7f", "tab\there", "\udc00"])
    )
    if bad_cmid is not None:
        frame["client_msg_id"] = bad_cmid
        problems.add("bad_request")
    return bad_cmid


# -- frames that end the connection -----------------------------------------------------

_NOT_UTF8 = [
    b"\xff",
    b"\xfe",
    b"\xc0\x80",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\xe2\x82",
    b"\x80",
]


@st.composite
def invalid_utf8(draw: st.DrawFn) -> Hostile:
    """A text frame whose bytes are not UTF-8: RFC 6455 requires closing with 1007."""
    text = json.dumps({"type": "heartbeat", "ref": draw(st.text(max_size=30))}).encode()
    at = draw(st.integers(0, len(text)))
    bad = draw(st.sampled_from(_NOT_UTF8))
    expect = Expect(close_codes=frozenset({CLOSE_INVALID_TEXT}))
    return Hostile("invalid UTF-8", OPCODE_TEXT, text[:at] + bad + text[at:], expect)


@st.composite
def oversized(draw: st.DrawFn) -> Hostile:
    """A frame over 2 MiB, text or binary: closed with 1009."""
    size = MAX_FRAME_BYTES + draw(st.integers(1, 64 * 1024))
    opcode = draw(st.sampled_from([OPCODE_TEXT, OPCODE_BINARY]))
    head = b'{"type":"heartbeat","pad":"'
    payload = head + b"x" * (size - len(head) - 2) + b'"}'
    return Hostile("over 2 MiB", opcode, payload, Expect(close_codes=frozenset({CLOSE_TOO_BIG})))


def closing_frames() -> st.SearchStrategy[Hostile]:
    return st.one_of(invalid_utf8(), oversized())
