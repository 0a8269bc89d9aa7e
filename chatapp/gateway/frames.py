"""WebSocket frames: parsing what clients send, writing what the server sends."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chatapp.api.call import describe_validation_error
from chatapp.errors import BadRequest

Id = Annotated[int, Field(ge=1, lt=2**53)]
Cursor = Annotated[int, Field(ge=0, lt=2**53)]
Ref = Annotated[str, Field(max_length=256)]


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
    client_msg_id: str
    channel_id: Id
    text: str


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


def parse_frame(text: str) -> ClientFrame:
    """Decode one text frame; FrameError (with whatever `ref` it had) when it does not fit."""
    try:
        document = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        raise FrameError("the frame is not valid JSON", unreadable=True) from None
    if not isinstance(document, dict):
        raise FrameError("a frame is a JSON object", unreadable=True)
    ref = document.get("ref") if isinstance(document.get("ref"), str) else None
    client_msg_id = document.get("client_msg_id")
    echo_id = client_msg_id if isinstance(client_msg_id, str) else None
    kind = document.get("type")
    model = FRAME_TYPES.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise FrameError(f"type: unknown frame type {str(kind)[:40]!r}", ref, echo_id)
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        raise FrameError(describe_validation_error(exc), ref, echo_id) from None


def encode(frame: dict[str, Any]) -> str:
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":"))


def message_frame(seq: int, message_json: str) -> str:
    """A `message` frame around an already-encoded message, so fan-out encodes it once."""
    return f'{{"type":"message","seq":{seq},"message":{message_json}}}'


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
