"""Edits, deletions, reactions, replies and mentions in the PostgreSQL message store.

Each rule of `MessageStore.change` on a real database, with several nodes
(stores on pools of their own) changing one message at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import asyncpg
import pytest

from chatapp.bootstrap.archive_postgres import PostgresRows, PostgresTarget
from chatapp.messaging.adapters.postgres_messages import PostgresMessageStore
from chatapp.messaging.models import (
    AcceptedMessage,
    ChangeOutcome,
    Deletion,
    Edit,
    MessageChange,
    ReactionChange,
    StoredMessage,
)
from chatapp.messaging.store import (
    MAX_REACTION_EMOJI,
    MessageIsDeleted,
    MessageMissing,
    TooManyReactions,
)
from chatapp.storage.postgres import apply_postgres_migrations, open_postgres
from chatapp.testing.fakes.message_changes import changed
from tests.integration.store_engines import fresh_schema

MEMBERS = (1, 2, 3)


@pytest.fixture
async def schema_url(postgres_schema_url: str) -> str:
    """A fresh schema with every migration applied, in order."""
    pool = await open_postgres(postgres_schema_url, max_size=1)
    try:
        await apply_postgres_migrations(pool, now_ms=1)
    finally:
        await pool.close()
    return postgres_schema_url


@pytest.fixture
async def pools(schema_url: str) -> AsyncIterator[list[asyncpg.Pool]]:
    """Three pools on one schema: three nodes."""
    opened = [await open_postgres(schema_url, max_size=4) for _ in range(3)]
    try:
        yield opened
    finally:
        for pool in opened:
            await pool.close()


@pytest.fixture
async def nodes(pools: list[asyncpg.Pool]) -> AsyncIterator[list[PostgresMessageStore]]:
    """A message store on each node."""
    stores = [PostgresMessageStore(pool) for pool in pools]
    try:
        yield stores
    finally:
        for store in stores:
            await store.close()


def send(
    store: PostgresMessageStore,
    client_msg_id: str,
    text: str = "hi",
    *,
    sender: int = 1,
    channel: int = 1,
    reply_to: int | None = None,
    mentions: Sequence[int] = (),
) -> asyncio.Future[AcceptedMessage]:
    return store.submit(
        sender_id=sender,
        channel_id=channel,
        client_msg_id=client_msg_id,
        text=text,
        member_ids=MEMBERS,
        created_at=1_000,
        reply_to=reply_to,
        mentions=mentions,
    )


def change(store: PostgresMessageStore, made: MessageChange) -> asyncio.Future[ChangeOutcome]:
    return store.submit_change(made, member_ids=MEMBERS)


def react(user: int, emoji: str, *, add: bool = True, message: int = 1) -> ReactionChange:
    return ReactionChange(channel_id=1, message_id=message, user_id=user, emoji=emoji, add=add)


def edit(text: str, *, message: int = 1, at: int = 2_000, mentions: tuple[int, ...] = ()) -> Edit:
    return Edit(channel_id=1, message_id=message, text=text, mentions=mentions, edited_at=at)


def delete(by: int = 1, *, message: int = 1) -> Deletion:
    return Deletion(channel_id=1, message_id=message, deleted_by=by)


def listed(message: StoredMessage | None) -> list[tuple[str, list[int]]]:
    assert message is not None
    return [(reaction.emoji, reaction.user_ids) for reaction in message.reactions]


async def row_version(pool: asyncpg.Pool, message_id: int = 1) -> tuple[Any, ...]:
    """Where the message's row is and which transaction wrote it: both move on an UPDATE."""
    row = await pool.fetchrow(
        "SELECT ctid::text, xmin::text FROM messages WHERE channel_id = 1 AND message_id = $1",
        message_id,
    )
    assert row is not None
    return tuple(row)


async def test_replies_and_mentions_are_stored_as_given(nodes: list[PostgresMessageStore]) -> None:
    """reply_to and mentions come back from every read, and from a repeat's original."""
    await send(nodes[0], "a")
    sent = await send(nodes[0], "b", "@bob @carol", reply_to=1, mentions=(3, 2))
    assert (sent.message.reply_to, sent.message.mentions) == (1, [3, 2])
    stored = await nodes[1].get(1, 2)
    assert stored == sent.message
    assert (stored.edited_at, stored.deleted, stored.reactions) == (None, False, [])
    assert (await nodes[2].history(1)).messages[-1] == sent.message
    assert (await send(nodes[2], "b")).message == sent.message
    assert (await nodes[2].original(1, "b")) is not None
    with pytest.raises(ValueError, match="reply_to"):
        send(nodes[0], "c", reply_to=-1)
    with pytest.raises(ValueError, match="mentions"):
        send(nodes[0], "c", mentions=(2**63,))


