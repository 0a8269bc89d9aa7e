"""Frames the client writes to the gateway, encoded as they go on the wire."""

from __future__ import annotations

import json
from typing import Any

HEARTBEAT = '{"type":"heartbeat"}'


def hello_frame(token: str, last_seq: int | None) -> str:
    """The first frame of a connection; `last_seq` asks for a replay of what came after it."""
    hello: dict[str, Any] = {"type": "hello", "token": token}
    if last_seq is not None:
        hello["last_seq"] = last_seq
    return encode(hello)


def send_frame(client_msg_id: str, channel_id: int, text: str, reply_to: int | None = None) -> str:
    frame: dict[str, object] = {
        "type": "send",
        "client_msg_id": client_msg_id,
        "channel_id": channel_id,
        "text": text,
    }
    if reply_to is not None:
        frame["reply_to"] = reply_to
    return encode(frame)


def sync_frame(since: int) -> str:
    return encode({"type": "sync", "since": since})


def read_frame(channel_id: int, message_id: int) -> str:
    return encode({"type": "read", "channel_id": channel_id, "message_id": message_id})


def typing_frame(channel_id: int) -> str:
    return encode({"type": "typing", "channel_id": channel_id})


def encode(frame: dict[str, Any]) -> str:
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":"))
