"""The versioned value encoding of the message store."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatapp.messaging import StoredMessage
from chatapp.messaging.adapters.codec import (
    FORMAT_VERSION,
    LIFECYCLE_VERSION,
    CodecError,
    MessageHead,
    UnknownFormatVersionError,
    decode_entry,
    decode_message,
    decode_message_preview,
    decode_pointer,
    decode_reactions,
    decode_receipt,
    encode_message,
    encode_pointer,
    encode_reactions,
    encode_receipt,
)
from chatapp.messaging.models import Reaction, UpdateKind

AWKWARD_TEXT = "\x00 héllo 👩🏽‍🚀 עברית 漢字 \U0010ffff trailing space "


def test_message_round_trips_with_ids_from_the_key() -> None:
    """A message value decodes to the same message, its ids taken from the key."""
    value = encode_message(
        sender_id=7, created_at=1_700_000_000_000, client_msg_id="c-1", text=AWKWARD_TEXT
    )

    decoded = decode_message(value, channel_id=3, message_id=2**53 - 1)

    assert decoded == StoredMessage(
        channel_id=3,
        message_id=2**53 - 1,
        sender_id=7,
        text=AWKWARD_TEXT,
        created_at=1_700_000_000_000,
        client_msg_id="c-1",
    )


def test_pointer_and_receipt_round_trip() -> None:
    """Inbox pointers and idempotency receipts decode to the ids they were made from."""
    assert decode_pointer(encode_pointer(2**64 - 1, 1)) == (2**64 - 1, 1)
    assert decode_receipt(encode_receipt(5, 6, 7)) == (5, 6, 7)


def test_value_starts_with_the_version_byte_then_msgpack() -> None:
    """The stored layout is one version byte followed by a msgpack array."""
    value = encode_pointer(4, 9)

    assert value[0] == FORMAT_VERSION == 1
    assert msgpack.unpackb(value[1:]) == [4, 9]


_IDS = st.integers(min_value=0, max_value=2**64 - 1) | st.sampled_from(
    [0, 127, 128, 255, 256, 65_535, 65_536, 2**32 - 1, 2**32]
)


@given(
    _IDS,
    _IDS,
    st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1),
    st.text(max_size=300) | st.sampled_from(["", "a" * 31, "a" * 32, "a" * 255, "a" * 65_536]),
    st.none() | _IDS,
    st.lists(_IDS, max_size=20),
)
def test_values_are_written_byte_for_byte_as_msgpack_writes_them(
    sender_id: int,
    created_at: int,
    client_msg_id: str,
    text: str,
    reply_to: int | None,
    mentions: list[int],
) -> None:
    """Whichever encoder writes them, the stored bytes are msgpack's own (packb with
    use_bin_type), so a store reads the same in every build."""
    plain = encode_message(
        sender_id=sender_id, created_at=created_at, client_msg_id=client_msg_id, text=text
    )
    lifecycle = encode_message(
        sender_id=sender_id,
        created_at=created_at,
        client_msg_id=client_msg_id,
        text=text,
        reply_to=reply_to,
        mentions=mentions or [sender_id],
    )

    assert plain[1:] == msgpack.packb(
        [sender_id, created_at, client_msg_id, text], use_bin_type=True
    )
    lifecycle_fields = [sender_id, created_at, client_msg_id, reply_to, None, None]
    assert lifecycle[1:] == msgpack.packb(
        [*lifecycle_fields, mentions or [sender_id], text], use_bin_type=True
    )
    assert encode_pointer(created_at, sender_id)[1:] == msgpack.packb([created_at, sender_id])


def test_unknown_version_is_refused_with_a_clear_error() -> None:
    """A value written by a newer format is refused and the error names both versions."""
    newer = bytes((LIFECYCLE_VERSION + 1,)) + encode_pointer(4, 9)[1:]

    with pytest.raises(UnknownFormatVersionError, match=r"version 3 .* reads versions 1, 2"):
        decode_pointer(newer)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\x01\xc1", id="not-msgpack"),
        pytest.param(b"\x01" + msgpack.packb([1, 2, 3]), id="wrong-length"),
        pytest.param(b"\x01" + msgpack.packb(["1", 2]), id="wrong-type"),
        pytest.param(b"\x01" + msgpack.packb([True, 2]), id="bool-for-id"),
        pytest.param(b"\x01" + msgpack.packb({"a": 1}), id="not-an-array"),
        pytest.param(encode_pointer(1, 2) + b"\x00", id="trailing-bytes"),
    ],
)
def test_malformed_value_is_refused(value: bytes) -> None:
    """A damaged value raises CodecError instead of decoding to something wrong."""
    with pytest.raises(CodecError):
        decode_pointer(value)


def test_text_that_is_not_utf8_encodable_is_refused_at_encoding() -> None:
    """A lone surrogate cannot be stored, and the sender learns it before anything is written."""
    with pytest.raises(ValueError, match="surrogate"):
        encode_message(sender_id=1, created_at=0, client_msg_id="c", text="\ud800")


# Text of every UTF-8 length (1 to 4 bytes), and any text but lone surrogates (hypothesis'
# default), which a message cannot hold.
TEXTS = st.text(
    alphabet=st.sampled_from(["a", "\x00", "é", "漢", "😀", "\U0010ffff", "\u200d"]), max_size=300
) | st.text(max_size=300)


@given(text=TEXTS, max_chars=st.integers(min_value=0, max_value=210))
def test_preview_is_the_texts_first_code_points(text: str, max_chars: int) -> None:
    """Decoding only a preview gives the full decode's ids and the text's first max_chars
    code points, with truncated exactly when some were left out, at every cut position."""
    value = encode_message(sender_id=9, created_at=2**41, client_msg_id="c" * 64, text=text)

    preview = decode_message_preview(value, max_chars=max_chars)

    assert preview == MessageHead(9, 2**41, text[:max_chars], len(text) > max_chars)


def test_preview_of_the_longest_text_cuts_on_a_code_point() -> None:
    """100,000 four-byte emoji (msgpack's 32-bit string header) give 200 whole emoji."""
    text = "😀" * 100_000
    value = encode_message(sender_id=1, created_at=0, client_msg_id="c", text=text)

    assert decode_message_preview(value, max_chars=200) == MessageHead(1, 0, "😀" * 200, True)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\x01\xc1", id="not-msgpack"),
        pytest.param(b"\x01" + msgpack.packb([1, 2, "c"]), id="three-fields"),
        pytest.param(b"\x01" + msgpack.packb([1, 2, "c", 4]), id="text-not-a-string"),
        pytest.param(b"\x01" + msgpack.packb([True, 2, "c", "t"]), id="bool-for-id"),
        pytest.param(b"\x01" + msgpack.packb([1, 2, "c", "abc"])[:-1], id="text-cut-short"),
        pytest.param(b"\x01" + msgpack.packb([1, 2, "c", "abc"]) + b"!", id="trailing-bytes"),
        # A four-field array whose text is the two bytes FF FE: not UTF-8.
        pytest.param(b"\x01\x94\x01\x02\xa1c\xa2\xff\xfe", id="not-utf8"),
    ],
)
def test_malformed_value_is_refused_by_the_preview_too(value: bytes) -> None:
    """Reading only the start of a damaged message value is still CodecError, never a guess."""
    with pytest.raises(CodecError):
        decode_message_preview(value, max_chars=200)


