"""Edits, deletions and reactions in the LevelDB message store, against real folders."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import plyvel
import pytest

from chatapp.messaging import StoredMessage
from chatapp.messaging.adapters import LevelDBMessageStore
from chatapp.messaging.adapters.codec import encode_reactions
from chatapp.messaging.adapters.leveldb_audit import audit_store
from chatapp.messaging.adapters.leveldb_layout import reactions_key
from chatapp.messaging.models import Deletion, Edit, Reaction, ReactionChange
from chatapp.messaging.store import (
    MAX_REACTION_EMOJI,
    MessageIsDeleted,
    MessageMissing,
    TooManyReactions,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
MEMBERS = (1, 2, 3)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[LevelDBMessageStore]:
    opened = await LevelDBMessageStore.open(tmp_path / "messages")
    yield opened
    await opened.close()


async def send(store: LevelDBMessageStore, client_msg_id: str, text: str = "hello") -> int:
    accepted = await store.append(
        sender_id=1,
        channel_id=7,
        client_msg_id=client_msg_id,
        text=text,
        member_ids=MEMBERS,
        created_at=1_000,
    )
    return accepted.message.message_id


def react(message_id: int, user_id: int, emoji: str, *, add: bool = True) -> ReactionChange:
    return ReactionChange(
        channel_id=7, message_id=message_id, user_id=user_id, emoji=emoji, add=add
    )


async def test_an_edit_rewrites_the_text_and_appends_an_update_for_every_member(
    store: LevelDBMessageStore,
) -> None:
    message_id = await send(store, "a")
    outcome = await store.change(
        Edit(channel_id=7, message_id=message_id, text="hello @bob", mentions=(2,), edited_at=5),
        member_ids=MEMBERS,
    )
    assert outcome.update == "edited"
    assert outcome.inbox_seqs == {1: 2, 2: 2, 3: 2}
    assert (outcome.message.text, outcome.message.edited_at) == ("hello @bob", 5)
    assert outcome.message.mentions == [2]
    stored = await store.get(7, message_id)
    assert stored == outcome.message
    page = await store.inbox(2, since=0, limit=10)
    assert [(entry.seq, entry.update) for entry in page.entries] == [(1, None), (2, "edited")]
    # Replay shows the present: the message entry carries the edited text too.
    assert {entry.message.text for entry in page.entries} == {"hello @bob"}


async def test_a_change_that_changes_nothing_appends_nothing(store: LevelDBMessageStore) -> None:
    message_id = await send(store, "a", text="same")
    edit = Edit(channel_id=7, message_id=message_id, text="same", mentions=(), edited_at=5)
    assert not (await store.change(edit, member_ids=MEMBERS)).changed
    assert not (
        await store.change(react(message_id, 2, "👍", add=False), member_ids=MEMBERS)
    ).changed
    assert (await store.change(react(message_id, 2, "👍"), member_ids=MEMBERS)).changed
    assert not (await store.change(react(message_id, 2, "👍"), member_ids=MEMBERS)).changed
    deletion = Deletion(channel_id=7, message_id=message_id, deleted_by=1)
    assert (await store.change(deletion, member_ids=MEMBERS)).changed
    again = await store.change(deletion, member_ids=MEMBERS)
    assert not again.changed
    assert again.message.deleted
    assert await store.max_seq(2) == 3  # the message, the reaction, the deletion
    assert (await store.get(7, message_id)) is not None
    assert (await store.get(7, message_id)).edited_at is None  # type: ignore[union-attr]


async def test_reactions_keep_the_order_of_first_reaction_and_of_who_reacted(
    store: LevelDBMessageStore,
) -> None:
    message_id = await send(store, "a")
    for user_id, emoji in [(2, "👍"), (3, "🎉"), (1, "👍"), (3, "👍")]:
        await store.change(react(message_id, user_id, emoji), member_ids=MEMBERS)
    assert (await store.get(7, message_id)).reactions == [  # type: ignore[union-attr]
        Reaction(emoji="👍", user_ids=[2, 1, 3]),
        Reaction(emoji="🎉", user_ids=[3]),
    ]
    await store.change(react(message_id, 3, "🎉", add=False), member_ids=MEMBERS)
    await store.change(react(message_id, 2, "👍", add=False), member_ids=MEMBERS)
    outcome = await store.change(react(message_id, 2, "🎉"), member_ids=MEMBERS)
    # The emoji nobody reacted with any more left the list; added again, it goes last.
    assert outcome.message.reactions == [
        Reaction(emoji="👍", user_ids=[1, 3]),
        Reaction(emoji="🎉", user_ids=[2]),
    ]
    assert outcome.update == "reactions"
    history = await store.history(7)
    assert history.messages[0].reactions == outcome.message.reactions


async def test_a_message_carries_at_most_twenty_different_emoji(store: LevelDBMessageStore) -> None:
    message_id = await send(store, "a")
    for number in range(MAX_REACTION_EMOJI):
        await store.change(react(message_id, 2, f"e{number}"), member_ids=MEMBERS)
    with pytest.raises(TooManyReactions):
        await store.change(react(message_id, 3, "one more"), member_ids=MEMBERS)
    # One more user on an emoji already there is no new emoji.
    assert (await store.change(react(message_id, 3, "e0"), member_ids=MEMBERS)).changed


async def test_a_deleted_message_keeps_its_id_and_loses_text_mentions_and_reactions(
    store: LevelDBMessageStore,
) -> None:
    first = await send(store, "a")
    second = await send(store, "b")
    await store.change(
        Edit(channel_id=7, message_id=first, text="hi @carol", mentions=(3,), edited_at=4),
        member_ids=MEMBERS,
    )
    await store.change(react(first, 2, "👍"), member_ids=MEMBERS)
    outcome = await store.change(
        Deletion(channel_id=7, message_id=first, deleted_by=2), member_ids=MEMBERS
    )
    gone = outcome.message
    assert (gone.deleted, gone.text, gone.mentions, gone.reactions) == (True, "", [], [])
    assert gone.deleted_by == 2
    assert gone.edited_at == 4
    assert [m.message_id for m in (await store.history(7)).messages] == [first, second]
    with pytest.raises(MessageIsDeleted):
        await store.change(
            Edit(channel_id=7, message_id=first, text="back", mentions=(), edited_at=9),
            member_ids=MEMBERS,
        )
    with pytest.raises(MessageIsDeleted):
        await store.change(react(first, 2, "👍"), member_ids=MEMBERS)
    with pytest.raises(MessageMissing):
        await store.change(react(99, 2, "👍"), member_ids=MEMBERS)


async def test_a_deleted_text_leaves_the_files_once_its_deletion_is_on_disk(
    tmp_path: Path,
) -> None:
    """The store compacts a deleted message's records itself: no old version stays behind."""
    folder = tmp_path / "messages"
    store = await LevelDBMessageStore.open(folder)
    marker = "unique-marker-8c1f0a"
    try:
        message_id = await send(store, "a", text=f"secret {marker} " + "x" * 5_000)
        await send(store, "b", text="a neighbour that stays")
        edit = Edit(
            channel_id=7, message_id=message_id, text=f"{marker} 2", mentions=(), edited_at=2
        )
        await store.change(edit, member_ids=MEMBERS)
        await store.change(react(message_id, 2, marker), member_ids=MEMBERS)
        assert any(marker.encode() in path.read_bytes() for path in folder.iterdir())
        await store.change(
            Deletion(channel_id=7, message_id=message_id, deleted_by=1), member_ids=MEMBERS
        )
        await store.erased()
        for path in folder.iterdir():
            assert marker.encode() not in path.read_bytes(), path.name
        assert [m.text for m in (await store.history(7)).messages] == ["", "a neighbour that stays"]
    finally:
        await store.close()


