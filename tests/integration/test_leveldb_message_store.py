"""The LevelDB message store against real LevelDB folders."""

from __future__ import annotations

import asyncio
import collections
import re
import signal
import sys
import threading
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import plyvel
import pytest

from chatapp.messaging import (
    AcceptedMessage,
    MessageStore,
    MessageStoreError,
    StoredMessage,
)
from chatapp.messaging.adapters import LevelDBMessageStore
from chatapp.messaging.adapters.codec import decode_pointer, decode_receipt
from chatapp.messaging.adapters.leveldb_store import MAX_BATCH_SENDS
from chatapp.messaging.adapters.leveldb_writer import WRITE_HERE_MOST


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[LevelDBMessageStore]:
    opened = await LevelDBMessageStore.open(tmp_path / "messages")
    yield opened
    await opened.close()


async def send(
    store: MessageStore,
    client_msg_id: str,
    *,
    sender_id: int = 1,
    channel_id: int = 1,
    members: Sequence[int] = (1, 2),
    text: str | None = None,
) -> AcceptedMessage:
    return await store.append(
        sender_id=sender_id,
        channel_id=channel_id,
        client_msg_id=client_msg_id,
        text=f"text of {client_msg_id}" if text is None else text,
        member_ids=members,
        created_at=1_700_000_000_000,
    )


async def all_history(store: MessageStore, channel_id: int) -> list[StoredMessage]:
    """Every message of a channel, read forwards one small page at a time."""
    messages: list[StoredMessage] = []
    while True:
        after = messages[-1].message_id if messages else 0
        page = await store.history(channel_id, after=after, limit=7)
        messages += page.messages
        if not page.has_more:
            return messages


async def all_inbox(store: MessageStore, user_id: int) -> list[tuple[int, StoredMessage]]:
    """Every inbox entry of a user as (seq, message), one small page at a time."""
    entries: list[tuple[int, StoredMessage]] = []
    while True:
        since = entries[-1][0] if entries else 0
        page = await store.inbox(user_id, since=since, limit=7)
        entries += [(entry.seq, entry.message) for entry in page.entries]
        if not page.has_more:
            return entries


def ids(messages: Sequence[StoredMessage]) -> list[int]:
    return [message.message_id for message in messages]


async def until_writable(store: MessageStore, deadline: float = 10.0) -> None:
    """Wait until the store answers again after a failed write, while it reopens on its thread."""
    async with asyncio.timeout(deadline):
        while True:
            try:
                await store.max_seq(1)
            except MessageStoreError:
                await asyncio.sleep(0.01)
            else:
                return


async def test_append_stores_the_message_and_an_inbox_entry_per_member(
    store: LevelDBMessageStore,
) -> None:
    """An accepted message is readable by id, in history and in every member's inbox."""
    typed: MessageStore = store  # the adapter satisfies the contract, checked by mypy

    accepted = await typed.append(
        sender_id=1,
        channel_id=5,
        client_msg_id="c1",
        text="hello",
        member_ids=[2, 3, 2],
        created_at=1234,
    )

    expected = StoredMessage(
        channel_id=5, message_id=1, sender_id=1, text="hello", created_at=1234, client_msg_id="c1"
    )
    assert accepted == AcceptedMessage(
        message=expected, seq=1, inbox_seqs={1: 1, 2: 1, 3: 1}, duplicate=False
    )
    assert await typed.get(5, 1) == expected
    assert await typed.get(5, 2) is None
    assert await typed.get(6, 1) is None
    assert (await typed.history(5)).messages == [expected]
    for user_id in (1, 2, 3):
        page = await typed.inbox(user_id, since=0, limit=10)
        assert [(entry.seq, entry.message) for entry in page.entries] == [(1, expected)]
        assert await typed.max_seq(user_id) == 1
    assert await typed.last_message_id(5) == 1
    assert await typed.last_message_id(6) == 0
    assert await typed.max_seq(4) == 0


