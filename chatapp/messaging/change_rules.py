"""What an edit, a deletion or a reaction makes of a message: the rules, without storage.

Both engines apply changes to a message's present state inside their own
write (LevelDB's batch, PostgreSQL's locked rows); the rules of what a
change does and when it is refused live here once, so the engines keep
only their I/O. A rule answers with the very object it was given when the
change alters nothing, which is how a store knows to append no update entry
(an action that changes nothing appends nothing).

The in-memory fake keeps its own reading of these rules on purpose
(`chatapp.testing.fakes.message_changes`): a second reading of the contract
catches what this one gets wrong.
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


def kind_of(change: MessageChange) -> UpdateKind:
    """The kind of update entry `change` appends."""
    if isinstance(change, Edit):
        return "edited"
    if isinstance(change, Deletion):
        return "deleted"
    return "reactions"


def edited(message: StoredMessage, edit: Edit) -> StoredMessage:
    """The message with the edit's text and mentions; `message` itself when the text is the same.

    Raises `MessageIsDeleted`: a deleted message stays deleted.
    """
    _refuse_if_deleted(message)
    if edit.text == message.text:
        return message
    return message.model_copy(
        update={"text": edit.text, "edited_at": edit.edited_at, "mentions": list(edit.mentions)}
    )


def deleted(message: StoredMessage, deletion: Deletion) -> StoredMessage:
    """The message with its text, mentions and reactions gone and its id kept.

    Deleting twice changes nothing the second time, whoever asks.
    """
    if message.deleted:
        return message
    return message.model_copy(
        update={
            "text": "",
            "mentions": [],
            "reactions": [],
            "deleted": True,
            "deleted_by": deletion.deleted_by,
        }
    )


def reacted(
    message: StoredMessage, reactions: list[Reaction], change: ReactionChange
) -> list[Reaction]:
    """`reactions` after `change`; the same list when it changes nothing.

    An emoji keeps its place in the list while anyone reacts with it, and a
    user's reaction joins the end of its emoji's users. Raises
    `MessageIsDeleted`, or `TooManyReactions` for an emoji beyond the limit.
    """
    _refuse_if_deleted(message)
    index = next((i for i, r in enumerate(reactions) if r.emoji == change.emoji), None)
    present = index is not None and change.user_id in reactions[index].user_ids
    if change.add == present:
        return reactions
    if index is None:
        if len(reactions) >= MAX_REACTION_EMOJI:
            raise TooManyReactions(
                f"message ({change.channel_id}, {change.message_id}) carries "
                f"{MAX_REACTION_EMOJI} different emoji already"
            )
        return [*reactions, Reaction(emoji=change.emoji, user_ids=[change.user_id])]
    old = reactions[index]
    if change.add:
        users = [*old.user_ids, change.user_id]
    else:
        users = [user_id for user_id in old.user_ids if user_id != change.user_id]
    after = list(reactions)
    if users:
        after[index] = Reaction(emoji=old.emoji, user_ids=users)
    else:
        del after[index]  # an emoji nobody reacts with leaves the list
    return after


def _refuse_if_deleted(message: StoredMessage) -> None:
    if message.deleted:
        raise MessageIsDeleted(f"message ({message.channel_id}, {message.message_id}) is deleted")
