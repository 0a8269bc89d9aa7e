"""The `update` object of the protocol, made from the message an update entry points at."""

from __future__ import annotations

from typing import Any

from chatapp.messaging.models import StoredMessage, UpdateKind


def update_object(kind: UpdateKind, message: StoredMessage) -> dict[str, Any]:
    """`{kind, channel_id, message_id, ...}` as of the message's present state.

    An entry carries no state of its own, so a device that replays an old
    update gets the present (an edit read after a deletion shows the empty
    text), and applying it again changes nothing.
    """
    update: dict[str, Any] = {
        "kind": kind,
        "channel_id": message.channel_id,
        "message_id": message.message_id,
    }
    if kind == "edited":
        update.update(text=message.text, edited_at=message.edited_at, mentions=message.mentions)
    elif kind == "deleted":
        update["deleted_by"] = message.deleted_by
    else:
        update["reactions"] = [reaction.model_dump() for reaction in message.reactions]
    return update