async def test_keys_and_values_follow_the_documented_layout(tmp_path: Path) -> None:
    """On disk: m/i/d keys with 8-byte big-endian ids, the text once, nothing under p.

    The folder is read back with plyvel directly, because the layout itself is
    the contract that presence (prefix p) and later migrations rely on.
    """
    store = await LevelDBMessageStore.open(tmp_path / "messages")
    await send(store, "first", sender_id=1, channel_id=258, members=[1, 2], text="only once")
    await store.close()

    db = plyvel.DB(str(tmp_path / "messages"))
    try:
        stored = dict(db.iterator())
    finally:
        db.close()

    def be(n: int) -> bytes:
        return n.to_bytes(8, "big")

    message_key = b"m" + be(258) + be(1)
    assert set(stored) == {
        message_key,
        b"i" + be(1) + be(1),
        b"i" + be(2) + be(1),
        b"d" + be(1) + b"first",
    }
    assert stored[message_key][0] == 1  # the format version byte
    assert decode_pointer(stored[b"i" + be(2) + be(1)]) == (258, 1)
    assert decode_receipt(stored[b"d" + be(1) + b"first"]) == (258, 1, 1)
    assert [value for value in stored.values() if b"only once" in value] == [stored[message_key]]


async def test_history_pages_both_ways_with_has_more(store: LevelDBMessageStore) -> None:
    """history pages older with before, newer with after, between both, and flags more."""
    for n in range(1, 11):
        await send(store, f"c{n}")

    async def page(**kwargs: int) -> tuple[list[int], bool]:
        result = await store.history(1, **kwargs)
        return ids(result.messages), result.has_more

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


async def test_history_walked_backwards_page_by_page_sees_every_message_once(
    store: LevelDBMessageStore,
) -> None:
    """Following has_more with before from the newest page yields 1..n exactly once."""
    for n in range(1, 24):
        await send(store, f"c{n}")

    seen: list[int] = []
    result = await store.history(1, limit=5)
    while True:
        seen = ids(result.messages) + seen
        if not result.has_more:
            break
        result = await store.history(1, before=seen[0], limit=5)

    assert seen == list(range(1, 24))


async def test_inbox_pages_in_seq_order_across_channels(store: LevelDBMessageStore) -> None:
    """A user's inbox interleaves all its channels by seq and pages with since."""
    for n in range(1, 6):
        await send(store, f"a{n}", channel_id=1, members=[1, 2])
        await send(store, f"b{n}", sender_id=3, channel_id=2, members=[3, 2])

    first = await store.inbox(2, since=0, limit=4)
    rest = await store.inbox(2, since=first.entries[-1].seq, limit=100)

    assert first.has_more
    assert not rest.has_more
    entries = first.entries + rest.entries
    assert [entry.seq for entry in entries] == list(range(1, 11))
    assert [entry.message.client_msg_id for entry in entries] == [
        f"{prefix}{n}" for n in range(1, 6) for prefix in "ab"
    ]
    assert [entry.seq for entry in (await store.inbox(1, since=0, limit=100)).entries] == [
        1,
        2,
        3,
        4,
        5,
    ]
    assert (await store.inbox(2, since=10, limit=5)).entries == []
    assert (await store.inbox(2, since=0, limit=0)).entries == []
    assert await store.max_seq(2) == 10


