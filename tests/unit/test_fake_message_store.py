"""FakeMessageStore keeps the MessageStore contract as the LevelDB store does, changes included."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from chatapp.messaging import AcceptedMessage, MessageStore, MessageStoreError, StoredMessage
from chatapp.messaging.models import Deletion, Edit, ReactionChange
from chatapp.messaging.store import (
    MAX_REACTION_EMOJI,
    MessageIsDeleted,
    MessageMissing,
    TooManyReactions,
)
from chatapp.testing.fakes import FakeMessageStore


async def send(
    store: MessageStore,
    client_msg_id: str,
    *,
    sender_id: int = 1,
    channel_id: int = 1,
    members: Sequence[int] = (1, 2),
    text: str = "hi",
) -> AcceptedMessage:
    return await store.append(
        sender_id=sender_id,
        channel_id=channel_id,
        client_msg_id=client_msg_id,
        text=text,
        member_ids=members,
        created_at=1_700_000_000_000,
    )


def ids(messages: list[StoredMessage]) -> list[int]:
    return [message.message_id for message in messages]


async def test_ids_and_seqs_are_contiguous_per_channel_and_per_inbox() -> None:
    """message_ids count 1, 2, 3 per channel; seqs count 1, 2, 3 per user, across channels."""
    store = FakeMessageStore()
    first = await send(store, "a", channel_id=1, members=[1, 2])
    second = await send(store, "b", sender_id=3, channel_id=2, members=[3, 2])
    third = await send(store, "c", channel_id=1, members=[1, 2])

    assert [m.message.message_id for m in (first, second, third)] == [1, 1, 2]
    assert first.inbox_seqs == {1: 1, 2: 1}
    assert second.inbox_seqs == {3: 1, 2: 2}
    assert third.inbox_seqs == {1: 2, 2: 3}
    assert (third.seq, third.duplicate) == (2, False)
    assert await store.last_message_id(1) == 2
    assert await store.max_seq(2) == 3
    assert await store.max_seq(99) == 0


async def test_members_are_deduplicated_and_the_sender_always_gets_an_entry() -> None:
    """Repeated members count once; a sender left out of member_ids is added last."""
    store = FakeMessageStore()
    accepted = await send(store, "a", sender_id=4, members=[2, 3, 2])
    assert list(accepted.inbox_seqs) == [2, 3, 4]
    assert accepted.seq == accepted.inbox_seqs[4] == 1


async def test_a_repeat_returns_the_original_as_a_duplicate_and_stores_nothing() -> None:
    """Same (sender, client_msg_id): the original comes back with duplicate=True, even
    for another channel and text; only the sender's seq is known; other senders are apart."""
    store = FakeMessageStore()
    original = await send(store, "same", text="first")
    repeat = await send(store, "same", channel_id=7, text="second")
    other_sender = await send(store, "same", sender_id=2)

    assert repeat.duplicate
    assert repeat.message == original.message
    assert repeat.inbox_seqs == {1: original.seq}
    assert await store.last_message_id(7) == 0
    assert (other_sender.duplicate, other_sender.message.message_id) == (False, 2)
    assert await store.original(1, "same") == repeat
    assert await store.original(1, "never") is None


async def test_history_pages_as_the_protocol_docstring_says() -> None:
    """Newest page without cursors; before pages older, after newer, both between;
    has_more looks in the direction paged; limit <= 0 is an empty page."""
    store = FakeMessageStore()
    for n in range(1, 11):
        await send(store, f"c{n}")

    async def page(**kwargs: int) -> tuple[list[int], bool]:
        result = await store.history(1, **kwargs)
        return ids(result.messages), result.has_more

    # The same table as the LevelDB store's integration test.
    assert await page(limit=3) == ([8, 9, 10], True)
    assert await page(limit=10) == (list(range(1, 11)), False)
    assert await page(before=8, limit=3) == ([5, 6, 7], True)
    assert await page(before=4, limit=3) == ([1, 2, 3], False)
    assert await page(before=1, limit=3) == ([], False)
    assert await page(after=0, limit=4) == ([1, 2, 3, 4], True)
    assert await page(after=6, limit=4) == ([7, 8, 9, 10], False)
    assert await page(after=10, limit=4) == ([], False)
    assert await page(after=2, before=7, limit=2) == ([3, 4], True)
    assert await page(after=2, before=7, limit=4) == ([3, 4, 5, 6], False)
    assert await page(after=5, before=6, limit=4) == ([], False)
    assert await page(limit=0) == ([], False)
    assert await page(before=5, limit=-1) == ([], False)
    assert (await store.history(2)).messages == []


