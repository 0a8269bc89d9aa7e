"""The fast frame decoder against the checks that word its refusals: the same answers.

`frames.parse_frame` takes what msgspec accepts and asks `frame_errors`
about the rest. Whatever msgspec accepts, the pydantic models must accept
with the same fields, or a frame the server used to refuse would be taken.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatapp.gateway import frames
from chatapp.gateway.frame_errors import FrameError, check_frame
from chatapp.testing.hostile_strategies import FIELD_NAMES, FRAME_TYPES

_values = (
    st.none()
    | st.booleans()
    | st.sampled_from([-1, 0, 1, 2, 7, 2**53 - 1, 2**53, 2**64, -(2**63)])
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([1.0, 0.0, -0.0, 1e3])
    | st.text(max_size=8)
    | st.lists(st.integers(), max_size=2)
    | st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)
)
_names = st.sampled_from((*FIELD_NAMES, "reply_to", "extra")) | st.text(max_size=5)


@st.composite
def frame_texts(draw: st.DrawFn) -> str:
    """A JSON object of frame fields, sometimes with a key repeated, in any order."""
    pairs: list[tuple[str, Any]] = [("type", draw(st.sampled_from((*FRAME_TYPES, "nope"))))]
    pairs += draw(st.lists(st.tuples(_names, _values), max_size=7))
    if draw(st.booleans()):
        pairs += [("type", draw(st.sampled_from(FRAME_TYPES)))]
    order = draw(st.permutations(range(len(pairs))))
    body = ",".join(f"{json.dumps(pairs[i][0])}:{json.dumps(pairs[i][1])}" for i in order)
    return "{" + body + "}"


def _fast(text: str) -> frames.ClientFrame | str:
    try:
        return frames.parse_frame(text)
    except FrameError as error:
        return f"refused: {error}"


def _slow(text: str) -> frames.ClientFrame | str:
    try:
        kind, fields = check_frame(text)
    except FrameError as error:
        return f"refused: {error}"
    return frames.FRAME_TYPES[kind](**fields)


@settings(max_examples=3000, deadline=None)
@given(frame_texts())
def test_the_fast_decoder_answers_as_the_models_do(text: str) -> None:
    assert _fast(text) == _slow(text)


@pytest.mark.parametrize(
    "text",
    [
        '{"type":"send","client_msg_id":"c","channel_id":1,"text":"a","channel_id":2}',
        '{"channel_id":3,"text":"b","client_msg_id":"c","type":"send","ref":"r"}',
        '{"type":"send","client_msg_id":"c","channel_id":1,"text":"a","type":"typing"}',
        '{"type":"heartbeat","type":"bogus","ref":"r"}',
        '{"type":"heartbeat","x":NaN,"ref":"r"}',
        '{"type":"heartbeat","ref":"\\ud800"}',
        '{"type":"send","client_msg_id":"\\ud800","channel_id":1,"text":"x","ref":"r"}',
        '{"type":"send","client_msg_id":"c","channel_id":1,"text":"\\udfff"}',
        '{"type":"sync","since":' + "9" * 5_000 + "}",
        '{"type":"heartbeat","x":' + "1" * 5_000 + "}",
        '{"type":"heartbeat","x":' + "[" * 2_000 + "]" * 2_000 + "}",
        '{"type":"read","channel_id":true,"message_id":0}',
        '{"type":"read","channel_id":1.0,"message_id":0}',
        '\ufeff{"type":"heartbeat"}',
        '{"type":"heartbeat"} {"type":"heartbeat"}',
        "[]",
        "",
    ],
)
def test_frames_json_allows_in_odd_ways_get_the_answer_they_always_had(text: str) -> None:
    """Repeated keys (the last wins), NaN and huge numbers where nobody reads them, lone
    surrogates, deep nesting, booleans and floats as ids, a byte order mark."""
    assert _fast(text) == _slow(text)