async def test_concurrent_appends_get_contiguous_ids_and_share_batches(
    store: LevelDBMessageStore,
) -> None:
    """500 concurrent sends: ids and seqs are 1..n with no gaps, written in far fewer batches."""
    members = {1: [1, 2, 3], 2: [2, 3, 4, 5], 3: [5, 1]}

    results = await asyncio.gather(
        *(
            send(
                store,
                f"c{n}",
                sender_id=members[n % 3 + 1][n % 2],
                channel_id=n % 3 + 1,
                members=members[n % 3 + 1],
            )
            for n in range(500)
        )
    )

    assert store.batches_written < len(results)
    assert not any(result.duplicate for result in results)
    for channel_id in members:
        stored = await all_history(store, channel_id)
        assert ids(stored) == list(range(1, len(stored) + 1))
        assert await store.last_message_id(channel_id) == len(stored)
    assert sum([await store.last_message_id(c) for c in members]) == 500
    expected_inboxes: dict[int, list[tuple[int, StoredMessage]]] = collections.defaultdict(list)
    for result in results:
        for user_id, seq in result.inbox_seqs.items():
            expected_inboxes[user_id].append((seq, result.message))
    for user_id, expected in expected_inboxes.items():
        inbox = await all_inbox(store, user_id)
        assert inbox == sorted(expected, key=lambda entry: entry[0])
        assert [seq for seq, _ in inbox] == list(range(1, len(inbox) + 1))


async def test_last_messages_are_each_channels_last_with_its_text_cut(
    tmp_path: Path,
) -> None:
    """One batched read: each channel's last message, its text cut to max_chars code points
    (an emoji is one and is never split), truncated when cut; channels without messages are
    absent. The same after a reopen, when everything is read from the tables."""
    folder = tmp_path / "messages"
    store = await LevelDBMessageStore.open(folder)
    try:
        await send(store, "a1", channel_id=1, text="first")
        await send(store, "a2", channel_id=1, text="a" * 199 + "😀" * 100_000 + "tail")
        await send(store, "b1", channel_id=2, sender_id=2, text="short 😀")
        await send(store, "c1", channel_id=3, text="x" * 200)
        await send(store, "d1", channel_id=4, text="x" * 201)
        expected = {
            1: (2, 1, "a" * 199 + "😀", True),
            2: (1, 2, "short 😀", False),
            3: (1, 1, "x" * 200, False),
            4: (1, 1, "x" * 200, True),
        }
        for attempt in ("written now", "after a reopen"):
            previews = await store.last_messages([4, 1, 77, 2, 3], max_chars=200)
            assert {
                c: (p.message_id, p.sender_id, p.text, p.truncated) for c, p in previews.items()
            } == expected, attempt
            assert all(p.channel_id == c for c, p in previews.items())
            assert previews[1].created_at == 1_700_000_000_000
            counters = await store.last_message_ids([4, 1, 77, 2, 3])
            assert counters == {4: 1, 1: 2, 77: 0, 2: 1, 3: 1}, attempt
            await store.close()
            store = await LevelDBMessageStore.open(folder)
        assert await store.last_messages([], max_chars=200) == {}
        with pytest.raises(ValueError, match="channel_id"):
            await store.last_messages([2**64], max_chars=200)
    finally:
        await store.close()


async def test_counters_read_for_a_list_are_kept_and_ids_go_on_from_them(
    tmp_path: Path,
) -> None:
    """After a reopen, counters read together (off the loop) are answered from memory next
    time, agree with the one-by-one read, and sends go on after them with no id used twice."""
    folder = tmp_path / "messages"
    store = await LevelDBMessageStore.open(folder)
    for n in range(3):
        await send(store, f"a{n}", channel_id=1)
    await send(store, "b0", channel_id=2)
    await store.close()

    store = await LevelDBMessageStore.open(folder)
    try:
        assert await store.last_message_ids([1, 2, 3]) == {1: 3, 2: 1, 3: 0}
        assert [await store.last_message_id(c) for c in (1, 2, 3)] == [3, 1, 0]
        sent = await asyncio.gather(
            send(store, "a3", channel_id=1), send(store, "c0", channel_id=3)
        )
        assert [(a.message.channel_id, a.message.message_id) for a in sent] == [(1, 4), (3, 1)]
        assert await store.last_message_ids([1, 2, 3]) == {1: 4, 2: 1, 3: 1}
        assert [m.message_id for m in await all_history(store, 1)] == [1, 2, 3, 4]
    finally:
        await store.close()


