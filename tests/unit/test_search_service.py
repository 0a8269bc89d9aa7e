"""Search and its indexer on fakes: what a page holds when the index lags behind the
store, and how the indexer writes, falls behind, and catches up.

The modules are the real ones (`build_modules_on_fakes`); the index is
`FakeSearchIndex`, which a test may also write to directly, as a lagging or crashed
indexer would have left it.
"""

from __future__ import annotations

import asyncio

import pytest

from chatapp.errors import BadRequest, Forbidden, InvalidInput, NotFound
from chatapp.search import OBSERVED_EVENTS, Indexer, Search, SortKey
from chatapp.search.models import Document
from chatapp.search.source import document_of
from chatapp.search.words import text_digest, words_of
from chatapp.testing.fakes import FakeSearchIndex, ModulesOnFakes, build_modules_on_fakes


class Scene:
    """alice and bob in a group; search over a fake index, an indexer on the bus."""

    def __init__(self, modules: ModulesOnFakes, alice: int, bob: int, group: int) -> None:
        self.modules = modules
        self.alice, self.bob, self.group = alice, bob, group
        self.index = FakeSearchIndex()
        self.search = Search(self.index, modules.social, modules.messaging)
        self.indexer = Indexer(self.index, modules.messages, linger=0.0)
        modules.bus.subscribe_all(OBSERVED_EVENTS, self.indexer.observe, name="search")

    async def send(self, text: str, sender: int | None = None) -> int:
        accepted = await self.modules.messaging.accept(
            sender or self.alice, self.group, f"m{text}{sender}", text
        )
        return accepted.message.message_id

    async def settle(self) -> None:
        """Deliver the bus, then wait until the indexer has written and walked everything."""
        await self.modules.bus.deliver()
        for _ in range(500):
            if not self.indexer.backlog and not self.indexer.walking:
                return
            await asyncio.sleep(0.005)
        raise AssertionError("the indexer did not settle")

    async def ids(self, q: str, **options: object) -> list[int]:
        page = await self.search.search(self.alice, q, **options)  # type: ignore[arg-type]
        return [message.message_id for message in page.results]


async def scene() -> Scene:
    modules = build_modules_on_fakes()
    alice = (await modules.sign_up("alice")).user.user_id
    bob = (await modules.sign_up("bob")).user.user_id
    group = await modules.social.create_group(alice, "g", [bob])
    return Scene(modules, alice, bob, group.channel_id)


def planted(channel_id: int, message_id: int, text: str, created_at: int) -> Document:
    """A document as an indexer would have written it from `text`."""
    return Document(channel_id, message_id, created_at, tuple(words_of(text)), text_digest(text))


async def test_what_the_index_still_has_but_the_store_changed_is_left_out() -> None:
    """A message the index still holds by its old words (its edit or deletion not yet
    indexed) is not a result: results are read from the store and checked."""
    s = await scene()
    await s.indexer.start()
    first, second, third = [await s.send(f"pear {n}") for n in range(3)]
    await s.settle()
    await s.indexer.close()  # from here the index lags: nothing more is written
    await s.modules.messaging.edit(s.alice, s.group, first, "apple now")
    await s.modules.messaging.delete(s.alice, s.group, second)
    assert await s.ids("pear") == [third]
    assert await s.ids("apple") == []  # its new words are not indexed yet
    # Reading on past what fell out shows that nothing more is found: no empty last page.
    page = await s.search.search(s.alice, "pear", limit=1)
    assert [m.message_id for m in page.results] == [third]
    assert (page.has_more, page.next_before) == (False, None)


async def test_a_page_full_of_stale_entries_moves_on_past_them() -> None:
    """When every entry a few reads bring has fallen out, the page is empty but says there
    is more, and its `next_before` is past what was read; paging on reaches the rest."""
    s = await scene()
    await s.indexer.start()
    kept = await s.send("kiwi kept", sender=s.bob)
    stale = [await s.send(f"kiwi {n}") for n in range(30)]
    await s.settle()
    await s.indexer.close()
    for message_id in stale:
        await s.modules.messaging.delete(s.alice, s.group, message_id)
    seen: list[int] = []
    before: str | None = None
    pages = 0
    while True:
        page = await s.search.search(s.alice, "kiwi", limit=2, before=before)
        pages += 1
        seen += [m.message_id for m in page.results]
        if not page.has_more:
            break
        before = page.next_before
    assert seen == [kept]
    assert pages > 1


async def test_only_the_callers_channels_now() -> None:
    """A member who left a group no longer finds its messages; a channel given is checked."""
    s = await scene()
    await s.indexer.start()
    message_id = await s.send("fig", sender=s.bob)
    await s.settle()
    page = await s.search.search(s.bob, "fig")
    assert [m.message_id for m in page.results] == [message_id]
    await s.modules.social.remove_member(s.bob, s.group, s.bob)
    assert (await s.search.search(s.bob, "fig")).results == []
    with pytest.raises(Forbidden):
        await s.search.search(s.bob, "fig", channel_id=s.group)
    with pytest.raises(NotFound):
        await s.search.search(s.alice, "fig", channel_id=999)
    await s.indexer.close()


