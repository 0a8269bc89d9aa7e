"""Conversations on fakes: the channel object's preview, how often it is read, the list's order."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import pytest

from chatapp.conversations import Conversations
from chatapp.conversations.previews import LastMessages
from chatapp.errors import Unavailable
from chatapp.messaging import MessagePreview, Messaging
from chatapp.protocol.http import PREVIEW_CHARS
from chatapp.testing.fakes import FakeMessageStore, ModulesOnFakes, build_modules_on_fakes


class CountingMessageStore(FakeMessageStore):
    """The fake message store, noting every batch of previews it is asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.preview_reads: list[tuple[int, ...]] = []

    async def last_messages(
        self, channel_ids: Sequence[int], *, max_chars: int
    ) -> dict[int, MessagePreview]:
        self.preview_reads.append(tuple(channel_ids))
        return await super().last_messages(channel_ids, max_chars=max_chars)


@dataclass
class World:
    modules: ModulesOnFakes
    store: CountingMessageStore
    messaging: Messaging
    conversations: Conversations
    alice: int
    bob: int

    async def send(self, channel_id: int, text: str, cmid: str, sender: int | None = None) -> None:
        self.modules.clock.advance(1)
        await self.messaging.accept(sender or self.alice, channel_id, cmid, text)
        await self.modules.bus.deliver()  # the sender's read marker follows its message


async def world() -> World:
    modules = build_modules_on_fakes()
    alice, bob = [(await modules.sign_up(name)).user.user_id for name in ("alice", "bob")]
    store = CountingMessageStore()
    messaging = Messaging(store, modules.social, modules.bus, modules.clock)
    return World(modules, store, messaging, Conversations(modules.social, messaging), alice, bob)


async def test_a_channel_without_messages_has_no_preview_and_is_read_once() -> None:
    """last_message is None for a new channel; the views of every member read it once."""
    w = await world()
    group = await w.modules.social.create_group(w.alice, "g", [w.bob])

    mine = await w.conversations.view(group, w.alice)
    theirs = await w.conversations.view(group, w.bob)

    assert (mine.last_message, theirs.last_message) == (None, None)
    assert w.store.preview_reads == [(group.channel_id,)]


async def test_the_preview_is_cut_and_read_once_while_it_is_the_last() -> None:
    """A long text is cut to PREVIEW_CHARS with truncated; the views of every member read it
    once, and a new message is read again."""
    w = await world()
    group = await w.modules.social.create_group(w.alice, "g", [w.bob])
    await w.send(group.channel_id, "x" * (PREVIEW_CHARS + 1), "c1")

    mine = await w.conversations.view(group, w.alice)
    theirs = await w.conversations.view(group, w.bob)

    assert mine.last_message == theirs.last_message
    assert mine.last_message is not None
    assert (mine.last_message.text, mine.last_message.truncated) == ("x" * PREVIEW_CHARS, True)
    assert (mine.last_message.message_id, mine.last_message.sender_id) == (1, w.alice)
    assert w.store.preview_reads == [(group.channel_id,)]

    await w.send(group.channel_id, "short", "c2", sender=w.bob)
    view = await w.conversations.view(group, w.alice)

    assert view.last_message is not None
    assert (view.last_message.text, view.last_message.truncated) == ("short", False)
    assert (view.last_message.message_id, view.last_message.sender_id) == (2, w.bob)
    assert (view.last_message_id, view.unread_count) == (2, 1)
    assert len(w.store.preview_reads) == 2


async def test_a_long_list_reads_previews_in_pieces_and_keeps_its_order() -> None:
    """70 channels: previews in reads of at most 32 channels, none read twice; the list is
    ordered by last activity (the last message's time, else the channel's creation)."""
    w = await world()
    groups = [await w.modules.social.create_group(w.alice, f"g{n}", [w.bob]) for n in range(70)]
    w.modules.clock.advance(1)
    for group in groups[10::2]:
        await w.send(group.channel_id, f"in {group.name}", f"c{group.channel_id}")

    listed = await w.conversations.list_for(w.bob)

    reads = w.store.preview_reads
    assert max(len(read) for read in reads) <= 32
    assert sorted(c for read in reads for c in read) == [g.channel_id for g in groups]
    written = [g.channel_id for g in reversed(groups[10::2])]
    silent = sorted((g.channel_id for g in groups if g.channel_id not in written), reverse=True)
    assert [view.channel_id for view in listed] == written + silent
    assert listed[0].last_message is not None
    assert listed[0].last_message.text == f"in {groups[68].name}"
    assert all(view.last_message is None for view in listed[len(written) :])

    again = await w.conversations.list_for(w.bob)

    assert again == listed
    assert w.store.preview_reads == reads  # nothing moved: nothing read


async def test_previews_beyond_what_is_kept_are_read_again() -> None:
    """LastMessages keeps a bounded number of previews, the least recently used going first."""
    w = await world()
    groups = [await w.modules.social.create_group(w.alice, f"g{n}", []) for n in range(3)]
    for group in groups:
        await w.send(group.channel_id, "hi", f"c{group.channel_id}")
    previews = LastMessages(w.messaging, max_chars=10, kept=2)
    ids = [group.channel_id for group in groups]

    counters, found = await previews.of(ids)
    await previews.of(ids[2:])

    assert counters == dict.fromkeys(ids, 1)
    assert sorted(found) == ids
    assert w.store.preview_reads == [tuple(ids)]  # the last two were kept
    await previews.of(ids[:1])
    assert w.store.preview_reads[-1] == (ids[0],)


async def test_requests_at_once_share_the_read_of_a_channel_never_seen() -> None:
    """Ten lists at once of channels never read before read each channel once, not ten times."""
    w = await world()
    groups = [await w.modules.social.create_group(w.alice, f"g{n}", [w.bob]) for n in range(40)]
    for group in groups:
        await w.send(group.channel_id, f"in {group.name}", f"c{group.channel_id}")

    lists = await asyncio.gather(*(w.conversations.list_for(w.bob) for _ in range(10)))

    assert all(listed == lists[0] for listed in lists)
    assert all(view.last_message is not None for view in lists[0])
    asked = sorted(c for read in w.store.preview_reads for c in read)
    assert asked == sorted(group.channel_id for group in groups)


async def test_a_store_that_cannot_read_is_store_unavailable() -> None:
    """A preview read that fails is 503 store_unavailable, as other reads are."""
    w = await world()
    group = await w.modules.social.create_group(w.alice, "g", [w.bob])
    await w.send(group.channel_id, "hi", "c1")
    w.store.fail_only = {"last_messages"}
    w.store.failing = True

    with pytest.raises(Unavailable):
        await w.conversations.list_for(w.alice)