async def test_sends_awaited_in_order_get_increasing_ids(store: LevelDBMessageStore) -> None:
    """One caller's sends, each awaited before the next, are numbered in that order."""
    results = [await send(store, f"c{n}") for n in range(20)]

    assert [result.message.message_id for result in results] == list(range(1, 21))
    assert [result.seq for result in results] == list(range(1, 21))


async def test_long_text_with_emoji_and_non_ascii_round_trips_exactly(tmp_path: Path) -> None:
    """A 100,000-character text comes back identical, before and after a reopen."""
    unit = "\x00é漢👩🏽‍🚀\u200b \U0001f600\r\n\t"
    text = (unit * (100_000 // len(unit) + 1))[:100_000]
    assert len(text) == 100_000

    store = await LevelDBMessageStore.open(tmp_path / "messages")
    accepted = await send(store, "long", text=text)
    assert accepted.message.text == text
    await store.close()

    store = await LevelDBMessageStore.open(tmp_path / "messages")
    try:
        stored = await store.get(1, accepted.message.message_id)
        inbox = await store.inbox(2, since=0, limit=1)
        assert stored is not None
        assert stored.text == text
        assert inbox.entries[0].message.text == text
        assert (await store.history(1)).messages[0].text == text
    finally:
        await store.close()


async def test_repeated_send_in_the_same_batch_is_stored_once(
    store: LevelDBMessageStore,
) -> None:
    """Two sends of one client_msg_id queued together: one message, the second a duplicate."""
    first, again, other = await asyncio.gather(
        send(store, "same", text="one"),
        send(store, "same", text="two", channel_id=2),
        send(store, "other"),
    )

    assert store.batches_written == 1
    assert not first.duplicate
    assert again.duplicate
    assert again.message == first.message
    assert again.seq == first.seq
    assert again.inbox_seqs == {1: first.seq}
    assert other.message.message_id == 2
    assert ids((await store.history(1)).messages) == [1, 2]
    assert (await store.history(2)).messages == []
    assert [entry.seq for entry in (await store.inbox(2, since=0, limit=10)).entries] == [1, 2]


async def test_repeated_send_in_a_later_batch_returns_the_original_and_writes_nothing(
    store: LevelDBMessageStore,
) -> None:
    """A send repeated after its batch landed is answered from disk without a write."""
    first = await send(store, "same", text="one")
    written = store.batches_written

    again = await send(store, "same", text="two", channel_id=9, members=[1, 7])

    assert again.duplicate
    assert (again.message, again.seq) == (first.message, first.seq)
    assert store.batches_written == written
    assert await store.last_message_id(9) == 0
    assert await store.max_seq(7) == 0
    assert await store.max_seq(1) == 1


async def test_repeat_queued_behind_a_full_batch_sees_the_original(
    store: LevelDBMessageStore,
) -> None:
    """A batch holds at most MAX_BATCH_SENDS; a repeat queued past the cap finds the original.

    The repeat sits in the next batch, formed only once the first batch (still
    in flight when the repeat was queued) is on disk.
    """
    sends = [send(store, f"c{n}", members=[1]) for n in range(MAX_BATCH_SENDS)]
    sends += [send(store, "c0", members=[1]), send(store, "last", members=[1])]

    results = await asyncio.gather(*sends)

    assert store.batches_written == 2
    repeat, last = results[-2:]
    assert repeat.duplicate
    assert repeat.message == results[0].message
    assert last.message.message_id == MAX_BATCH_SENDS + 1
    assert await store.max_seq(1) == MAX_BATCH_SENDS + 1


async def test_a_send_looked_up_before_its_repeat_landed_is_answered_as_the_repeat(
    store: LevelDBMessageStore,
) -> None:
    """`original` found nothing while the first send waited in its batch; the repeat,
    queued behind a full batch, is still answered with the first send's message."""

    def submit(client_msg_id: str) -> asyncio.Future[AcceptedMessage]:
        return store.submit(
            sender_id=1,
            channel_id=1,
            client_msg_id=client_msg_id,
            text="text",
            member_ids=[1],
            created_at=1_700_000_000_000,
        )

    sends = []
    for n in range(MAX_BATCH_SENDS):
        assert await store.original(1, f"c{n}") is None
        sends.append(submit(f"c{n}"))
    # Checked while c0 waits in the first batch: absent from disk.
    assert await store.original(1, "c0") is None
    sends.append(submit("c0"))

    results = await asyncio.gather(*sends)

    assert store.batches_written == 1, "the repeat's batch wrote nothing"
    assert results[-1].duplicate
    assert results[-1].message == results[0].message
    assert await store.max_seq(1) == MAX_BATCH_SENDS
    found = await store.original(1, "c0")
    assert found is not None
    assert found.message == results[0].message


async def test_repeated_send_after_reopen_returns_the_original(tmp_path: Path) -> None:
    """Idempotency survives a restart: the repeat is matched against the disk."""
    store = await LevelDBMessageStore.open(tmp_path / "messages")
    first = await send(store, "same", members=[1, 2])
    await store.close()

    store = await LevelDBMessageStore.open(tmp_path / "messages")
    try:
        again = await send(store, "same", text="changed")
        later = await send(store, "new")
    finally:
        await store.close()

    assert again.duplicate
    assert (again.message, again.seq) == (first.message, first.seq)
    assert later.message.message_id == 2
    assert later.inbox_seqs == {1: 2, 2: 2}


async def test_reopen_recovers_every_counter_and_keeps_everything(tmp_path: Path) -> None:
    """After close and reopen, messages stay and each channel and inbox continues without gaps."""
    store = await LevelDBMessageStore.open(tmp_path / "messages")
    for n in range(30):
        await send(store, f"c{n}", channel_id=n % 3 + 1, members=[n % 3 + 1, 9])
    before = {channel: await all_history(store, channel) for channel in (1, 2, 3)}
    await store.close()

    store = await LevelDBMessageStore.open(tmp_path / "messages")
    try:
        assert {channel: await all_history(store, channel) for channel in (1, 2, 3)} == before
        assert await store.max_seq(9) == 30
        assert await store.last_message_id(2) == 10
        after = await send(store, "after", sender_id=2, channel_id=2, members=[2, 9])
    finally:
        await store.close()

    assert after.message.message_id == 11
    assert after.inbox_seqs == {2: 11, 9: 31}


async def test_close_finishes_queued_sends_then_refuses_more(tmp_path: Path) -> None:
    """close() lets queued sends land, then every method raises MessageStoreError."""
    store = await LevelDBMessageStore.open(tmp_path / "messages")
    pending = [asyncio.create_task(send(store, f"c{n}")) for n in range(50)]
    await asyncio.sleep(0)  # every task has queued its send

    await store.close()
    await store.close()  # a second close is harmless

    assert [task.result().message.message_id for task in pending] == list(range(1, 51))
    with pytest.raises(MessageStoreError, match="closed"):
        await send(store, "late")
    with pytest.raises(MessageStoreError, match="closed"):
        await store.history(1)
    reopened = await LevelDBMessageStore.open(tmp_path / "messages")
    try:
        assert await reopened.last_message_id(1) == 50
    finally:
        await reopened.close()


async def test_bad_arguments_fail_only_their_own_send(store: LevelDBMessageStore) -> None:
    """Ids out of range and non-ASCII client_msg_ids raise ValueError before queueing."""
    good = asyncio.create_task(send(store, "good"))

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

    assert (await good).message.message_id == 1
    assert await store.last_message_id(1) == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("channel_id", True),
        ("sender_id", "7"),
        ("created_at", 1.5),
        ("reply_to", "1"),
        ("text", b"bytes"),
        ("client_msg_id", 7),
        ("mentions", ["2"]),
    ],
)
async def test_arguments_of_the_wrong_type_are_refused_not_coerced(
    store: LevelDBMessageStore, field: str, value: object
) -> None:
    """True or "7" where an id belongs is refused with ValueError naming the field, as
    the strict message model refuses it, and nothing is stored."""
    arguments: dict[str, Any] = {
        "sender_id": 1,
        "channel_id": 1,
        "client_msg_id": "c",
        "text": "hi",
        "member_ids": [1, 2],
        "created_at": 1_700_000_000_000,
        "reply_to": None,
        "mentions": [2],
    }
    arguments[field] = value

    with pytest.raises(ValueError, match=field):
        await store.append(**arguments)
    assert await store.last_message_id(1) == 0


