"""An ack built around the message's JSON is byte for byte the frame the generic encoder writes."""

from __future__ import annotations

import pytest

from chatapp.gateway import frames
from chatapp.messaging.models import Reaction, StoredMessage

TEXTS = [
    "hello",
    'quotes " and \\ backslashes',
    "controls \n\t\r\b\f \x00 \x1f and DEL \x7f",
    "non-ASCII: Straße, 漢字, emoji 👍🏽, separators \u2028\u2029",
    "x" * 100_000,
]


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("ref", [None, "r-1", 'a "ref" with ünïcode \n'])
def test_ack_frame_matches_the_generic_encoding(text: str, ref: str | None) -> None:
    message = StoredMessage(
        channel_id=7,
        message_id=2**53 - 1,
        sender_id=3,
        text=text,
        created_at=1_700_000_000_000,
        client_msg_id="cm~ !id",
        edited_at=1_700_000_000_001,
        reply_to=1,
        mentions=[4, 5],
        reactions=[Reaction(emoji="👍", user_ids=[4])],
        deleted_by=9,
    )
    generic: dict[str, object] = {
        "type": "ack",
        "client_msg_id": message.client_msg_id,
        "message": message.model_dump(),
        "seq": 12,
    }

    built = frames.ack_frame(message.client_msg_id, message.model_dump_json(), 12, ref)

    assert built == frames.with_ref(generic, ref)
