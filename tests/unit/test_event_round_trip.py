"""Every event on the bus survives JSON, so a bus between processes can carry it."""

from __future__ import annotations

import importlib
import json
import pkgutil

import pytest
from pydantic import BaseModel

import chatapp
from chatapp.accounts import DeviceRevoked
from chatapp.bus import EventCodec, UnknownEvent
from chatapp.events import EVENT_TYPES, event_codec
from chatapp.gateway.events import TypingStarted
from chatapp.messaging import MessageAccepted, MessageUpdated, Reaction, StoredMessage
from chatapp.presence import ConnectionClosed, ConnectionOpened, HeartbeatReceived, PresenceChanged
from chatapp.social import ChannelChanged, FriendshipChanged, ReadMarkerMoved, ReceiptShared

MESSAGE = StoredMessage(
    channel_id=7,
    message_id=3,
    sender_id=1,
    text="héllo 👋 " + "x" * 1000,
    created_at=1_700_000_000_000,
    client_msg_id="c-1",
)
ONE_OF_EACH: list[BaseModel] = [
    ChannelChanged(channel_id=7, event="added", user_ids=(1, 2)),
    ConnectionOpened(user_id=1, device_id=2, connection_id="a1b2c3d4-1"),
    ConnectionClosed(user_id=1, device_id=2, connection_id="a1b2c3d4-1"),
    DeviceRevoked(user_id=1, device_id=2),
    FriendshipChanged(user_ids=(1, 2), status="accepted", requested_by=1),
    HeartbeatReceived(user_id=1, device_id=2, connection_id="a1b2c3d4-1"),
    MessageAccepted(message=MESSAGE, inbox_seqs={1: 10, 2: 4}, origin_connection="a1b2c3d4-1"),
    MessageUpdated(
        update="reactions",
        message=MESSAGE.model_copy(
            update={"reactions": [Reaction(emoji="👍", user_ids=[2, 1])], "mentions": [2]}
        ),
        inbox_seqs={1: 11, 2: 5},
    ),
    PresenceChanged(user_id=1, status="online", last_active_at=1_700_000_000_000),
    ReadMarkerMoved(user_id=2, channel_id=7, message_id=3, origin_connection=None),
    ReceiptShared(channel_id=7, user_id=2, message_id=3, viewer_ids=(1, 5)),
    TypingStarted(channel_id=7, user_id=1, member_ids=(1, 2)),
]


def declared_event_types() -> set[type[BaseModel]]:
    """Every pydantic model defined in a `chatapp.<module>.events` module."""
    found: set[type[BaseModel]] = set()
    for module_info in pkgutil.walk_packages(chatapp.__path__, "chatapp."):
        if not module_info.name.endswith(".events") or module_info.name == "chatapp.events":
            continue
        module = importlib.import_module(module_info.name)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, BaseModel)
                and value.__module__ == module.__name__
            ):
                found.add(value)
    return found


def test_the_catalogue_lists_every_declared_event() -> None:
    """A new event type cannot be forgotten by the bus between processes."""
    assert set(EVENT_TYPES) == declared_event_types()
    assert {type(event) for event in ONE_OF_EACH} == set(EVENT_TYPES)


@pytest.mark.parametrize("event", ONE_OF_EACH, ids=lambda event: type(event).__name__)
def test_every_event_round_trips_through_json(event: BaseModel) -> None:
    """Encoded and decoded, an event equals the one published, field for field."""
    codec = event_codec()
    assert codec.decode(codec.encode(event)) == event


@pytest.mark.parametrize("event", ONE_OF_EACH, ids=lambda event: type(event).__name__)
def test_an_encoded_event_reads_as_the_json_an_older_node_wrote(event: BaseModel) -> None:
    """Nodes of the release before encoded with `json.dumps` of the event's JSON-mode dump;
    the bytes differ (non-ASCII is not escaped now) but read the same, both ways."""
    codec = event_codec()
    older = json.dumps(
        {"type": type(event).__name__, "event": event.model_dump(mode="json")},
        separators=(",", ":"),
    ).encode()
    assert json.loads(codec.encode(event)) == json.loads(older)
    assert codec.decode(older) == event


@pytest.mark.parametrize(
    "line",
    [
        b"not json",
        b"[]",
        b'{"type": "Shutdown", "event": {}}',
        b'{"type": "DeviceRevoked", "event": {"user_id": "one"}}',
        b'{"type": "DeviceRevoked"}',
        b"[" * 100_000,
        b"\xff",
    ],
)
def test_lines_that_are_not_known_events_are_refused(line: bytes) -> None:
    """A peer can make the bus carry only the server's own event types, each validated."""
    with pytest.raises(UnknownEvent):
        event_codec().decode(line)


def test_a_codec_encodes_only_the_types_it_knows() -> None:
    """An event outside the catalogue is refused on the way out, not sent half-known."""
    with pytest.raises(UnknownEvent):
        EventCodec([DeviceRevoked]).encode(TypingStarted(channel_id=1, user_id=1, member_ids=()))


def test_a_deletion_says_who_deleted_across_the_bus() -> None:
    """The message object leaves out who deleted it; the event carries it beside."""
    gone = MESSAGE.model_copy(update={"text": "", "deleted": True, "deleted_by": 3})
    event = MessageUpdated(update="deleted", message=gone, inbox_seqs={1: 12}, deleted_by=3)
    codec = event_codec()
    decoded = codec.decode(codec.encode(event))
    assert isinstance(decoded, MessageUpdated)
    assert decoded.message.deleted_by is None
    assert decoded.present().deleted_by == 3