async def test_failed_write_fails_its_batch_and_the_next_batch_continues_without_gaps(
    tmp_path: Path,
) -> None:
    """A real I/O error fails every send of its batch; counters stay and later ids are contiguous.

    The fault is real, not simulated: once its 4 MiB memtable is full, LevelDB
    opens a new log file for the next write; with directories squatting on the
    next file names that open fails with EISDIR and LevelDB rejects the write.
    The writer then reopens the database, which fails too while the squatters
    stay; removing them clears the fault, and the store opens again by itself.
    """
    folder = tmp_path / "messages"
    store = await LevelDBMessageStore.open(folder)
    try:
        await asyncio.gather(
            *(send(store, f"fill{n}", members=[1], text="x" * 100_000) for n in range(60))
        )
        written = store.batches_written
        newest = max(int(m[1]) for p in folder.iterdir() if (m := re.match(r"(\d+)\.", p.name)))
        squatters = [folder / f"{n:06d}.log" for n in range(newest + 1, newest + 100)]
        for squatter in squatters:
            squatter.mkdir()

        async with asyncio.timeout(30):
            failed = await asyncio.gather(
                send(store, "a", members=[1, 2]),
                send(store, "b", channel_id=2, sender_id=3, members=[3]),
                send(store, "a", members=[1, 2]),
                return_exceptions=True,
            )
        assert all(isinstance(result, MessageStoreError) for result in failed), failed
        assert store.batches_written == written

        for squatter in squatters:
            squatter.rmdir()
        await until_writable(store)
        retried = await send(store, "a", members=[1, 2])
        other = await send(store, "b", channel_id=2, sender_id=3, members=[3])
    finally:
        await store.close()

    assert not retried.duplicate
    assert retried.message.message_id == 61
    assert retried.inbox_seqs == {1: 61, 2: 1}
    assert (other.message.message_id, other.seq) == (1, 1)
    reopened = await LevelDBMessageStore.open(folder)
    try:
        assert ids(await all_history(reopened, 1)) == list(range(1, 62))
        assert [seq for seq, _ in await all_inbox(reopened, 2)] == [1]
    finally:
        await reopened.close()


