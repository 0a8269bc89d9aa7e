"""Messaging: accepting sends, history and sync, on top of a MessageStore."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from chatapp.bus import Bus
from chatapp.clock import Clock
from chatapp.errors import BadRequest, InvalidInput, RateLimited, Unavailable
from chatapp.messaging.events import MessageAccepted
from chatapp.messaging.models import (
    AcceptedMessage,
    InboxEntry,
    InboxPage,
    MessagePage,
    MessagePreview,
    StoredMessage,
)
from chatapp.messaging.store import MessageStore, MessageStoreError
from chatapp.ratelimit import RateLimiter

TEXT_MAX = 100_000
CLIENT_MSG_ID_MAX = 64
HISTORY_LIMIT_MAX = 200
SYNC_LIMIT_MAX = 1000


class Membership(Protocol):
    """What messaging needs from social: who may post to and read a channel."""

    async def require_member(self, caller_id: int, channel_id: int) -> frozenset[int]:
        """The channel's members; NotFound or Forbidden(not_member) otherwise."""
        ...


@dataclass(frozen=True, slots=True)
class CheckedSend:
    """A send that passed every check and can be stored (made once per send: kept light)."""

    sender_id: int
    channel_id: int
    client_msg_id: str
    text: str
    member_ids: frozenset[int]
    # Set when this send was stored before: it is answered with the original,
    # whatever has changed since (the sender may have left the channel).
    original: AcceptedMessage | None = None


