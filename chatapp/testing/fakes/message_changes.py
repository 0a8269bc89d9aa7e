"""What an edit, a deletion or a reaction makes of a message, for the in-memory store.

Kept apart from the engines' code on purpose: the fake is a second reading
of the contract, so a test on it can catch what an engine got wrong.
"""

from __future__ import annotations

from chatapp.messaging.models import (
    Deletion,
    Edit,
    MessageChange,
    Reaction,
    ReactionChange,
    StoredMessage,
    UpdateKind,
)
from chatapp.messaging.store import MAX_REACTION_EMOJI, MessageIsDeleted, TooManyReactions


def changed(message: StoredMessage, change: MessageChange) -> tuple[UpdateKind, StoredMessage]:
    """What `change` makes of `message`: an equal message when it changes nothing."""
    if isinstance(change, Deletion):
        if message.deleted:
            return "deleted", message
        return "deleted", message.model_copy(
            update={
                "text": "",
                "mentions": [],
                "reactions": [],
                "deleted": True,
                "deleted_by": change.deleted_by,
            }
        )
    if message.deleted:
        raise MessageIsDeleted(f"message {message.message_id} is deleted")
    if isinstance(change, Edit):
        if change.text == message.text:
            return "edited", message
        return "edited", message.model_copy(
            update={
                "text": change.text,
                "edited_at": change.edited_at,
                "mentions": list(change.mentions),
            }
        )
    return "reactions", message.model_copy(update={"reactions": reacted(message.reactions, change)})


def reacted(reactions: list[Reaction], change: ReactionChange) -> list[Reaction]:
    """The list after `change`: an emoji keeps its place while anyone reacts with it."""
    users = {reaction.emoji: reaction.user_ids for reaction in reactions}
    present = change.user_id in users.get(change.emoji, [])
    if change.add == present:
        return reactions
    if change.add and change.emoji not in users and len(users) >= MAX_REACTION_EMOJI:
        raise TooManyReactions(f"a message carries at most {MAX_REACTION_EMOJI} emoji")
    if change.add:
        users[change.emoji] = [*users.get(change.emoji, []), change.user_id]
    else:
        users[change.emoji] = [u for u in users[change.emoji] if u != change.user_id]
    return [Reaction(emoji=emoji, user_ids=ids) for emoji, ids in users.items() if ids]