async def test_changes_in_one_batch_apply_in_order_and_a_refusal_fails_only_itself(
    store: LevelDBMessageStore,
) -> None:
    message_id = await send(store, "a")
    futures: list[asyncio.Future[Any]] = [
        store.submit_change(react(message_id, 2, "👍"), member_ids=MEMBERS),
        store.submit_change(react(message_id, 3, "👍"), member_ids=MEMBERS),
        store.submit_change(react(404, 3, "👍"), member_ids=MEMBERS),
        store.submit(
            sender_id=2, channel_id=7, client_msg_id="b", text="b", member_ids=MEMBERS, created_at=2
        ),
        store.submit_change(
            Deletion(channel_id=7, message_id=message_id, deleted_by=1), member_ids=MEMBERS
        ),
        store.submit_change(react(message_id, 1, "👍"), member_ids=MEMBERS),
    ]
    results = await asyncio.gather(*futures, return_exceptions=True)
    assert isinstance(results[2], MessageMissing)
    assert isinstance(results[5], MessageIsDeleted)
    page = await store.inbox(3, since=0, limit=20)
    kinds = [entry.update for entry in page.entries]
    assert kinds == [None, "reactions", "reactions", None, "deleted"]
    assert [entry.seq for entry in page.entries] == [1, 2, 3, 4, 5]


