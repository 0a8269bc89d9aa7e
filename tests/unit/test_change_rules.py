"""The rules both engines apply to a message's present state: what a change does, and refuses."""

from __future__ import annotations

import pytest

from chatapp.messaging import change_rules
from chatapp.messaging.models import Deletion, Edit, Reaction, ReactionChange, StoredMessage
from chatapp.messaging.store import MAX_REACTION_EMOJI, MessageIsDeleted, TooManyReactions

MESSAGE = StoredMessage(
    channel_id=3,
    message_id=9,
    sender_id=7,
    text="hello @bob",
    created_at=1,
    client_msg_id="c-1",
    mentions=[8],
)


def _react(user_id: int, emoji: str, *, add: bool = True) -> ReactionChange:
    return ReactionChange(channel_id=3, message_id=9, user_id=user_id, emoji=emoji, add=add)


def test_a_change_that_changes_nothing_answers_the_same_object() -> None:
    """Same text, a second deletion, a repeated reaction or removing an absent one: no update."""
    assert change_rules.edited(MESSAGE, Edit(3, 9, "hello @bob", (8,), 5)) is MESSAGE
    gone = change_rules.deleted(MESSAGE, Deletion(3, 9, deleted_by=7))
    assert change_rules.deleted(gone, Deletion(3, 9, deleted_by=1)) is gone
    reactions = [Reaction(emoji="👍", user_ids=[8])]
    assert change_rules.reacted(MESSAGE, reactions, _react(8, "👍")) is reactions
    assert change_rules.reacted(MESSAGE, reactions, _react(9, "🎉", add=False)) is reactions


def test_an_edit_takes_the_new_text_mentions_and_time() -> None:
    after = change_rules.edited(MESSAGE, Edit(3, 9, "bye", (), 5))
    assert (after.text, after.mentions, after.edited_at) == ("bye", [], 5)
    assert MESSAGE.text == "hello @bob"  # the original is left as it was


def test_a_deletion_keeps_the_id_and_drops_everything_said() -> None:
    with_reactions = MESSAGE.model_copy(update={"reactions": [Reaction(emoji="👍", user_ids=[8])]})
    gone = change_rules.deleted(with_reactions, Deletion(3, 9, deleted_by=1))
    assert (gone.message_id, gone.text, gone.mentions, gone.reactions) == (9, "", [], [])
    assert (gone.deleted, gone.deleted_by) == (True, 1)


def test_a_deleted_message_refuses_edits_and_reactions() -> None:
    gone = change_rules.deleted(MESSAGE, Deletion(3, 9, deleted_by=7))
    with pytest.raises(MessageIsDeleted):
        change_rules.edited(gone, Edit(3, 9, "again", (), 5))
    with pytest.raises(MessageIsDeleted):
        change_rules.reacted(gone, [], _react(8, "👍"))


def test_reactions_keep_their_emoji_order_and_users_join_the_end() -> None:
    """An emoji stays where it first appeared while anyone reacts with it; empty ones leave."""
    reactions: list[Reaction] = []
    for user_id, emoji in [(1, "👍"), (2, "🎉"), (3, "👍")]:
        reactions = change_rules.reacted(MESSAGE, reactions, _react(user_id, emoji))
    assert reactions == [Reaction(emoji="👍", user_ids=[1, 3]), Reaction(emoji="🎉", user_ids=[2])]
    reactions = change_rules.reacted(MESSAGE, reactions, _react(2, "🎉", add=False))
    assert reactions == [Reaction(emoji="👍", user_ids=[1, 3])]


def test_a_new_emoji_past_the_limit_is_refused_but_joining_one_is_not() -> None:
    reactions = [Reaction(emoji=f"e{i}", user_ids=[1]) for i in range(MAX_REACTION_EMOJI)]
    with pytest.raises(TooManyReactions):
        change_rules.reacted(MESSAGE, reactions, _react(2, "new"))
    joined = change_rules.reacted(MESSAGE, reactions, _react(2, "e0"))
    assert joined[0].user_ids == [1, 2]


def test_each_change_names_the_kind_of_its_update_entry() -> None:
    assert change_rules.kind_of(Edit(3, 9, "x", (), 5)) == "edited"
    assert change_rules.kind_of(Deletion(3, 9, deleted_by=7)) == "deleted"
    assert change_rules.kind_of(_react(1, "👍")) == "reactions"