class Messaging:
    def __init__(
        self,
        store: MessageStore,
        membership: Membership,
        bus: Bus,
        clock: Clock,
        *,
        send_limiter: RateLimiter | None = None,
        page_max_bytes: int | None = None,
    ) -> None:
        self._store = store
        self._page_max_bytes = page_max_bytes
        self._send_limiter = send_limiter
        self._membership = membership
        self._bus = bus
        self._clock = clock

    async def accept(
        self,
        sender_id: int,
        channel_id: int,
        client_msg_id: str,
        text: str,
        *,
        origin_connection: str | None = None,
    ) -> AcceptedMessage:
        """Check and store a send; the original when `(sender, client_msg_id)` was seen."""
        checked = await self.check(sender_id, channel_id, client_msg_id, text)
        return await self.store(checked, origin_connection=origin_connection)

    async def check(
        self, sender_id: int, channel_id: int, client_msg_id: str, text: str
    ) -> CheckedSend:
        """Every check a send must pass before it is stored (text, id, membership).

        A repeat of a stored send passes at once, so a retry gets the original.
        """
        check_client_msg_id(client_msg_id)
        # Inline rather than the context manager: this runs on every send.
        try:
            original = await self._store.original(sender_id, client_msg_id)
        except MessageStoreError:
            raise _not_stored() from None
        if original is not None:
            return CheckedSend(
                sender_id=sender_id,
                channel_id=original.message.channel_id,
                client_msg_id=client_msg_id,
                text=original.message.text,
                member_ids=frozenset(),
                original=original,
            )
        check_text(text)
        members = await self._membership.require_member(sender_id, channel_id)
        if self._send_limiter is not None:
            retry_after = await self._send_limiter.acquire(str(sender_id))
            if retry_after is not None:
                raise RateLimited(
                    retry_after, f"too many messages; try again in {max(retry_after, 0.1):.1f} s"
                )
        return CheckedSend(
            sender_id=sender_id,
            channel_id=channel_id,
            client_msg_id=client_msg_id,
            text=text,
            member_ids=members,
        )

    async def store(
        self, send: CheckedSend, *, origin_connection: str | None = None
    ) -> AcceptedMessage:
        """Make a checked send durable, then tell the bus."""
        return await self.submit(send, origin_connection=origin_connection)

    def submit(
        self, send: CheckedSend, *, origin_connection: str | None = None
    ) -> asyncio.Future[AcceptedMessage]:
        """Queue a checked send now; the future completes once it is on disk.

        Sends are stored in the order submitted, and MessageAccepted is
        published as each completes, in that same order (future callbacks run
        in the order the futures complete), so every inbox is told in seq order.
        """
        answer: asyncio.Future[AcceptedMessage] = asyncio.get_running_loop().create_future()
        if send.original is not None:
            answer.set_result(send.original)
            return answer
        try:
            stored = self._store.submit(
                sender_id=send.sender_id,
                channel_id=send.channel_id,
                client_msg_id=send.client_msg_id,
                text=send.text,
                member_ids=sorted(send.member_ids),
                created_at=self._clock.now_ms(),
            )
        except MessageStoreError:
            answer.set_exception(_not_stored())
            return answer

        def landed(stored: asyncio.Future[AcceptedMessage]) -> None:
            if stored.cancelled():
                answer.cancel()
                return
            error = stored.exception()
            if error is not None:
                answer.set_exception(
                    _not_stored() if isinstance(error, MessageStoreError) else error
                )
                return
            accepted = stored.result()
            if not accepted.duplicate:
                self._bus.publish(
                    MessageAccepted(
                        message=accepted.message,
                        inbox_seqs=accepted.inbox_seqs,
                        origin_connection=origin_connection,
                    )
                )
            if not answer.done():
                answer.set_result(accepted)

        stored.add_done_callback(landed)
        return answer

    async def history(
        self,
        caller_id: int,
        channel_id: int,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int = 50,
    ) -> MessagePage:
        await self._membership.require_member(caller_id, channel_id)
        if not 1 <= limit <= HISTORY_LIMIT_MAX:
            raise BadRequest(f"limit: must be 1 to {HISTORY_LIMIT_MAX}")
        with _unavailable_on_store_error():
            if self._page_max_bytes is None:
                return await self._store.history(
                    channel_id, before=before, after=after, limit=limit
                )
            return await self._history_within(channel_id, before, after, limit)

    async def inbox(
        self, user_id: int, *, since: int, limit: int, max_bytes: int | None = None
    ) -> InboxPage:
        """Entries after `since`: at most `limit`, and at most the page budget of text, but
        always at least one when there is one. `max_bytes` is a tighter budget that may
        leave the page empty (a caller filling what is left of a budget of its own)."""
        if not 1 <= limit <= SYNC_LIMIT_MAX:
            raise BadRequest(f"limit: must be 1 to {SYNC_LIMIT_MAX}")
        if since < 0:
            raise BadRequest("since: must not be negative")
        budgets = [b for b in (self._page_max_bytes, max_bytes) if b is not None]
        with _unavailable_on_store_error():
            if not budgets:
                return await self._store.inbox(user_id, since=since, limit=limit)
            return await self._inbox_within(
                user_id, since, limit, min(budgets), at_least_one=max_bytes is None
            )

    async def _inbox_within(
        self, user_id: int, since: int, limit: int, max_bytes: int, *, at_least_one: bool = True
    ) -> InboxPage:
        """A page that stops at `limit` entries or `max_bytes` of text, read in small pieces
        so that 1,000 messages of 100,000 characters are never in memory at once."""
        entries: list[InboxEntry] = []
        used, cursor = 0, since
        while len(entries) < limit:
            piece = await self._store.inbox(
                user_id, since=cursor, limit=min(_PIECE, limit - len(entries))
            )
            for entry in piece.entries:
                size = _text_bytes(entry.message)
                if (entries or not at_least_one) and used + size > max_bytes:
                    return InboxPage(entries=entries, has_more=True)
                entries.append(entry)
                used += size
                cursor = entry.seq
            if not piece.has_more:
                return InboxPage(entries=entries, has_more=False)
        return InboxPage(entries=entries, has_more=True)

    async def _history_within(
        self, channel_id: int, before: int | None, after: int | None, limit: int
    ) -> MessagePage:
        """History as the store pages it, stopping at `page_max_bytes` of text, read in pieces."""
        assert self._page_max_bytes is not None
        max_bytes = self._page_max_bytes
        taken: list[StoredMessage] = []
        used = 0
        downwards = after is None
        while len(taken) < limit:
            piece = await self._store.history(
                channel_id, before=before, after=after, limit=min(_PIECE, limit - len(taken))
            )
            # Read from the end nearest the cursor, as the store pages.
            ordered = list(reversed(piece.messages)) if downwards else piece.messages
            for message in ordered:
                size = _text_bytes(message)
                if taken and used + size > max_bytes:
                    return _page(taken, downwards, has_more=True)
                taken.append(message)
                used += size
                if downwards:
                    before = message.message_id
                else:
                    after = message.message_id
            if not piece.has_more:
                return _page(taken, downwards, has_more=False)
        return _page(taken, downwards, has_more=True)

    async def max_seq(self, user_id: int) -> int:
        with _unavailable_on_store_error():
            return await self._store.max_seq(user_id)

    async def last_message_id(self, channel_id: int) -> int:
        with _unavailable_on_store_error():
            return await self._store.last_message_id(channel_id)

    async def message(self, channel_id: int, message_id: int) -> StoredMessage | None:
        with _unavailable_on_store_error():
            return await self._store.get(channel_id, message_id)

    async def last_message_ids(self, channel_ids: Sequence[int]) -> dict[int, int]:
        """`last_message_id` of each channel, read in pieces of `_PIECE` channels."""
        found: dict[int, int] = {}
        with _unavailable_on_store_error():
            for first in range(0, len(channel_ids), _PIECE):
                found.update(
                    await self._store.last_message_ids(channel_ids[first : first + _PIECE])
                )
        return found

    async def last_messages(
        self, channel_ids: Sequence[int], *, max_chars: int
    ) -> dict[int, MessagePreview]:
        """The start of each channel's last message, read in pieces of `_PIECE` channels.

        No membership check: callers ask about channels the user is in. Each
        piece is one read of the store (one hop to a LevelDB reader thread,
        one query to PostgreSQL), so other reads take turns with a long list.
        """
        previews: dict[int, MessagePreview] = {}
        with _unavailable_on_store_error():
            for first in range(0, len(channel_ids), _PIECE):
                piece = channel_ids[first : first + _PIECE]
                previews.update(await self._store.last_messages(piece, max_chars=max_chars))
        return previews