async def test_inbox_pages_by_seq_and_get_finds_one_message() -> None:
    """inbox gives seq > since in ascending order with has_more; get finds a message or None."""
    store = FakeMessageStore()
    for n in range(1, 6):
        await send(store, f"a{n}", channel_id=1, members=[1, 2])
        await send(store, f"b{n}", sender_id=3, channel_id=2, members=[3, 2])

    first = await store.inbox(2, since=0, limit=4)
    rest = await store.inbox(2, since=4, limit=100)

    assert [e.seq for e in first.entries] == [1, 2, 3, 4]
    assert first.has_more
    assert [e.seq for e in rest.entries] == [5, 6, 7, 8, 9, 10]
    assert not rest.has_more
    assert [e.message.client_msg_id for e in rest.entries][:2] == ["a3", "b3"]
    assert (await store.inbox(2, since=10, limit=5)).entries == []
    assert (await store.inbox(2, since=0, limit=0)).entries == []
    message = await store.get(2, 5)
    assert message is not None
    assert message.client_msg_id == "b5"
    assert await store.get(2, 6) is None
    assert await store.get(2, 0) is None


async def test_bad_arguments_raise_value_error_and_use_no_id() -> None:
    """Out-of-range ids, empty or non-ASCII client_msg_ids and lone surrogates raise ValueError."""
    store = FakeMessageStore()
    with pytest.raises(ValueError, match="client_msg_id"):
        await send(store, "naïve")
    with pytest.raises(ValueError, match="client_msg_id"):
        await send(store, "")
    with pytest.raises(ValueError, match="channel_id"):
        await send(store, "c", channel_id=-1)
    with pytest.raises(ValueError, match="member_ids"):
        await send(store, "c", members=[1, 2**64])
    with pytest.raises(ValueError, match="surrogate"):
        await send(store, "c", text="\udc80")
    with pytest.raises(ValueError, match="before"):
        await store.history(1, before=-1)

    assert (await send(store, "good")).message.message_id == 1


async def test_a_failed_write_stores_nothing_and_leaves_no_gap() -> None:
    """fail_next fails one send's future with MessageStoreError; the next send gets id 1."""
    store = FakeMessageStore()
    store.fail_next = True
    with pytest.raises(MessageStoreError):
        await send(store, "lost")
    assert await store.original(1, "lost") is None

    assert (await send(store, "kept")).message.message_id == 1
    assert store.failures == 1


async def test_failing_reads_raise_and_fail_only_narrows_them() -> None:
    """failing makes every call raise; with fail_only, only the named methods do."""
    store = FakeMessageStore()
    store.failing = True
    store.fail_only = {"history"}
    await send(store, "still works")
    with pytest.raises(MessageStoreError):
        await store.history(1)
    store.failing = False
    assert ids((await store.history(1)).messages) == [1]


async def test_held_sends_wait_keep_their_order_and_catch_repeats_in_flight() -> None:
    """Between hold() and release() nothing is durable; release stores in submission order,
    and a repeat submitted while its original was held is answered as a duplicate."""
    store = FakeMessageStore()
    store.hold()
    first = store.submit(
        sender_id=1, channel_id=1, client_msg_id="a", text="1", member_ids=[1], created_at=0
    )
    second = store.submit(
        sender_id=1, channel_id=1, client_msg_id="b", text="2", member_ids=[1], created_at=0
    )
    repeat = store.submit(
        sender_id=1, channel_id=1, client_msg_id="a", text="1", member_ids=[1], created_at=0
    )

    assert not first.done()
    assert store.held == 3
    assert await store.original(1, "a") is None
    assert store.release() == 3

    assert (await first).message.message_id == 1
    assert (await second).message.message_id == 2
    assert (await repeat).duplicate
    assert (await repeat).message == (await first).message


async def test_close_stores_held_sends_then_refuses_every_call() -> None:
    """close() finishes the sends already accepted; afterwards every method raises."""
    store = FakeMessageStore()
    store.hold()
    pending = store.submit(
        sender_id=1, channel_id=1, client_msg_id="a", text="1", member_ids=[1], created_at=0
    )
    await store.close()
    await store.close()

    assert (await pending).message.message_id == 1
    with pytest.raises(MessageStoreError, match="closed"):
        await send(store, "late")
    with pytest.raises(MessageStoreError, match="closed"):
        await store.inbox(1, since=0, limit=1)


def react(user_id: int, emoji: str, *, add: bool = True, message_id: int = 1) -> ReactionChange:
    return ReactionChange(
        channel_id=1, message_id=message_id, user_id=user_id, emoji=emoji, add=add
    )