CHILD = """
import asyncio, pathlib, sys
from chatapp.messaging.adapters import LevelDBMessageStore

async def produce(store, producer):
    for n in range(10_000_000):
        accepted = await store.append(
            sender_id=producer % 3 + 1, channel_id=producer % 2 + 1,
            client_msg_id=f"p{producer}-{n}", text=f"text {producer} {n}",
            member_ids=[1, 2, 3], created_at=n,
        )
        m = accepted.message
        sys.stdout.write(f"{m.channel_id} {m.message_id} {m.sender_id} {accepted.seq} "
                         f"{m.client_msg_id} {producer} {n}\\n")
        sys.stdout.flush()

async def main():
    store = await LevelDBMessageStore.open(pathlib.Path(sys.argv[1]))
    await asyncio.gather(*(produce(store, p) for p in range(8)))

asyncio.run(main())
"""


async def test_every_acknowledged_send_survives_sigkill(tmp_path: Path) -> None:
    """A process killed mid-stream loses nothing it acknowledged, and ids stay contiguous.

    The child prints a line only after append returned; eight senders keep a
    batch in flight at all times, so the kill lands while writes are going on.
    Messages written but not yet acknowledged may survive too; ids must still
    be contiguous.
    """
    folder = tmp_path / "messages"
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CHILD,
        str(folder),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert child.stdout is not None
    assert child.stderr is not None
    lines: list[bytes] = []
    try:
        async with asyncio.timeout(60):
            while len(lines) < 200:
                line = await child.stdout.readline()
                assert line, (await child.stderr.read()).decode()
                lines.append(line)
        # Killing on a timer, not right after a read, lets the kill land
        # anywhere in the child's cycle, write and fsync included.
        await asyncio.sleep(0.02)
    finally:
        child.send_signal(signal.SIGKILL)
        lines += (await child.stdout.read()).splitlines(keepends=True)
        await child.stderr.read()
        await child.wait()
    assert child.returncode == -signal.SIGKILL
    acknowledged = [line.split() for line in lines if line.endswith(b"\n")]

    store = await LevelDBMessageStore.open(folder)
    try:
        for channel, message, sender, seq, client_msg_id, producer, n in acknowledged:
            stored = await store.get(int(channel), int(message))
            assert stored is not None
            assert stored.client_msg_id == client_msg_id.decode()
            assert stored.text == f"text {producer.decode()} {n.decode()}"
            entry = (await store.inbox(int(sender), since=int(seq) - 1, limit=1)).entries[0]
            assert (entry.seq, entry.message) == (int(seq), stored)
        stored_count = 0
        for channel_id in (1, 2):
            history = await all_history(store, channel_id)
            assert ids(history) == list(range(1, len(history) + 1))
            stored_count += len(history)
        for user_id in (1, 2, 3):
            inbox = await all_inbox(store, user_id)
            assert [seq for seq, _ in inbox] == list(range(1, stored_count + 1))
        assert stored_count >= len(acknowledged)

        resumed = await send(store, "after-crash", channel_id=1, members=[1, 2, 3])
        assert resumed.message.message_id == await store.last_message_id(1)
        assert resumed.message.message_id == len(await all_history(store, 1))
        assert resumed.inbox_seqs == dict.fromkeys((1, 2, 3), stored_count + 1)
    finally:
        await store.close()