@pytest.mark.parametrize("q", ["", "x" * 201, "   ", "*", "()"])
async def test_queries_without_words_or_too_long_are_bad_queries(q: str) -> None:
    s = await scene()
    with pytest.raises(InvalidInput) as refused:
        await s.search.search(s.alice, q)
    assert refused.value.code == "bad_query"


async def test_limits_and_cursors_are_checked() -> None:
    s = await scene()
    for limit in (0, 101):
        with pytest.raises(BadRequest):
            await s.search.search(s.alice, "a", limit=limit)
    with pytest.raises(BadRequest):
        await s.search.search(s.alice, "a", before="not-a-cursor")
    assert (await s.search.search(s.alice, "a", before=SortKey(5, 1, 1).cursor())).results == []


async def test_edits_are_written_as_the_store_has_them_then() -> None:
    """An edit event is not trusted for its text: the message is read from the store when
    written, so an edit heard after its message was deleted buries it, never revives it."""
    s = await scene()
    await s.indexer.start()
    message_id = await s.send("plum draft")
    await s.modules.messaging.edit(s.alice, s.group, message_id, "plum final")
    await s.modules.messaging.delete(s.alice, s.group, message_id)
    await s.settle()
    assert s.index.documents[(s.group, message_id)].digest is None
    await s.indexer.close()


async def test_a_full_buffer_drops_and_a_walk_reads_the_rest_from_the_store() -> None:
    """Past its limit the indexer drops events; a walk then reads what it missed, and the
    run ends complete."""
    s = await scene()
    s.indexer = Indexer(s.index, s.modules.messages, linger=0.0, pending_messages=2)
    s.modules.bus.subscribe_all(OBSERVED_EVENTS, s.indexer.observe, name="search-small")
    await s.indexer.start()
    await s.settle()
    sent = [await s.send(f"lime {n}") for n in range(12)]
    await s.settle()
    assert s.indexer.dropped > 0
    assert sorted(await s.ids("lime")) == sorted(sent)
    await s.indexer.close()
    assert s.index.clean is True


async def test_a_failing_index_keeps_what_it_could_not_write() -> None:
    """A write that fails is tried again: nothing noted is lost meanwhile."""
    s = await scene()
    await s.indexer.start()
    await s.settle()
    s.index.fail_only = {"commit"}
    s.index.fail_next = True
    message_id = await s.send("date")
    await s.settle()
    assert s.index.failures == 1
    assert await s.ids("date") == [message_id]
    await s.indexer.close()


async def test_an_unclean_start_checks_every_message() -> None:
    """After a run that did not end, the start compares the whole store with the index:
    a message missed is added, a stale text replaced, a message the store lacks dropped."""
    s = await scene()
    missed = await s.send("cherry missed")
    changed = await s.send("cherry old")
    await s.modules.messaging.edit(s.alice, s.group, changed, "cherry new")
    message = await s.modules.messages.get(s.group, changed)
    assert message is not None
    s.index.documents.clear()
    async with s.index.changing([s.group]) as changes:
        await changes.add([planted(s.group, changed, "cherry old", message.created_at)])
        await changes.add([planted(s.group, 77, "cherry ghost", message.created_at)])
    # An indexer that heard none of it, on an index whose run never ended (a new one).
    s.indexer = Indexer(s.index, s.modules.messages, linger=0.0)
    await s.indexer.start()
    await s.settle()
    stored = await s.modules.messages.get(s.group, missed)
    assert stored is not None
    assert s.index.documents[(s.group, missed)].digest == document_of(stored).digest
    assert s.index.documents[(s.group, changed)].digest == text_digest("cherry new")
    assert (s.group, 77) not in s.index.documents
    assert s.index.channel_marks == {s.group: 2}
    await s.indexer.close()


async def test_a_catch_up_whose_reads_fail_starts_again() -> None:
    """A clean start's catch-up reads the index's marks to know what to read; when that
    read fails, the walk is made again, and what was stored meanwhile is still found."""
    s = await scene()
    sent = [await s.send(f"melon {n}") for n in range(3)]
    s.index.clean = True  # as a clean stop left it, with nothing of these indexed
    s.index.fail_only = {"marks"}
    s.index.fail_next = True
    s.indexer = Indexer(s.index, s.modules.messages, linger=0.0)
    await s.indexer.start()
    await s.settle()
    assert s.index.failures == 1
    assert sorted(await s.ids("melon")) == sorted(sent)
    await s.indexer.close()
    assert s.index.clean is True


async def test_a_stop_leaves_a_long_backlog_to_the_next_start() -> None:
    """A stop writes what is noted for a bounded time only; what is left ends the run as
    unclean, so the next start's whole walk reads it from the store and finds it."""
    s = await scene()
    s.indexer = Indexer(s.index, s.modules.messages, linger=0.0, close_budget=0.0)
    s.modules.bus.subscribe_all(OBSERVED_EVENTS, s.indexer.observe, name="search-2")
    await s.indexer.start()
    await s.settle()
    s.index.fail_next = True  # the first write fails, so the backlog is still there at close
    sent = [await s.send(f"plum {n}") for n in range(3)]
    await s.modules.bus.deliver()
    await s.indexer.close()
    assert s.index.clean is False
    s.indexer = Indexer(s.index, s.modules.messages, linger=0.0)
    await s.indexer.start()
    await s.settle()
    assert sorted(await s.ids("plum")) == sorted(sent)
    await s.indexer.close()
    assert s.index.clean is True