async def test_an_edit_rewrites_the_text_and_gives_every_member_an_edited_entry(
    nodes: list[PostgresMessageStore],
) -> None:
    """The text, edited_at and mentions change; each member's inbox gets an `edited` entry,
    and the message entry before it shows the message as it is now."""
    await send(nodes[0], "a", "hello")
    outcome = await change(nodes[1], edit("hello @bob", at=5_000, mentions=(2,)))
    assert outcome.update == "edited"
    assert outcome.inbox_seqs == {1: 2, 2: 2, 3: 2}
    assert (outcome.message.text, outcome.message.edited_at, outcome.message.mentions) == (
        "hello @bob",
        5_000,
        [2],
    )
    for user in MEMBERS:
        entries = (await nodes[2].inbox(user, since=0, limit=10)).entries
        assert [(e.seq, e.update) for e in entries] == [(1, None), (2, "edited")]
        assert all(e.message == outcome.message for e in entries)
    assert await nodes[0].get(1, 1) == outcome.message
    assert (await nodes[0].history(1)).messages == [outcome.message]
    previews = await nodes[0].last_messages([1], max_chars=200)
    assert previews[1].text == "hello @bob"


async def test_the_same_text_again_appends_nothing(nodes: list[PostgresMessageStore]) -> None:
    """An edit to the text the message has writes nothing: no entry, no new edited_at."""
    await send(nodes[0], "a", "same")
    outcome = await change(nodes[0], edit("same", at=9_000))
    assert (outcome.changed, outcome.inbox_seqs, outcome.update) == (False, {}, "edited")
    assert outcome.message.edited_at is None
    assert await nodes[1].max_seq(2) == 1


async def test_a_change_to_a_missing_message_is_refused(nodes: list[PostgresMessageStore]) -> None:
    """No message with that id in that channel: MessageMissing, for every kind of change."""
    await send(nodes[0], "a", channel=2)
    for made in (edit("x"), delete(), react(1, "👍"), react(1, "👍", add=False)):
        with pytest.raises(MessageMissing):
            await change(nodes[0], made)
    assert await nodes[0].max_seq(1) == 1


async def test_a_deletion_overwrites_the_text_and_keeps_the_id(
    nodes: list[PostgresMessageStore], pools: list[asyncpg.Pool]
) -> None:
    """The body becomes empty in the row itself, mentions and reaction rows go, edited_at
    and reply_to stay, deleted_by is kept for the update entry; the id and seqs stay."""
    await send(nodes[0], "a", "first")
    await send(nodes[0], "b", "secret @bob", reply_to=1, mentions=(2,))
    await change(nodes[0], edit("secret @bob!", message=2, at=3_000, mentions=(2,)))
    await change(nodes[1], react(2, "👍", message=2))
    outcome = await change(nodes[2], delete(by=3, message=2))
    assert outcome.update == "deleted"
    assert outcome.inbox_seqs == {1: 5, 2: 5, 3: 5}
    gone = outcome.message
    assert (gone.text, gone.deleted, gone.mentions, gone.reactions) == ("", True, [], [])
    assert (gone.edited_at, gone.reply_to, gone.deleted_by) == (3_000, 1, 3)
    assert "deleted_by" not in gone.model_dump()
    assert await nodes[0].get(1, 2) == gone
    row = await pools[0].fetchrow("SELECT body, mentions FROM messages WHERE message_id = 2")
    assert row is not None
    assert (bytes(row["body"]), row["mentions"]) == (b"", [])
    assert await pools[0].fetchval("SELECT count(*) FROM message_reactions") == 0
    entries = (await nodes[0].inbox(2, since=0, limit=10)).entries
    assert [e.update for e in entries] == [None, None, "edited", "reactions", "deleted"]
    assert all(e.message == gone for e in entries[1:])
    assert await nodes[0].last_message_id(1) == 2


