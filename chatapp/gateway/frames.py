"""WebSocket frames: parsing what clients send, writing what the server sends."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from chatapp.errors import BadRequest
from chatapp.messaging import InboxEntry
from chatapp.messaging.updates import update_object
from chatapp.protocol import parse_json
from chatapp.protocol.validation import describe_validation_error

Id = Annotated[int, Field(ge=1, lt=2**53)]
Cursor = Annotated[int, Field(ge=0, lt=2**53)]


def _sendable(text: str) -> str:
    """Lone surrogates parse from JSON but cannot be sent back as UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no lone surrogates)") from None
    return text


Ref = Annotated[str, AfterValidator(_sendable)]


class ClientFrame(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    ref: Ref | None = None


class Hello(ClientFrame):
    type: Literal["hello"]
    token: str
    last_seq: Cursor | None = None


class Sync(ClientFrame):
    type: Literal["sync"]
    since: Cursor


class Send(ClientFrame):
    type: Literal["send"]
    # Sendable, because every answer to a send repeats it.
    client_msg_id: Ref
    channel_id: Id
    text: str
    reply_to: Id | None = None


class Heartbeat(ClientFrame):
    type: Literal["heartbeat"]


class Read(ClientFrame):
    type: Literal["read"]
    channel_id: Id
    message_id: Cursor


class Typing(ClientFrame):
    type: Literal["typing"]
    channel_id: Id


FRAME_TYPES: dict[str, type[ClientFrame]] = {
    "hello": Hello,
    "sync": Sync,
    "send": Send,
    "heartbeat": Heartbeat,
    "read": Read,
    "typing": Typing,
}


class FrameError(BadRequest):
    """A frame that cannot be understood; `ref` and `client_msg_id` when they could be read."""

    def __init__(
        self,
        message: str,
        ref: str | None = None,
        client_msg_id: str | None = None,
        *,
        unreadable: bool = False,
    ) -> None:
        super().__init__(message)
        self.ref = ref
        self.client_msg_id = client_msg_id
        # Not a JSON object at all: a sign of a client that does not speak the protocol.
        self.unreadable = unreadable


# The frame an idle client sends most (every few seconds), spelled as our
# clients spell it: one shared frame for it, not a JSON parse and a model each.
# Any other spelling is parsed as usual.
BARE_HEARTBEAT_TEXT = '{"type":"heartbeat"}'
_BARE_HEARTBEAT = Heartbeat(type="heartbeat")
# What answers it (a heartbeat with a ref gets the ref back, encoded each time).
HEARTBEAT_ACK = '{"type":"heartbeat_ack"}'


def parse_frame(text: str) -> ClientFrame:
    """Decode one text frame; FrameError (with whatever `ref` it had) when it does not fit."""
    if text == BARE_HEARTBEAT_TEXT:
        return _BARE_HEARTBEAT
    try:
        document = parse_json(text)
    except (ValueError, RecursionError):
        raise FrameError("the frame is not valid JSON", unreadable=True) from None
    if not isinstance(document, dict):
        raise FrameError("a frame is a JSON object", unreadable=True)
    ref = _echoable(document.get("ref"))
    echo_id = _echoable(document.get("client_msg_id"))
    kind = document.get("type")
    model = FRAME_TYPES.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise FrameError(f"type: unknown frame type {str(kind)[:40]!r}", ref, echo_id)
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        raise FrameError(describe_validation_error(exc), ref, echo_id) from None
    except RecursionError:
        raise FrameError("the frame nests too deep", ref, echo_id) from None


def _echoable(value: object) -> str | None:
    """A value that can be repeated in an error frame, or None."""
    if not isinstance(value, str):
        return None
    try:
        return _sendable(value)
    except ValueError:
        return None


def encode(frame: dict[str, Any]) -> str:
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":"))


# A JSON string as `encode` writes one (raw UTF-8, not \u escapes).
_json_string = json.JSONEncoder(ensure_ascii=False).encode


def ack_frame(client_msg_id: str, message_json: str, seq: int, ref: str | None) -> str:
    """The `ack` of a send around its already-encoded message: the bytes `encode` would
    write for `{type, client_msg_id, message, seq, ref}`, without a dict of the message."""
    ref_part = "" if ref is None else f',"ref":{_json_string(ref)}'
    return (
        f'{{"type":"ack","client_msg_id":{_json_string(client_msg_id)},'
        f'"message":{message_json},"seq":{seq}{ref_part}}}'
    )


def message_frame(seq: int, message_json: str) -> str:
    """A `message` frame around an already-encoded message, so fan-out encodes it once."""
    return f'{{"type":"message","seq":{seq},"message":{message_json}}}'


def update_frame(seq: int, update_json: str) -> str:
    """An `update` frame around an already-encoded update object."""
    return f'{{"type":"update","seq":{seq},"update":{update_json}}}'


def entry_frame(entry: InboxEntry) -> str:
    """The frame of one inbox entry: a `message`, or an `update` as of the message's present."""
    if entry.update is None:
        return message_frame(entry.seq, entry.message.model_dump_json())
    return update_frame(entry.seq, encode(update_object(entry.update, entry.message)))


def error_frame(
    code: str, message: str, *, ref: str | None = None, client_msg_id: str | None = None
) -> str:
    frame: dict[str, Any] = {"type": "error", "code": code, "message": message}
    if ref is not None:
        frame["ref"] = ref
    if client_msg_id is not None:
        frame["client_msg_id"] = client_msg_id
    return encode(frame)


def with_ref(frame: dict[str, Any], ref: str | None) -> str:
    if ref is not None:
        frame["ref"] = ref
    return encode(frame)
