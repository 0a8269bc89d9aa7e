"""How the PostgreSQL message tables read as models: the columns every read selects.

Every read of a message selects `MESSAGE_COLUMNS` from `messages AS m` joined
with `REACTIONS`, in one statement: the text, the deletion and the reactions
come from one snapshot, so a reader never sees a deleted message's reactions
or an edit's text without its `edited_at`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

import asyncpg

from chatapp.messaging.models import Reaction, StoredMessage, UpdateKind

MESSAGE_COLUMNS: Final = (
    "m.channel_id, m.message_id, m.sender_id, m.body, m.created_at, m.client_msg_id,"
    " m.edited_at, m.deleted_by, m.reply_to, m.mentions"
)
"""A message's own columns (not its reactions), from `messages AS m`."""

REACTION_COLUMNS: Final = "rx.reaction_emoji, rx.reaction_users"

# Two aligned arrays rather than nested ones (PostgreSQL's arrays are
# rectangular): one (emoji, user) pair per reaction, in list order.
REACTIONS: Final = (
    " LEFT JOIN LATERAL (SELECT"
    " array_agg(r.emoji ORDER BY r.emoji_position, r.user_position) AS reaction_emoji,"
    " array_agg(r.user_id ORDER BY r.emoji_position, r.user_position) AS reaction_users"
    " FROM message_reactions AS r"
    " WHERE r.channel_id = m.channel_id AND r.message_id = m.message_id) AS rx ON true"
)
"""Joined after `messages AS m`: the message's reactions as `REACTION_COLUMNS`."""

MESSAGE_FIELDS: Final = f"{MESSAGE_COLUMNS}, {REACTION_COLUMNS}"
"""What a read of whole messages selects: `messages AS m` joined with `REACTIONS`."""

SELECT_MESSAGES: Final = f"SELECT {MESSAGE_FIELDS} FROM messages AS m"

UPDATE_CODES: Final[dict[UpdateKind, int]] = {"edited": 1, "deleted": 2, "reactions": 3}
"""`inbox.update_kind` of each kind of update entry (NULL for a message entry)."""

_KINDS: Final[dict[int, UpdateKind]] = {code: kind for kind, code in UPDATE_CODES.items()}


def message_from_row(row: asyncpg.Record, reactions: list[Reaction] | None = None) -> StoredMessage:
    """The message of a row with `MESSAGE_COLUMNS`, and `REACTION_COLUMNS` unless given."""
    if reactions is None:
        reactions = grouped(row["reaction_emoji"] or (), row["reaction_users"] or ())
    return StoredMessage(
        channel_id=row["channel_id"],
        message_id=row["message_id"],
        sender_id=row["sender_id"],
        text=bytes(row["body"]).decode("utf-8"),
        created_at=row["created_at"],
        client_msg_id=row["client_msg_id"],
        edited_at=row["edited_at"],
        deleted=row["deleted_by"] is not None,
        reply_to=row["reply_to"],
        mentions=list(row["mentions"]),
        reactions=reactions,
        deleted_by=row["deleted_by"],
    )


def grouped(emoji: Iterable[bytes | str], user_ids: Iterable[int]) -> list[Reaction]:
    """(emoji, user) pairs, each emoji's together, as reactions in the order first seen."""
    users_of: dict[str, list[int]] = {}
    for each, user_id in zip(emoji, user_ids, strict=True):
        name = each if isinstance(each, str) else bytes(each).decode("utf-8")
        users_of.setdefault(name, []).append(user_id)
    return [Reaction(emoji=name, user_ids=users) for name, users in users_of.items()]


def update_kind(code: int | None) -> UpdateKind | None:
    """The update an `inbox.update_kind` names; None for a message entry."""
    return None if code is None else _KINDS[code]


def update_code(kind: UpdateKind | None) -> int | None:
    """`inbox.update_kind` for an entry of `kind`."""
    return None if kind is None else UPDATE_CODES[kind]


def reaction_rows(message: StoredMessage) -> Sequence[tuple[int, int, bytes, int, int, int]]:
    """`message_reactions` rows that read back as `message.reactions`, positions in list order."""
    rows: list[tuple[int, int, bytes, int, int, int]] = []
    for reaction in message.reactions:
        emoji_position = len(rows) + 1
        rows += [
            (
                message.channel_id,
                message.message_id,
                reaction.emoji.encode("utf-8"),
                user_id,
                emoji_position,
                emoji_position + index,
            )
            for index, user_id in enumerate(reaction.user_ids)
        ]
    return rows