async def test_replies_and_mentions_are_stored_as_given() -> None:
    """reply_to and mentions come back on the answer and from every read."""
    store = FakeMessageStore()
    await send(store, "a")
    sent = await store.append(
        sender_id=1,
        channel_id=1,
        client_msg_id="b",
        text="@bob",
        member_ids=[1, 2],
        created_at=0,
        reply_to=1,
        mentions=[2],
    )
    assert (sent.message.reply_to, sent.message.mentions) == (1, [2])
    assert await store.get(1, 2) == sent.message
    with pytest.raises(ValueError, match="reply_to"):
        store.submit(
            sender_id=1,
            channel_id=1,
            client_msg_id="c",
            text="re",
            member_ids=[1],
            created_at=0,
            reply_to=-1,
        )


async def test_edits_and_deletions_append_update_entries_and_inboxes_show_the_present() -> None:
    """An edit and a deletion each take the next seq of every member given; the same text
    or a second deletion append nothing; every entry carries the message as it is now."""
    store = FakeMessageStore()
    await send(store, "a", text="hello")
    edit = Edit(channel_id=1, message_id=1, text="hello @bob", mentions=(2,), edited_at=5)
    edited = await store.change(edit, member_ids=[1, 2, 2])
    assert (edited.update, edited.inbox_seqs) == ("edited", {1: 2, 2: 2})
    assert not (await store.change(edit, member_ids=[1, 2])).changed
    deletion = Deletion(channel_id=1, message_id=1, deleted_by=2)
    deleted = await store.change(deletion, member_ids=[1, 2])
    gone = deleted.message
    assert (gone.text, gone.deleted, gone.mentions, gone.edited_at, gone.deleted_by) == (
        "",
        True,
        [],
        5,
        2,
    )
    assert not (await store.change(deletion, member_ids=[1, 2])).changed
    entries = (await store.inbox(2, since=0, limit=10)).entries
    assert [(e.seq, e.update) for e in entries] == [(1, None), (2, "edited"), (3, "deleted")]
    assert all(e.message == gone for e in entries)
    records = await store.scan_inbox(limit=10)
    assert [r.update for r in records if r.user_id == 1] == [None, "edited", "deleted"]


async def test_refusals_and_the_order_of_reactions() -> None:
    """Missing or deleted messages refuse; emoji keep their place while anyone reacts with
    them and come back last; the 21st emoji is TooManyReactions."""
    store = FakeMessageStore()
    await send(store, "a")
    await send(store, "b")
    with pytest.raises(MessageMissing):
        await store.change(react(1, "👍", message_id=9), member_ids=[1, 2])
    for user_id, emoji in ((2, "👍"), (1, "🎉"), (1, "👍")):
        await store.change(react(user_id, emoji), member_ids=[1, 2])
    await store.change(react(2, "👍", add=False), member_ids=[1, 2])
    await store.change(react(1, "🎉", add=False), member_ids=[1, 2])
    outcome = await store.change(react(2, "🎉"), member_ids=[1, 2])
    assert [(r.emoji, r.user_ids) for r in outcome.message.reactions] == [
        ("👍", [1]),
        ("🎉", [2]),
    ]
    for n in range(MAX_REACTION_EMOJI):
        await store.change(react(1, chr(0x1F600 + n), message_id=2), member_ids=[1])
    with pytest.raises(TooManyReactions):
        await store.change(react(1, "🦀", message_id=2), member_ids=[1])
    await store.change(Deletion(channel_id=1, message_id=2, deleted_by=1), member_ids=[1])
    with pytest.raises(MessageIsDeleted):
        await store.change(react(1, "🦀", message_id=2, add=False), member_ids=[1])


async def test_held_changes_keep_their_place_among_sends_and_a_refusal_fails_alone() -> None:
    """Held sends and changes are stored in the order submitted; a refused change raises
    for its caller only."""
    store = FakeMessageStore()
    store.hold()
    first = store.submit(
        sender_id=1, channel_id=1, client_msg_id="a", text="1", member_ids=[1], created_at=0
    )
    missing = store.submit_change(react(1, "👍", message_id=5), member_ids=[1])
    reacted = store.submit_change(react(1, "👍"), member_ids=[1])
    second = store.submit(
        sender_id=1, channel_id=1, client_msg_id="b", text="2", member_ids=[1], created_at=0
    )
    assert store.held == 4
    store.release()
    assert (await first).seq == 1
    with pytest.raises(MessageMissing):
        await missing
    assert (await reacted).inbox_seqs == {1: 2}
    assert (await second).seq == 3
