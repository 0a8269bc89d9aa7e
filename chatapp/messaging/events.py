"""What the messaging module tells the rest of the server."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from chatapp.messaging.models import StoredMessage, UpdateKind


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
    message_json: str | None = Field(default=None, exclude=True, repr=False)
    """The message as JSON, encoded once by the process that stored it for its ack and
    its fan-out. It never leaves the process (`exclude`): a node that decodes the
    event from the bus encodes the message itself."""


class MessageUpdated(BaseModel):
    """A message was edited, deleted or reacted to, and every member's inbox has the update.

    `message` is the message as the change left it; `inbox_seqs` maps each
    member to the seq of the update entry in their inbox. A change over HTTP
    has no origin connection: every live connection of the actor gets it too.
    """

    model_config = ConfigDict(frozen=True)

    update: UpdateKind
    message: StoredMessage
    inbox_seqs: dict[int, int]
    deleted_by: int | None = None
    """Who deleted it, for a deletion: the message object does not carry it across the bus."""

    def present(self) -> StoredMessage:
        """The message with who deleted it, as the store has it."""
        if self.deleted_by is None or self.message.deleted_by == self.deleted_by:
            return self.message
        return self.message.model_copy(update={"deleted_by": self.deleted_by})
