"""Messaging on fakes: what a send must pass, what it publishes, how reads are bounded."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from chatapp.config import Settings
from chatapp.errors import BadRequest, Forbidden, InvalidInput, NotFound, RateLimited, Unavailable
from chatapp.messaging import MessageAccepted
from chatapp.messaging.service import CLIENT_MSG_ID_MAX, TEXT_MAX
from chatapp.testing.fakes import ModulesOnFakes, build_modules_on_fakes


@dataclass
class Chat:
    modules: ModulesOnFakes
    alice: int
    bob: int
    carol: int
    group: int
    """A group of alice (the owner) and bob; carol is not in it."""


async def chat(settings: Settings | None = None) -> Chat:
    modules = build_modules_on_fakes(settings)
    alice, bob, carol = [
        (await modules.sign_up(name)).user.user_id for name in ("alice", "bob", "carol")
    ]
    group = await modules.social.create_group(alice, "friends", [bob])
    return Chat(modules, alice, bob, carol, group.channel_id)


async def test_text_must_be_one_to_the_maximum_characters_of_unicode() -> None:
    """Empty text is text_empty, one too many is text_too_long, a lone surrogate bad_request;
    exactly TEXT_MAX characters is accepted."""
    c = await chat()
    messaging = c.modules.messaging
    with pytest.raises(InvalidInput) as empty:
        await messaging.accept(c.alice, c.group, "m1", "")
    with pytest.raises(InvalidInput) as long:
        await messaging.accept(c.alice, c.group, "m2", "x" * (TEXT_MAX + 1))
    with pytest.raises(BadRequest):
        await messaging.accept(c.alice, c.group, "m3", "\udc80")

    assert (empty.value.code, long.value.code) == ("text_empty", "text_too_long")
    accepted = await messaging.accept(c.alice, c.group, "m4", "x" * TEXT_MAX)
    assert accepted.message.message_id == 1


@pytest.mark.parametrize(
    "client_msg_id", ["", "x" * (CLIENT_MSG_ID_MAX + 1), "naïve", "line\nbreak", "tab\t", "\x7f"]
)
async def test_client_msg_id_outside_printable_ascii_is_refused(client_msg_id: str) -> None:
    """1 to 64 printable ASCII characters: anything else is bad_request, and nothing is stored."""
    c = await chat()
    with pytest.raises(BadRequest) as refused:
        await c.modules.messaging.accept(c.alice, c.group, client_msg_id, "hi")
    assert refused.value.code == "bad_request"
    assert await c.modules.messages.last_message_id(c.group) == 0


async def test_client_msg_id_edges_are_accepted() -> None:
    """Space, tilde and exactly 64 characters are all allowed."""
    c = await chat()
    for client_msg_id in (" ", "~", "x" * CLIENT_MSG_ID_MAX):
        await c.modules.messaging.accept(c.alice, c.group, client_msg_id, "hi")
    assert await c.modules.messages.last_message_id(c.group) == 3


async def test_membership_refusals_name_not_found_and_not_member() -> None:
    """A send to no channel is NotFound(not_found); to someone else's, Forbidden(not_member)."""
    c = await chat()
    with pytest.raises(NotFound) as missing:
        await c.modules.messaging.accept(c.alice, 999, "m1", "hi")
    with pytest.raises(Forbidden) as outsider:
        await c.modules.messaging.accept(c.carol, c.group, "m1", "hi")
    assert (missing.value.code, outsider.value.code) == ("not_found", "not_member")
    assert c.modules.bus.of_type(MessageAccepted) == []


async def test_sends_past_the_burst_are_rate_limited_until_tokens_return() -> None:
    """send_burst sends pass at once; the next is RateLimited with the wait; time refills it.
    Another sender has a bucket of its own."""
    c = await chat(Settings(send_burst=3, send_rate_per_second=2.0))
    messaging = c.modules.messaging
    for n in range(3):
        await messaging.accept(c.alice, c.group, f"m{n}", "hi")
    with pytest.raises(RateLimited) as limited:
        await messaging.accept(c.alice, c.group, "m3", "hi")

    assert limited.value.code == "rate_limited"
    assert limited.value.retry_after == pytest.approx(0.5)
    await messaging.accept(c.bob, c.group, "b0", "hi")
    c.modules.clock.advance(0.5)
    await messaging.accept(c.alice, c.group, "m3", "hi")


async def test_a_repeat_is_answered_with_the_original_when_the_bucket_is_empty() -> None:
    """With no token left, a new send is RateLimited but a repeat of a stored one gets its
    original: the limit never refuses a repeat."""
    c = await chat(Settings(send_burst=1, send_rate_per_second=0.01))
    messaging = c.modules.messaging
    first = await messaging.accept(c.alice, c.group, "m0", "hi")
    with pytest.raises(RateLimited):
        await messaging.accept(c.alice, c.group, "m1", "hi")

    again = await messaging.accept(c.alice, c.group, "m0", "hi")

    assert again.duplicate
    assert (again.message, again.seq) == (first.message, first.seq)


async def test_a_repeat_returns_the_original_even_after_the_sender_left() -> None:
    """Same client_msg_id again: the original (duplicate=True), though the sender has left
    the group and the text differs; nothing new is stored or published, no token is spent."""
    c = await chat(Settings(send_burst=1, send_rate_per_second=0.001))
    messaging = c.modules.messaging
    original = await messaging.accept(c.bob, c.group, "once", "first")
    await c.modules.social.remove_member(c.bob, c.group, c.bob)

    repeat = await messaging.accept(c.bob, c.group, "once", "second")

    assert repeat.duplicate
    assert repeat.message == original.message
    assert repeat.message.text == "first"
    assert await c.modules.messages.last_message_id(c.group) == 1
    assert len(c.modules.bus.of_type(MessageAccepted)) == 1