async def test_a_deleted_message_refuses_edits_and_reactions_and_is_not_deleted_twice(
    nodes: list[PostgresMessageStore],
) -> None:
    """Deleting again appends nothing; editing, reacting or unreacting is MessageIsDeleted."""
    await send(nodes[0], "a")
    await change(nodes[0], delete(by=1))
    again = await change(nodes[1], delete(by=2))
    assert (again.changed, again.message.deleted_by) == (False, 1)
    for made in (edit("back"), react(1, "👍"), react(1, "👍", add=False)):
        with pytest.raises(MessageIsDeleted):
            await change(nodes[2], made)
    assert await nodes[0].max_seq(3) == 2


async def test_reactions_keep_their_order_and_an_emptied_emoji_comes_back_last(
    nodes: list[PostgresMessageStore],
) -> None:
    """Emoji in the order they joined the list, users in the order they reacted; an emoji
    keeps its place while anyone reacts with it, leaves when nobody does, and comes back
    at the end; a repeat or an absent removal appends nothing."""
    await send(nodes[0], "a")
    for user, emoji in ((2, "👍"), (3, "🎉"), (1, "👍"), (1, "🎉"), (3, "👍")):
        assert (await change(nodes[user - 1], react(user, emoji))).changed
    assert listed(await nodes[0].get(1, 1)) == [("👍", [2, 1, 3]), ("🎉", [3, 1])]
    assert not (await change(nodes[1], react(2, "👍"))).changed
    assert not (await change(nodes[1], react(2, "🎉", add=False))).changed
    removed = await change(nodes[2], react(2, "👍", add=False))
    assert listed(removed.message) == [("👍", [1, 3]), ("🎉", [3, 1])]
    for user in (1, 3):
        await change(nodes[0], react(user, "👍", add=False))
    assert listed(await nodes[1].get(1, 1)) == [("🎉", [3, 1])]
    back = await change(nodes[0], react(2, "👍"))
    assert listed(back.message) == [("🎉", [3, 1]), ("👍", [2])]
    assert back.inbox_seqs == {1: 10, 2: 10, 3: 10}
    entries = (await nodes[2].inbox(3, since=0, limit=20)).entries
    assert [e.update for e in entries] == [None, *["reactions"] * 9]
    assert all(e.message == back.message for e in entries)


async def test_reacting_never_rewrites_the_message_row(
    nodes: list[PostgresMessageStore], pools: list[asyncpg.Pool]
) -> None:
    """The message row keeps its place and its writer through reactions; an edit moves it."""
    await send(nodes[0], "a", "x" * 100_000)
    before = await row_version(pools[0])
    await change(nodes[0], react(1, "👍"))
    await change(nodes[1], react(2, "👍"))
    await change(nodes[2], react(1, "👍", add=False))
    assert await row_version(pools[0]) == before
    await change(nodes[0], edit("short"))
    assert await row_version(pools[0]) != before


async def test_at_most_twenty_emoji_but_more_people_on_one(
    nodes: list[PostgresMessageStore],
) -> None:
    """A new emoji past the twentieth is TooManyReactions; another user on one that is
    there is fine; once one emoji leaves, a new one fits."""
    await send(nodes[0], "a")
    emoji = [chr(0x1F600 + n) for n in range(MAX_REACTION_EMOJI)]
    outcomes = await asyncio.gather(*(change(nodes[0], react(1, each)) for each in emoji))
    assert all(outcome.changed for outcome in outcomes)
    with pytest.raises(TooManyReactions):
        await change(nodes[1], react(2, "🦀"))
    assert (await change(nodes[1], react(2, emoji[0]))).changed
    await change(nodes[2], react(1, emoji[5], add=False))
    assert (await change(nodes[2], react(3, "🦀"))).changed
    reactions = listed(await nodes[0].get(1, 1))
    assert len(reactions) == MAX_REACTION_EMOJI
    assert reactions[-1] == ("🦀", [3])


async def test_an_emoji_with_u0000_is_stored_without_failing_the_batch(
    nodes: list[PostgresMessageStore],
) -> None:
    """Emoji are bytes in the table, so any string the service lets through round-trips."""
    await send(nodes[0], "a")
    outcome = await change(nodes[0], react(1, "a\x00b"))
    assert listed(outcome.message) == [("a\x00b", [1])]
    assert listed(await nodes[1].get(1, 1)) == [("a\x00b", [1])]


