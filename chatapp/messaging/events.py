"""What the messaging module tells the rest of the server."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from chatapp.messaging.models import StoredMessage


class MessageAccepted(BaseModel):
    """A message is on disk and in every member's inbox.

    `inbox_seqs` maps each member to the seq of this message in their inbox.
    `origin_connection` is the WebSocket connection that sent it (it gets an
    ack instead of the message); None for a send over HTTP.
    """

    model_config = ConfigDict(frozen=True)

    message: StoredMessage
    inbox_seqs: dict[int, int]
    origin_connection: str | None = None
