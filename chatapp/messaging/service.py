"""Messaging: accepting sends and changes to messages, history and sync, on top of a
MessageStore."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Collection, Iterable, Iterator, Sequence
from typing import NamedTuple, Protocol

from chatapp.bus import Bus
from chatapp.clock import Clock
from chatapp.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    RateLimited,
    Refused,
    StoreFailed,
    Unavailable,
)
from chatapp.messaging.events import MessageAccepted, MessageUpdated
from chatapp.messaging.mentions import find_mentions, mentioned_names
from chatapp.messaging.models import (
    AcceptedMessage,
    ChangeOutcome,
    Deletion,
    Edit,
    InboxEntry,
    InboxPage,
    MessageChange,
    MessagePage,
    MessagePreview,
    ReactionChange,
    StoredMessage,
)
from chatapp.messaging.store import (
    MessageIsDeleted,
    MessageMissing,
    MessageStore,
    MessageStoreError,
    TooManyReactions,
)
from chatapp.ratelimit import RateLimiter

TEXT_MAX = 100_000
CLIENT_MSG_ID_MAX = 64
HISTORY_LIMIT_MAX = 200
SYNC_LIMIT_MAX = 1000
EMOJI_MAX = 16


class Membership(Protocol):
    """What messaging needs from social: who may post to and read a channel."""

    async def require_member(self, caller_id: int, channel_id: int) -> frozenset[int]:
        """The channel's members; NotFound or Forbidden(not_member) otherwise."""
        ...

    async def require_sender(self, caller_id: int, channel_id: int) -> frozenset[int]:
        """The channel's members, if the caller may put something new in it (a message, an
        edit, a reaction); NotFound or Forbidden (`not_member`, `blocked`) otherwise."""
        ...

    async def members(self, channel_id: int) -> frozenset[int] | None:
        """The channel's members; None when there is no such channel."""
        ...

    async def group_owner(self, channel_id: int) -> int | None:
        """The owner of a group; None for a direct channel or one that does not exist."""
        ...


class Named(Protocol):
    @property
    def user_id(self) -> int: ...

    @property
    def username(self) -> str: ...


class Directory(Protocol):
    """What messaging needs from accounts: the usernames that mentions name."""

    async def get_users(self, user_ids: Iterable[int]) -> Sequence[Named]:
        """The users of those ids that exist."""
        ...


