"""Edits, deletions and reactions on PostgreSQL: read under lock, applied in order, written once.

A batch locks the rows of every message its changes name (`FOR UPDATE`, in
key order), then reads them and their reactions: a change on another node
to the same message waits for this commit and then reads what it wrote, so
changes to one message take turns and every node converges. The changes are
applied one after the other to that state in memory (two changes to one
message in a batch see each other), and each message changed is written
once at the end: its row only when an edit or a deletion changed it, its
reactions as the rows added and the rows gone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import asyncpg

from chatapp.messaging import change_rules
from chatapp.messaging.adapters.postgres_rows import MESSAGE_COLUMNS, grouped, message_from_row
from chatapp.messaging.models import (
    Deletion,
    Edit,
    MessageChange,
    Reaction,
    ReactionChange,
    StoredMessage,
)
from chatapp.messaging.store import MessageMissing

Key = tuple[int, int]
"""(channel_id, message_id)"""

Pair = tuple[str, int, int, int]
"""One reaction: (emoji, user_id, emoji_position, user_position), as `message_reactions` has it."""


@dataclass(slots=True)
class Target:
    """A message a batch changes: its state so far, and what it was when read."""

    message: StoredMessage
    pairs: list[Pair]
    """The reactions, in list order: by emoji_position, then user_position."""
    stored_pairs: frozenset[Pair]
    next_position: int
    rewritten: bool = False
    """True once an edit or a deletion changed the message's own row."""

    @classmethod
    def fresh(cls, message: StoredMessage) -> Target:
        """A message stored by this batch: no reactions yet, its row still to be written."""
        return cls(message=message, pairs=[], stored_pairs=frozenset(), next_position=1)


@dataclass(slots=True)
class Targets:
    """Every message a batch's changes name, by key; a key not found is a missing message."""

    found: dict[Key, Target] = field(default_factory=dict)

    def apply(self, change: MessageChange) -> bool:
        """Apply `change` to its message; False when it changes nothing.

        Raises `ChangeRefused` (nothing applied) as `MessageStore.change` says.
        """
        target = self.found.get((change.channel_id, change.message_id))
        if target is None:
            raise MessageMissing(f"no message {change.message_id} in channel {change.channel_id}")
        if isinstance(change, Edit):
            return _edit(target, change)
        if isinstance(change, Deletion):
            return _delete(target, change)
        return _react(target, change)


def _edit(target: Target, edit: Edit) -> bool:
    after = change_rules.edited(target.message, edit)
    if after is target.message:
        return False
    target.message = after
    target.rewritten = True
    return True


def _delete(target: Target, deletion: Deletion) -> bool:
    after = change_rules.deleted(target.message, deletion)
    if after is target.message:
        return False
    target.message = after
    target.pairs = []
    target.rewritten = True
    return True


def _react(target: Target, change: ReactionChange) -> bool:
    message = target.message
    after = change_rules.reacted(message, message.reactions, change)
    if after is message.reactions:
        return False
    if change.add:
        _add(target, change)
    else:
        mine = (change.emoji, change.user_id)
        target.pairs = [pair for pair in target.pairs if (pair[0], pair[1]) != mine]
    target.message = message.model_copy(update={"reactions": after})
    return True


def _add(target: Target, change: ReactionChange) -> None:
    """The row of a new reaction: after its emoji's users, or as a new emoji at the end."""
    positions = {emoji: position for emoji, _, position, _ in target.pairs}
    position = target.next_position
    target.next_position += 1
    emoji_position = positions.get(change.emoji, position)
    target.pairs.append((change.emoji, change.user_id, emoji_position, position))
    target.pairs.sort(key=lambda pair: (pair[2], pair[3]))


def _reactions(pairs: list[Pair]) -> list[Reaction]:
    return grouped((pair[0] for pair in pairs), (pair[1] for pair in pairs))