async def test_a_refused_change_fails_alone_and_the_batch_keeps_call_order(
    nodes: list[PostgresMessageStore], pools: list[asyncpg.Pool]
) -> None:
    """Sends and changes queued together are one transaction: the refused changes raise,
    the rest are stored, and seqs follow the order they were queued in; a change may name
    a message sent earlier in the same batch."""
    await send(nodes[0], "a")
    await change(nodes[0], delete(message=1))
    await send(nodes[0], "b")
    queued: list[asyncio.Future[Any]] = [
        send(nodes[0], "c", "third"),
        change(nodes[0], edit("nope", message=99)),
        change(nodes[0], edit("second, edited", message=2)),
        change(nodes[0], react(1, "👍", message=1)),
        send(nodes[0], "d", "fourth"),
        change(nodes[0], react(2, "👍", message=4)),
        change(nodes[0], edit("third", message=3)),
    ]
    answers = await asyncio.gather(*queued, return_exceptions=True)
    third, missing, edited, deleted, fourth, reacted, same = answers
    assert isinstance(missing, MessageMissing)
    assert isinstance(deleted, MessageIsDeleted)
    assert isinstance(third, AcceptedMessage)
    assert isinstance(fourth, AcceptedMessage)
    assert isinstance(edited, ChangeOutcome)
    assert isinstance(reacted, ChangeOutcome)
    assert isinstance(same, ChangeOutcome)
    assert (third.message.message_id, fourth.message.message_id) == (3, 4)
    assert (third.seq, edited.inbox_seqs[1], fourth.seq, reacted.inbox_seqs[1]) == (4, 5, 6, 7)
    assert not same.changed
    assert listed(reacted.message) == [("👍", [2])]
    writers = await pools[0].fetch(
        "SELECT DISTINCT xmin::text FROM inbox WHERE user_id = 1 AND seq >= 4"
    )
    assert len(writers) == 1
    assert await nodes[1].max_seq(2) == 7


async def test_changes_from_three_nodes_on_one_message_take_turns_and_converge(
    nodes: list[PostgresMessageStore],
) -> None:
    """Reactions and edits from three nodes at once on one message, between sends to its
    channel: every inbox gets seqs 1..N without gaps; replaying the changed outcomes in
    seq order on the sent message gives each outcome's message in turn, and the last is
    what every node reads."""
    sent = await send(nodes[0], "a", "start")
    made: dict[int, list[MessageChange | str]] = {n: [] for n in range(3)}
    for n in range(3):
        for round_ in range(4):
            for user in MEMBERS:
                made[n].append(react(user, ["👍", "🎉", "🦀"][(user + round_) % 3]))
            made[n].append(edit(f"node {n} round {round_}", at=10 * round_ + n))
            made[n].append(f"node {n} send {round_}")
            made[n].append(react(1 + n, "👍", add=False))

    async def run(n: int) -> list[tuple[MessageChange, ChangeOutcome]]:
        """One node's calls, each awaited before the next: many small racing batches."""
        outcomes = []
        for each in made[n]:
            if isinstance(each, str):
                await send(nodes[n], each, sender=1 + n)
            else:
                outcomes.append((each, await change(nodes[n], each)))
        return outcomes

    results = [pair for pairs in await asyncio.gather(*map(run, range(3))) for pair in pairs]
    applied = sorted(
        (pair for pair in results if pair[1].changed), key=lambda p: p[1].inbox_seqs[1]
    )
    total = 1 + 12 + len(applied)
    for user in MEMBERS:
        entries = (await nodes[user - 1].inbox(user, since=0, limit=1000)).entries
        assert [e.seq for e in entries] == list(range(1, total + 1))
        assert all(outcome.inbox_seqs[user] == outcome.inbox_seqs[1] for _, outcome in applied)
    assert [m.message_id for m in (await nodes[1].history(1, limit=100)).messages] == list(
        range(1, 14)
    )
    state = sent.message
    for each, outcome in applied:
        _, state = changed(state, each)
        assert state == outcome.message
    for node in nodes:
        assert await node.get(1, 1) == state
    assert sum(outcome.update == "edited" for _, outcome in applied) == 12