# Entries read from the store at a time when a page has a byte budget.
_PIECE = 32


def _text_bytes(message: StoredMessage) -> int:
    text = message.text
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def _page(taken: list[StoredMessage], downwards: bool, *, has_more: bool) -> MessagePage:
    messages = list(reversed(taken)) if downwards else taken
    return MessagePage(messages=messages, has_more=has_more)


@contextlib.contextmanager
def _unavailable_on_store_error() -> Iterator[None]:
    try:
        yield
    except MessageStoreError:
        raise Unavailable(
            "store_unavailable", "messages cannot be read or written now; try again"
        ) from None


def _not_stored() -> Unavailable:
    return Unavailable("store_unavailable", "the message could not be stored; send it again")


def check_text(text: str) -> None:
    if not text:
        raise InvalidInput("text_empty", "text: a message needs at least one character")
    if len(text) > TEXT_MAX:
        raise InvalidInput("text_too_long", f"text: at most {TEXT_MAX} characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest("text: contains a lone surrogate, which is not Unicode text") from None


def check_client_msg_id(client_msg_id: str) -> None:
    # ASCII and printable: exactly the characters from space to "~".
    if not (
        1 <= len(client_msg_id) <= CLIENT_MSG_ID_MAX
        and client_msg_id.isascii()
        and client_msg_id.isprintable()
    ):
        raise BadRequest(f"client_msg_id: 1 to {CLIENT_MSG_ID_MAX} printable ASCII characters")