def test_a_plain_message_is_still_written_in_version_1() -> None:
    """A message without lifecycle fields stays readable by a build that knows version 1."""
    value = encode_message(sender_id=1, created_at=2, client_msg_id="c", text="t")
    assert value[0] == FORMAT_VERSION
    assert msgpack.unpackb(value[1:]) == [1, 2, "c", "t"]


@given(
    text=TEXTS,
    reply_to=st.none() | st.integers(1, 2**53),
    edited_at=st.none() | st.integers(0, 2**53),
    deleted_by=st.none() | st.integers(1, 2**53),
    mentions=st.lists(st.integers(1, 2**53), max_size=5),
)
def test_a_lifecycle_message_round_trips_in_version_2(
    text: str,
    reply_to: int | None,
    edited_at: int | None,
    deleted_by: int | None,
    mentions: list[int],
) -> None:
    value = encode_message(
        sender_id=3,
        created_at=4,
        client_msg_id="c",
        text=text,
        reply_to=reply_to,
        edited_at=edited_at,
        deleted_by=deleted_by,
        mentions=mentions,
    )
    message = decode_message(value, channel_id=5, message_id=6)
    assert (message.reply_to, message.edited_at, message.mentions) == (
        reply_to,
        edited_at,
        mentions,
    )
    assert (message.deleted, message.deleted_by, message.text) == (
        deleted_by is not None,
        deleted_by,
        text,
    )
    head = decode_message_preview(value, max_chars=10)
    assert head == MessageHead(
        3,
        4,
        text[:10],
        len(text) > 10,
        edited=edited_at is not None,
        deleted=deleted_by is not None,
    )


def test_entries_say_whether_they_are_a_message_or_an_update() -> None:
    assert decode_entry(encode_pointer(4, 9)) == (4, 9, None)
    kinds: tuple[UpdateKind, ...] = ("edited", "deleted", "reactions")
    for kind in kinds:
        value = encode_pointer(4, 9, kind)
        assert value[0] == LIFECYCLE_VERSION
        assert decode_entry(value) == (4, 9, kind)
        assert decode_pointer(value) == (4, 9)
    with pytest.raises(CodecError):
        decode_entry(bytes((LIFECYCLE_VERSION,)) + msgpack.packb([4, 9, 77]))


def test_reactions_round_trip_in_their_order() -> None:
    reactions = [Reaction(emoji="👍", user_ids=[3, 1]), Reaction(emoji="🎉", user_ids=[2])]
    assert decode_reactions(encode_reactions(reactions)) == reactions
    for bad in (msgpack.packb([["x"]]), msgpack.packb([["x", "y"]]), msgpack.packb([[1, [2]]])):
        with pytest.raises(CodecError):
            decode_reactions(b"\x01" + bad)