async def test_a_change_waits_for_another_nodes_lock_on_the_message_and_sees_its_write(
    nodes: list[PostgresMessageStore], schema_url: str, pools: list[asyncpg.Pool]
) -> None:
    """While another node's transaction holds the message row (deleting it), a reaction
    waits; once that commits, the reaction sees the deletion and is refused."""
    await send(nodes[0], "a", "text")
    other = await asyncpg.connect(schema_url)
    try:
        transaction = other.transaction()
        await transaction.start()
        await other.execute(
            "UPDATE messages SET body = '', deleted_by = 2 WHERE channel_id = 1 AND message_id = 1"
        )
        waiting = change(nodes[1], react(1, "👍"))
        for _ in range(500):
            assert not waiting.done(), "the reaction did not wait for the other node's lock"
            blocked = await pools[2].fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))",
                other.get_server_pid(),
            )
            if blocked:
                break
            await asyncio.sleep(0.01)
        else:
            pytest.fail("the reaction never waited for the other node's transaction")
        await transaction.commit()
        with pytest.raises(MessageIsDeleted):
            await asyncio.wait_for(waiting, 5)
    finally:
        await other.close()


async def test_scans_carry_the_present_state_and_update_kinds(
    nodes: list[PostgresMessageStore],
) -> None:
    """scan_messages gives messages as they are now; scan_inbox says each entry's kind."""
    await send(nodes[0], "a", "one")
    await send(nodes[0], "b", "two", reply_to=1, mentions=(2,))
    await change(nodes[0], react(2, "👍", message=1))
    await change(nodes[0], delete(message=2))
    messages = await nodes[1].scan_messages(limit=10)
    assert messages == [await nodes[1].get(1, 1), await nodes[1].get(1, 2)]
    assert listed(messages[0]) == [("👍", [2])]
    assert (messages[1].deleted, messages[1].deleted_by, messages[1].reply_to) == (True, 1, 1)
    records = await nodes[1].scan_inbox(after=(1, 0), limit=10)
    assert [(r.seq, r.message_id, r.update) for r in records if r.user_id == 1] == [
        (1, 1, None),
        (2, 2, None),
        (3, 1, "reactions"),
        (4, 2, "deleted"),
    ]


async def test_an_export_imported_into_an_empty_cluster_reads_and_changes_the_same(
    nodes: list[PostgresMessageStore],
) -> None:
    """Messages with reactions, edits and deletions, and inbox entries of every kind, put
    into an empty schema as an import does: the same records read back, and a later
    change continues as it would have on the source."""
    await send(nodes[0], "a", "one")
    await send(nodes[0], "b", "two")
    for user, emoji in ((2, "🎉"), (1, "👍"), (3, "🎉")):
        await change(nodes[0], react(user, emoji, message=1))
    await change(nodes[0], edit("one!", message=1, mentions=(3,)))
    await change(nodes[0], delete(by=2, message=2))
    messages = await nodes[0].scan_messages(limit=100)
    inbox = await nodes[0].scan_inbox(limit=100)
    async with fresh_schema() as url:
        pool = await open_postgres(url, max_size=2)
        await apply_postgres_migrations(pool, now_ms=1)
        target = PostgresTarget(pool, PostgresRows(pool))
        await target.put_messages(messages)
        await target.put_inbox(inbox)
        await target.finish()
        imported = PostgresMessageStore(pool)
        try:
            assert await imported.scan_messages(limit=100) == messages
            assert await imported.scan_inbox(limit=100) == inbox
            source = await change(nodes[0], react(2, "🎉", add=False))
            copy = await change(imported, react(2, "🎉", add=False))
            assert copy == source
        finally:
            await imported.close()
            await pool.close()


async def test_a_deleted_message_imported_without_deleted_by_stays_deleted(
    schema_url: str,
) -> None:
    """An export line leaves deleted_by out: imported, the message is still deleted (by its
    sender, as the cluster needs someone)."""
    pool = await open_postgres(schema_url, max_size=2)
    store = PostgresMessageStore(pool)
    try:
        line = StoredMessage(
            channel_id=1,
            message_id=1,
            sender_id=4,
            text="",
            created_at=1,
            client_msg_id="a",
            deleted=True,
        )
        await PostgresTarget(pool, PostgresRows(pool)).put_messages([line])
        stored = await store.get(1, 1)
        assert stored is not None
        assert (stored.deleted, stored.deleted_by) == (True, 4)
    finally:
        await store.close()
        await pool.close()