async def lock_targets(connection: asyncpg.Connection, keys: Iterable[Key]) -> Targets:
    """Lock the named messages' rows in key order, then read them and their reactions.

    Two statements: after waiting for a lock, a statement sees the locked
    row as committed, but the rest of its reads stay as they were when it
    began; the reactions are read afterwards, so they are the committed ones.
    """
    wanted = sorted(set(keys))
    if not wanted:
        return Targets()
    rows = await connection.fetch(
        f"SELECT {MESSAGE_COLUMNS} FROM messages AS m"
        " JOIN unnest($1::bigint[], $2::bigint[]) AS k(channel_id, message_id)"
        " ON m.channel_id = k.channel_id AND m.message_id = k.message_id"
        " ORDER BY m.channel_id, m.message_id FOR UPDATE OF m",
        [channel_id for channel_id, _ in wanted],
        [message_id for _, message_id in wanted],
    )
    reactions = await connection.fetch(
        "SELECT r.channel_id, r.message_id, r.emoji, r.user_id, r.emoji_position, r.user_position"
        " FROM message_reactions AS r"
        " JOIN unnest($1::bigint[], $2::bigint[]) AS k(channel_id, message_id)"
        " ON r.channel_id = k.channel_id AND r.message_id = k.message_id"
        " ORDER BY r.channel_id, r.message_id, r.emoji_position, r.user_position",
        [row["channel_id"] for row in rows],
        [row["message_id"] for row in rows],
    )
    pairs: dict[Key, list[Pair]] = {}
    for row in reactions:
        pair = (
            bytes(row["emoji"]).decode("utf-8"),
            row["user_id"],
            row["emoji_position"],
            row["user_position"],
        )
        pairs.setdefault((row["channel_id"], row["message_id"]), []).append(pair)
    return Targets({_key(row): _target(row, pairs.get(_key(row), [])) for row in rows})


def _key(row: asyncpg.Record) -> Key:
    return (row["channel_id"], row["message_id"])


def _target(row: asyncpg.Record, pairs: list[Pair]) -> Target:
    message = message_from_row(row, reactions=[])
    message = message.model_copy(update={"reactions": _reactions(pairs)})
    return Target(
        message=message,
        pairs=pairs,
        stored_pairs=frozenset(pairs),
        next_position=max((pair[3] for pair in pairs), default=0) + 1,
    )


async def write_targets(connection: asyncpg.Connection, targets: Iterable[Target]) -> None:
    """Write what the batch changed: rewritten message rows, reactions gone, reactions added."""
    rewritten: list[tuple[int, int, bytes, int | None, list[int], int | None]] = []
    gone: list[tuple[int, int, bytes, int]] = []
    added: list[tuple[int, int, bytes, int, int, int]] = []
    for target in targets:
        message = target.message
        key = (message.channel_id, message.message_id)
        if target.rewritten:
            rewritten.append(
                (
                    *key,
                    message.text.encode("utf-8"),
                    message.edited_at,
                    message.mentions,
                    message.deleted_by,
                )
            )
        now = frozenset(target.pairs)
        gone += [(*key, e.encode("utf-8"), u) for e, u, _, _ in target.stored_pairs - now]
        added += [
            (*key, e.encode("utf-8"), u, ep, up) for e, u, ep, up in now - target.stored_pairs
        ]
    if rewritten:
        await connection.executemany(
            "UPDATE messages SET body = $3, edited_at = $4, mentions = $5, deleted_by = $6"
            " WHERE channel_id = $1 AND message_id = $2",
            rewritten,
        )
    if gone:
        await connection.execute(
            "DELETE FROM message_reactions AS r"
            " USING unnest($1::bigint[], $2::bigint[], $3::bytea[], $4::bigint[])"
            " AS g(channel_id, message_id, emoji, user_id)"
            " WHERE r.channel_id = g.channel_id AND r.message_id = g.message_id"
            " AND r.emoji = g.emoji AND r.user_id = g.user_id",
            *(list(column) for column in zip(*gone, strict=True)),
        )
    if added:
        await connection.copy_records_to_table(
            "message_reactions",
            records=added,
            columns=(
                "channel_id",
                "message_id",
                "emoji",
                "user_id",
                "emoji_position",
                "user_position",
            ),
        )