async def test_changes_survive_a_restart(tmp_path: Path) -> None:
    folder = tmp_path / "messages"
    store = await LevelDBMessageStore.open(folder)
    message_id = await send(store, "a")
    await store.change(react(message_id, 2, "🙂"), member_ids=MEMBERS)
    await store.change(
        Edit(channel_id=7, message_id=message_id, text="new", mentions=(), edited_at=3),
        member_ids=MEMBERS,
    )
    before = await store.get(7, message_id)
    await store.close()
    store = await LevelDBMessageStore.open(folder)
    try:
        assert await store.get(7, message_id) == before
        assert await store.max_seq(1) == 3
        survey = await store.survey()
        assert not survey.problems
    finally:
        await store.close()


async def test_a_folder_written_before_message_changes_reads_as_before(tmp_path: Path) -> None:
    """The format-1 fixture was written by the release before edits, replies and reactions."""
    folder = tmp_path / "messages"
    shutil.copytree(FIXTURES / "messages-format-1", folder)
    store = await LevelDBMessageStore.open(folder)
    try:
        page = await store.history(1)
        assert [message.text for message in page.messages] == ["first", "second", "third"]
        assert all(isinstance(message, StoredMessage) for message in page.messages)
        assert all(
            (m.edited_at, m.deleted, m.reply_to, m.mentions, m.reactions)
            == (None, False, None, [], [])
            for m in page.messages
        )
        inbox = await store.inbox(2, since=0, limit=10)
        assert [(entry.seq, entry.update) for entry in inbox.entries] == [
            (1, None),
            (2, None),
            (3, None),
        ]
        reaction = ReactionChange(channel_id=1, message_id=2, user_id=2, emoji="👍", add=True)
        outcome = await store.change(reaction, member_ids=(1, 2))
        assert outcome.inbox_seqs == {1: 4, 2: 4}
    finally:
        await store.close()


async def test_the_full_check_reads_reactions_and_finds_strays(tmp_path: Path) -> None:
    folder = tmp_path / "messages"
    store = await LevelDBMessageStore.open(folder)
    message_id = await send(store, "a")
    await store.change(react(message_id, 2, "👍"), member_ids=MEMBERS)
    await store.close()
    db = plyvel.DB(str(folder))
    try:
        assert audit_store(db, folder).whole
        db.put(reactions_key(7, 99), encode_reactions([Reaction(emoji="x", user_ids=[1])]))
        found = audit_store(db, folder)
        assert found.stray_reactions == [reactions_key(7, 99)]
        assert "reactions belong to a missing or deleted message" in found.problems()[0]
    finally:
        db.close()