async def test_an_accepted_send_is_published_once_with_every_inbox_seq() -> None:
    """MessageAccepted names the message, each member's seq, the origin connection, and
    the message as JSON for this process alone."""
    c = await chat()
    await c.modules.messaging.accept(c.bob, c.group, "warm-up", "hi")
    accepted = await c.modules.messaging.accept(
        c.alice, c.group, "m1", "hello", origin_connection="node-7"
    )

    (_, event) = c.modules.bus.of_type(MessageAccepted)
    assert event == MessageAccepted(
        message=accepted.message,
        inbox_seqs={c.alice: 2, c.bob: 2},
        origin_connection="node-7",
        message_json=accepted.message.model_dump_json(),
    )
    # Encoded once, for the ack and for the fan-out, and never sent to another process.
    assert accepted.message_json == event.message_json
    assert "message_json" not in event.model_dump()
    assert accepted.seq == 2
    assert accepted.message.created_at == c.modules.clock.now_ms()


async def test_a_store_that_cannot_write_refuses_with_store_unavailable() -> None:
    """A failed write is Unavailable(store_unavailable), publishes nothing, leaves no gap;
    a refused send whose repeat cannot be looked up answers the same."""
    c = await chat()
    messages = c.modules.messages
    messages.fail_only = {"submit"}
    messages.fail_next = True
    with pytest.raises(Unavailable) as unwritten:
        await c.modules.messaging.accept(c.alice, c.group, "m1", "hi")
    messages.fail_only = {"original"}
    messages.fail_next = True
    with pytest.raises(Unavailable) as unread:
        await c.modules.messaging.accept(c.carol, c.group, "m1", "hi")

    assert (unwritten.value.code, unread.value.code) == ("store_unavailable", "store_unavailable")
    assert c.modules.bus.of_type(MessageAccepted) == []
    accepted = await c.modules.messaging.accept(c.alice, c.group, "m1", "hi")
    assert (accepted.message.message_id, accepted.duplicate) == (1, False)


async def test_a_send_that_passes_its_checks_is_looked_up_only_by_the_store() -> None:
    """A new send, and a repeat that passes every check, are not looked up before they are
    queued: the store's batch finds the repeat, and the answer is the original all the same."""
    c = await chat()
    first = await c.modules.messaging.accept(c.alice, c.group, "m1", "hi")
    c.modules.messages.fail_only = {"original"}
    c.modules.messages.failing = True

    again = await c.modules.messaging.accept(c.alice, c.group, "m1", "changed")
    other = await c.modules.messaging.accept(c.alice, c.group, "m2", "new")

    assert again.duplicate
    assert (again.message, again.seq) == (first.message, first.seq)
    assert (other.message.message_id, other.duplicate) == (2, False)
    assert len(c.modules.bus.of_type(MessageAccepted)) == 2


async def test_a_closed_store_refuses_sends_and_reads_with_store_unavailable() -> None:
    """After the store closed, a checked send and every read answer store_unavailable."""
    c = await chat()
    checked = await c.modules.messaging.check(c.alice, c.group, "m1", "hi")
    await c.modules.messages.close()
    with pytest.raises(Unavailable, match="stored"):
        await c.modules.messaging.store(checked)
    with pytest.raises(Unavailable):
        await c.modules.messaging.max_seq(c.alice)
    with pytest.raises(Unavailable):
        await c.modules.messaging.inbox(c.alice, since=0, limit=10)


@pytest.mark.parametrize("limit", [0, 201])
async def test_history_limit_is_one_to_two_hundred(limit: int) -> None:
    """history refuses a limit outside 1..200 with bad_request."""
    c = await chat()
    with pytest.raises(BadRequest):
        await c.modules.messaging.history(c.alice, c.group, limit=limit)


async def test_history_is_for_members_and_pages_through_the_store() -> None:
    """A non-member is refused before the limit is looked at; members page newest first."""
    c = await chat()
    for n in range(1, 6):
        await c.modules.messaging.accept(c.alice, c.group, f"m{n}", f"text {n}")
    with pytest.raises(Forbidden):
        await c.modules.messaging.history(c.carol, c.group, limit=0)
    page = await c.modules.messaging.history(c.bob, c.group, before=5, limit=2)
    assert [m.message_id for m in page.messages] == [3, 4]
    assert page.has_more
    c.modules.messages.fail_next = True
    with pytest.raises(Unavailable):
        await c.modules.messaging.history(c.bob, c.group)


@pytest.mark.parametrize(("since", "limit"), [(0, 0), (0, 1001), (-1, 10)])
async def test_inbox_bounds_since_and_limit(since: int, limit: int) -> None:
    """inbox takes 1..1000 entries from a non-negative seq; anything else is bad_request."""
    c = await chat()
    with pytest.raises(BadRequest):
        await c.modules.messaging.inbox(c.alice, since=since, limit=limit)


async def test_inbox_gives_the_users_own_seqs() -> None:
    """Each member reads the message under their own seq; 1000 is an allowed limit."""
    c = await chat()
    await c.modules.messaging.accept(c.bob, c.group, "b1", "one")
    await c.modules.social.add_member(c.alice, c.group, c.carol)
    await c.modules.messaging.accept(c.alice, c.group, "a1", "two")
    page = await c.modules.messaging.inbox(c.carol, since=0, limit=1000)
    assert [(e.seq, e.message.text) for e in page.entries] == [(1, "two")]
    assert not page.has_more