class WriteTimer:
    """The writer's timer: notes the thread of every write it times, and makes each write
    seem to take `seconds`."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.threads: list[str] = []
        self._now = 0.0
        self._started = True

    def __call__(self) -> float:
        # Called when a write starts and when it ends.
        self._started = not self._started
        if not self._started:
            self.threads.append(threading.current_thread().name)
        else:
            self._now += self.seconds
        return self._now

    def last_on_loop(self) -> bool:
        return self.threads[-1] == threading.main_thread().name


async def test_a_lone_send_is_written_on_the_loop_while_writes_are_quick(tmp_path: Path) -> None:
    """A send alone in its batch skips the writer's thread, until a write takes longer than
    `WRITE_HERE_MOST`; from then on lone sends go to the thread until a write is quick
    again. Sends that come together are always written on the thread."""
    timer = WriteTimer()
    store = await LevelDBMessageStore.open(tmp_path / "messages", timer=timer)
    try:
        await send(store, "quick")
        assert timer.last_on_loop()
        timer.seconds = WRITE_HERE_MOST * 2
        await send(store, "slow")
        assert timer.last_on_loop()  # not known to be slow before it was written
        await send(store, "after the slow one")
        assert not timer.last_on_loop()
        timer.seconds = 0.0
        await send(store, "quick on the thread")
        assert not timer.last_on_loop()
        await send(store, "quick again")
        assert timer.last_on_loop()
        await asyncio.gather(*(send(store, f"together {n}") for n in range(3)))
        assert not timer.last_on_loop()
        assert [m.text for m in await all_history(store, 1)][-1] == "text of together 2"
    finally:
        await store.close()