class CheckedSend(NamedTuple):
    """A send that passed every check and can be stored (made once per send: a named
    tuple, which is made in a fifth of a frozen dataclass's time)."""

    sender_id: int
    channel_id: int
    client_msg_id: str
    text: str
    member_ids: frozenset[int]
    # Set when this send was stored before: it is answered with the original,
    # whatever has changed since (the sender may have left the channel).
    original: AcceptedMessage | None = None
    reply_to: int | None = None
    mentions: tuple[int, ...] = ()


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
        directory: Directory | None = None,
    ) -> None:
        self._store = store
        self._directory = directory
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
        reply_to: int | None = None,
        origin_connection: str | None = None,
    ) -> AcceptedMessage:
        """Check and store a send; the original when `(sender, client_msg_id)` was seen."""
        checked = await self.check(sender_id, channel_id, client_msg_id, text, reply_to=reply_to)
        return await self.store(checked, origin_connection=origin_connection)

    async def check(
        self,
        sender_id: int,
        channel_id: int,
        client_msg_id: str,
        text: str,
        *,
        reply_to: int | None = None,
    ) -> CheckedSend:
        """Every check a send must pass before it is stored (text, id, membership, the
        message it replies to), and the members it mentions.

        A repeat of a stored send is answered with the original, also where a
        check would refuse it now (the sender may have left the channel). The
        store is asked for the original only then: a repeat that passes is
        answered as one by the store's batch, which looks every send up anyway,
        so a new send costs one lookup, not two.
        """
        check_client_msg_id(client_msg_id)
        try:
            return await self._check_new(sender_id, channel_id, client_msg_id, text, reply_to)
        except (Refused, StoreFailed):
            try:
                original = await self._store.original(sender_id, client_msg_id)
            except MessageStoreError:
                raise _not_stored() from None
            if original is None:
                raise
        return CheckedSend(
            sender_id=sender_id,
            channel_id=original.message.channel_id,
            client_msg_id=client_msg_id,
            text=original.message.text,
            member_ids=frozenset(),
            original=original,
        )

    async def _check_new(
        self, sender_id: int, channel_id: int, client_msg_id: str, text: str, reply_to: int | None
    ) -> CheckedSend:
        check_text(text)
        members = await self._membership.require_sender(sender_id, channel_id)
        await self._count_action(sender_id)
        if reply_to is not None and await self.message(channel_id, reply_to) is None:
            raise InvalidInput("bad_reply", f"reply_to: channel {channel_id} has no such message")
        return CheckedSend(
            sender_id=sender_id,
            channel_id=channel_id,
            client_msg_id=client_msg_id,
            text=text,
            member_ids=members,
            reply_to=reply_to,
            mentions=await self._mentions(text, members, sender_id),
        )

    async def _count_action(self, user_id: int) -> None:
        """Sends and changes share one per-user rate limit."""
        if self._send_limiter is None:
            return
        retry_after = await self._send_limiter.acquire(str(user_id))
        if retry_after is not None:
            raise RateLimited(
                retry_after, f"too many messages; try again in {max(retry_after, 0.1):.1f} s"
            )

    async def _mentions(
        self, text: str, members: Collection[int], sender_id: int
    ) -> tuple[int, ...]:
        if self._directory is None or not mentioned_names(text):
            return ()
        users = await self._directory.get_users(members)
        by_name = {user.username: user.user_id for user in users}
        return tuple(find_mentions(text, by_name, sender_id=sender_id))

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
                reply_to=send.reply_to,
                mentions=send.mentions,
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
                message_json = accepted.message.model_dump_json()
                self._bus.publish(
                    MessageAccepted(
                        message=accepted.message,
                        inbox_seqs=accepted.inbox_seqs,
                        origin_connection=origin_connection,
                        message_json=message_json,
                    )
                )
                accepted = accepted._replace(message_json=message_json)
            if not answer.done():
                answer.set_result(accepted)

        stored.add_done_callback(landed)
        return answer

    async def edit(
        self, caller_id: int, channel_id: int, message_id: int, text: str
    ) -> StoredMessage:
        """New text for the caller's own message; the message as it is then."""
        check_text(text)
        members = await self._membership.require_sender(caller_id, channel_id)
        await self._count_action(caller_id)
        message = await self._existing(channel_id, message_id)
        if message.sender_id != caller_id:
            raise Forbidden("forbidden", "only its sender may edit a message")
        if message.deleted:
            raise _deleted()
        edit = Edit(
            channel_id=channel_id,
            message_id=message_id,
            text=text,
            mentions=await self._mentions(text, members, caller_id),
            edited_at=self._clock.now_ms(),
        )
        return (await self._change(edit, members)).message

    async def delete(
        self, caller_id: int, channel_id: int, message_id: int, *, caller_is_admin: bool = False
    ) -> ChangeOutcome:
        """Delete a message: its sender, the group's owner or a server admin may.

        An admin needs no membership; everyone else does. The outcome says whether this
        deleted it (not when it was deleted already), and whose message it was.
        """
        members = await self._membership.members(channel_id)
        if members is None:
            raise NotFound("not_found", f"no channel {channel_id}")
        if not caller_is_admin:
            members = await self._membership.require_member(caller_id, channel_id)
        await self._count_action(caller_id)
        message = await self._existing(channel_id, message_id)
        may_delete = caller_is_admin or caller_id == message.sender_id
        if not may_delete and await self._membership.group_owner(channel_id) != caller_id:
            raise Forbidden("forbidden", "only the sender or the group's owner may delete it")
        deletion = Deletion(channel_id=channel_id, message_id=message_id, deleted_by=caller_id)
        return await self._change(deletion, members)

    async def erase_sent(self, sender_id: int, channel_id: int, message_id: int) -> bool:
        """Delete one of the sender's own messages as `delete` does, for an account being
        deleted with its messages: no membership needed (the sender may have left), no send
        limit counted (the erase is the server's work, not the user's pace). The channel's
        members now get the `update` entry. False when there was nothing to delete."""
        members = await self._membership.members(channel_id)
        if members is None:
            return False
        deletion = Deletion(channel_id=channel_id, message_id=message_id, deleted_by=sender_id)
        try:
            outcome = await self._change(deletion, members)
        except NotFound:
            return False
        return outcome.changed

    async def react(
        self, caller_id: int, channel_id: int, message_id: int, emoji: str, *, add: bool
    ) -> None:
        """Add (or take back, `add=False`) the caller's reaction `emoji`.

        Taking one back, like deleting, is allowed where adding is not (a blocked direct
        channel).
        """
        check_emoji(emoji)
        membership = self._membership
        members = await (membership.require_sender if add else membership.require_member)(
            caller_id, channel_id
        )
        await self._count_action(caller_id)
        change = ReactionChange(
            channel_id=channel_id, message_id=message_id, user_id=caller_id, emoji=emoji, add=add
        )
        await self._change(change, members)

    async def _existing(self, channel_id: int, message_id: int) -> StoredMessage:
        message = await self.message(channel_id, message_id)
        if message is None:
            raise NotFound("not_found", f"channel {channel_id} has no message {message_id}")
        return message

    async def _change(self, change: MessageChange, members: frozenset[int]) -> ChangeOutcome:
        """Store a change; tell the bus when it changed something."""
        try:
            outcome = await self._store.change(change, member_ids=sorted(members))
        except MessageMissing:
            raise NotFound(
                "not_found", f"channel {change.channel_id} has no message {change.message_id}"
            ) from None
        except MessageIsDeleted:
            raise _deleted() from None
        except TooManyReactions:
            raise InvalidInput(
                "too_many_reactions", "a message carries at most 20 different emoji"
            ) from None
        except MessageStoreError:
            raise Unavailable(
                "store_unavailable", "the change could not be stored; try again"
            ) from None
        if outcome.changed:
            self._bus.publish(
                MessageUpdated(
                    update=outcome.update,
                    message=outcome.message,
                    inbox_seqs=outcome.inbox_seqs,
                    deleted_by=outcome.message.deleted_by,
                )
            )
        return outcome

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

    async def messages_stored(self) -> int | None:
        with _unavailable_on_store_error():
            return await self._store.messages_stored()

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


def _deleted() -> Conflict:
    return Conflict("message_deleted", "the message is deleted")


def check_emoji(emoji: str) -> None:
    """1 to 16 code points, none of them whitespace (or a lone surrogate)."""
    if not 1 <= len(emoji) <= EMOJI_MAX or any(c.isspace() for c in emoji):
        raise InvalidInput("bad_emoji", f"emoji: 1 to {EMOJI_MAX} characters, no whitespace")
    try:
        emoji.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput("bad_emoji", "emoji: must be valid Unicode") from None


def check_client_msg_id(client_msg_id: str) -> None:
    # ASCII and printable: exactly the characters from space to "~".
    if not (
        1 <= len(client_msg_id) <= CLIENT_MSG_ID_MAX
        and client_msg_id.isascii()
        and client_msg_id.isprintable()
    ):
        raise BadRequest(f"client_msg_id: 1 to {CLIENT_MSG_ID_MAX} printable ASCII characters")
