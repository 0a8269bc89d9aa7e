"""What one push notification says: the payload every provider delivers."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

# Push services cap a payload near 4 KiB (Web Push: 4,096 bytes after
# encryption). A preview this long stays below it even when every character
# takes four bytes of UTF-8.
PREVIEW_CHARS = 300


class Notification(BaseModel):
    """New messages in one channel for one device, collapsed over a short window.

    The message fields describe the newest of the `count` messages. `text` is
    absent when the server is configured to keep message text out of push
    (`push_include_text = false`), and then so is `text_truncated`, which
    says whether the text was cut to PREVIEW_CHARS.
    """

    model_config = ConfigDict(frozen=True)

    type: Literal["message"] = "message"
    id: str
    """Unique per notification: a receiver uses it to ignore a retried delivery it has."""
    user_id: int
    device_id: int
    channel_id: int
    sender_id: int
    sender_name: str
    message_id: int
    seq: int
    """The recipient's inbox seq of the newest message."""
    count: int
    """How many new messages this notification stands for."""
    created_at: int
    mentioned: bool = False
    """Added to version 1: whether any of the `count` messages mentions the recipient."""
    text: str | None = None
    text_truncated: bool | None = None

    def payload(self) -> bytes:
        """The JSON the providers send, without absent fields."""
        return self.model_dump_json(exclude_none=True).encode()


def preview(text: str) -> tuple[str, bool]:
    """The text as a notification shows it, and whether it was cut."""
    if len(text) <= PREVIEW_CHARS:
        return text, False
    return text[: PREVIEW_CHARS - 1] + "…", True
