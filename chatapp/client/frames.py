"""Frames the server sends, as the client reads them."""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict

from chatapp.protocol.http import ChannelOut, MessageOut, UpdateOut


class ServerFrame(BaseModel):
    model_config = ConfigDict(frozen=True)


class MessageEvent(ServerFrame):
    type: Literal["message"] = "message"
    seq: int
    message: MessageOut


class UpdateEvent(ServerFrame):
    """A message was edited, deleted or reacted to: `update.kind` says which."""

    type: Literal["update"] = "update"
    seq: int
    update: UpdateOut


class PresenceEvent(ServerFrame):
    type: Literal["presence"] = "presence"
    user_id: int
    status: str
    last_active_at: int


class ReadEvent(ServerFrame):
    type: Literal["read"] = "read"
    channel_id: int
    message_id: int


class ReceiptEvent(ServerFrame):
    """Another member (who shares read receipts, as this user does) has read up to `message_id`."""

    type: Literal["receipt"] = "receipt"
    channel_id: int
    user_id: int
    message_id: int


class TypingEvent(ServerFrame):
    type: Literal["typing"] = "typing"
    channel_id: int
    user_id: int


class ChannelEvent(ServerFrame):
    type: Literal["channel"] = "channel"
    event: Literal["added", "removed", "updated"]
    channel: ChannelOut


class ErrorEvent(ServerFrame):
    """An `error` frame that answers no send of this client (a refused `read`, say)."""

    type: Literal["error"] = "error"
    code: str
    message: str
    ref: str | None = None
    client_msg_id: str | None = None


class Ack(ServerFrame):
    """A send the server has stored: the message as stored and the sender's inbox seq."""

    type: Literal["ack"] = "ack"
    client_msg_id: str
    message: MessageOut
    seq: int


class Ready(ServerFrame):
    type: Literal["ready"]
    user_id: int
    device_id: int
    heartbeat_interval_ms: int
    max_seq: int


class Synced(ServerFrame):
    type: Literal["synced"]
    seq: int
    has_more: bool


Event = (
    MessageEvent
    | UpdateEvent
    | PresenceEvent
    | ReadEvent
    | ReceiptEvent
    | TypingEvent
    | ChannelEvent
    | ErrorEvent
)

_FRAME_TYPES: dict[str, type[ServerFrame]] = {
    "ready": Ready,
    "synced": Synced,
    "ack": Ack,
    "message": MessageEvent,
    "update": UpdateEvent,
    "presence": PresenceEvent,
    "read": ReadEvent,
    "receipt": ReceiptEvent,
    "typing": TypingEvent,
    "channel": ChannelEvent,
    "error": ErrorEvent,
}


def parse_server_frame(text: str) -> ServerFrame | None:
    """The frame as a model; None for types this client does not know (servers may add some).

    ValueError when the text is not JSON or a known frame lacks a field.
    """
    document = json.loads(text)
    kind = document.get("type") if isinstance(document, dict) else None
    model = _FRAME_TYPES.get(kind) if isinstance(kind, str) else None
    return None if model is None else model.model_validate(document)
