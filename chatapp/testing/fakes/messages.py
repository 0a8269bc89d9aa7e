"""A `MessageStore` in memory, with the LevelDB store's ids, idempotency, paging and changes."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from chatapp.messaging.models import (
    AcceptedMessage,
    ChangeOutcome,
    InboxEntry,
    InboxPage,
    InboxRecord,
    MessageChange,
    MessagePage,
    MessagePreview,
    SendRecord,
    StoredMessage,
    UpdateKind,
)
from chatapp.messaging.preview import cut_text
from chatapp.messaging.store import ChangeRefused, MessageMissing, MessageStoreError
from chatapp.testing.fakes.failures import CanFail
from chatapp.testing.fakes.message_changes import changed

_ID_COUNT = 2**64


@dataclass(slots=True)
class _Send:
    draft: StoredMessage
    member_ids: tuple[int, ...]
    future: asyncio.Future[AcceptedMessage]


@dataclass(slots=True)
class _Change:
    change: MessageChange
    member_ids: tuple[int, ...]
    future: asyncio.Future[ChangeOutcome]


@dataclass(frozen=True, slots=True)
class _Entry:
    """An inbox entry points at its message, which is read as it is now."""

    seq: int
    channel_id: int
    message_id: int
    update: UpdateKind | None


class FakeMessageStore(CanFail):
    """`MessageStore` in dicts: what `LevelDBMessageStore` does, without the disk.

    Channel message ids and inbox seqs are contiguous from 1; a repeated
    `(sender_id, client_msg_id)` stores nothing and returns the original with
    `duplicate=True`; arguments out of range raise `ValueError`; a closed store
    raises `MessageStoreError`.

    Edits, deletions and reactions follow the same rules as the engines':
    a change that changes nothing appends nothing, a refused one raises
    `ChangeRefused`, and every inbox entry reads its message as it is now.

    Sends and changes are stored as soon as they are submitted, unless the
    test calls `hold()`: then they wait, in order, until `release()`, so a
    test can look at what happens while a send is not yet durable. A repeat
    submitted while its original is held is answered as a duplicate, like a
    repeat in the same write batch.

    `failing`/`fail_next` (see `CanFail`) make reads raise and sends and
    changes fail their future with `MessageStoreError`; nothing is stored and
    no id is used.
    """

    error = MessageStoreError

    def __init__(self) -> None:
        super().__init__()
        self._channels: dict[int, list[StoredMessage]] = {}
        self._inboxes: dict[int, list[_Entry]] = {}
        # (sender_id, client_msg_id) -> (channel_id, message_id, sender's seq)
        self._receipts: dict[tuple[int, str], tuple[int, int, int]] = {}
        self._held: list[_Send | _Change] | None = None
        self._submitted = asyncio.Event()
        self._closed = False

    # -- writing -----------------------------------------------------------------

    async def append(
        self,
        *,
        sender_id: int,
        channel_id: int,
        client_msg_id: str,
        text: str,
        member_ids: Sequence[int],
        created_at: int,
        reply_to: int | None = None,
        mentions: Sequence[int] = (),
    ) -> AcceptedMessage:
        """See `MessageStore.append`."""
        return await self.submit(
            sender_id=sender_id,
            channel_id=channel_id,
            client_msg_id=client_msg_id,
            text=text,
            member_ids=member_ids,
            created_at=created_at,
            reply_to=reply_to,
            mentions=mentions,
        )

    def submit(
        self,
        *,
        sender_id: int,
        channel_id: int,
        client_msg_id: str,
        text: str,
        member_ids: Sequence[int],
        created_at: int,
        reply_to: int | None = None,
        mentions: Sequence[int] = (),
    ) -> asyncio.Future[AcceptedMessage]:
        """See `MessageStore.submit`."""
        self._ensure_open()
        _check_id("channel_id", channel_id)
        # The same checks, in the same order, as the LevelDB store.
        draft = StoredMessage(
            channel_id=channel_id,
            message_id=0,
            sender_id=sender_id,
            text=text,
            created_at=created_at,
            client_msg_id=client_msg_id,
            reply_to=reply_to,
            mentions=list(mentions),
        )
        _check_id("sender_id", sender_id)
        for user_id in member_ids:
            _check_id("member_ids", user_id)
        if reply_to is not None:
            _check_id("reply_to", reply_to)
        for user_id in mentions:
            _check_id("mentions", user_id)
        _check_client_msg_id(client_msg_id)
        text.encode("utf-8")  # UnicodeEncodeError (a ValueError) for a lone surrogate
        send = _Send(
            draft=draft,
            member_ids=tuple(dict.fromkeys((*member_ids, sender_id))),
            future=asyncio.get_running_loop().create_future(),
        )
        self._queue(send)
        return send.future

    async def change(self, change: MessageChange, *, member_ids: Sequence[int]) -> ChangeOutcome:
        """See `MessageStore.change`."""
        return await self.submit_change(change, member_ids=member_ids)

    def submit_change(
        self, change: MessageChange, *, member_ids: Sequence[int]
    ) -> asyncio.Future[ChangeOutcome]:
        """See `MessageStore.submit_change`: the members get entries as given, deduplicated."""
        self._ensure_open()
        _check_id("channel_id", change.channel_id)
        _check_id("message_id", change.message_id)
        for user_id in member_ids:
            _check_id("member_ids", user_id)
        queued = _Change(
            change=change,
            member_ids=tuple(dict.fromkeys(member_ids)),
            future=asyncio.get_running_loop().create_future(),
        )
        self._queue(queued)
        return queued.future

    def _queue(self, item: _Send | _Change) -> None:
        if self._held is not None:
            self._held.append(item)
            self._submitted.set()
        elif isinstance(item, _Send):
            self._commit(item)
        else:
            self._commit_change(item)

    def hold(self) -> None:
        """Keep every send and change submitted from now on waiting, until `release`."""
        if self._held is None:
            self._held = []

    def release(self) -> int:
        """Store the held sends and changes, in the order submitted; how many were held."""
        held, self._held = self._held or [], None
        for item in held:
            if isinstance(item, _Send):
                self._commit(item)
            else:
                self._commit_change(item)
        return len(held)

    @property
    def held(self) -> int:
        """How many sends and changes are waiting for `release`."""
        return len(self._held or ())

    async def wait_until_held(self, count: int, *, timeout: float = 2.0) -> None:
        """Wait (without sleeping) until `count` sends are held: they have all been submitted.

        `timeout` bounds a test that would otherwise hang.
        """
        async with asyncio.timeout(timeout):
            while self.held < count:
                self._submitted.clear()
                await self._submitted.wait()

    # -- reading -----------------------------------------------------------------

    async def history(
        self,
        channel_id: int,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int = 50,
    ) -> MessagePage:
        """See `MessageStore.history`."""
        self._ensure_open()
        self._fail_if_told("history")
        _check_id("channel_id", channel_id)
        if after is not None:
            _check_id("after", after)
        if before is not None:
            _check_id("before", before)
        if limit <= 0:
            return MessagePage(messages=[], has_more=False)
        between = [
            message
            for message in self._channels.get(channel_id, ())
            if (after is None or message.message_id > after)
            and (before is None or message.message_id < before)
        ]
        # Without `after` the page hugs the newest end, as the protocol says.
        page = between[-limit:] if after is None else between[:limit]
        return MessagePage(messages=page, has_more=len(between) > limit)

    async def inbox(self, user_id: int, *, since: int, limit: int) -> InboxPage:
        """See `MessageStore.inbox`."""
        self._ensure_open()
        self._fail_if_told("inbox")
        _check_id("user_id", user_id)
        _check_id("since", since)
        if limit <= 0:
            return InboxPage(entries=[], has_more=False)
        # Seqs are contiguous from 1, so the entry with seq n is at index n - 1.
        later = self._inboxes.get(user_id, [])[since:]
        entries = [
            InboxEntry(
                seq=entry.seq,
                message=self._channels[entry.channel_id][entry.message_id - 1],
                update=entry.update,
            )
            for entry in later[:limit]
        ]
        return InboxPage(entries=entries, has_more=len(later) > limit)

    async def last_message_id(self, channel_id: int) -> int:
        """See `MessageStore.last_message_id`."""
        self._ensure_open()
        self._fail_if_told("last_message_id")
        _check_id("channel_id", channel_id)
        return len(self._channels.get(channel_id, ()))

    async def max_seq(self, user_id: int) -> int:
        """See `MessageStore.max_seq`."""
        self._ensure_open()
        self._fail_if_told("max_seq")
        _check_id("user_id", user_id)
        return len(self._inboxes.get(user_id, ()))

    async def messages_stored(self) -> int:
        """See `MessageStore.messages_stored`."""
        self._ensure_open()
        self._fail_if_told("messages_stored")
        return sum(len(messages) for messages in self._channels.values())

    async def last_message_ids(self, channel_ids: Sequence[int]) -> dict[int, int]:
        """See `MessageStore.last_message_ids`."""
        self._ensure_open()
        self._fail_if_told("last_message_ids")
        for channel_id in channel_ids:
            _check_id("channel_id", channel_id)
        return {channel_id: len(self._channels.get(channel_id, ())) for channel_id in channel_ids}

    async def last_messages(
        self, channel_ids: Sequence[int], *, max_chars: int
    ) -> dict[int, MessagePreview]:
        """See `MessageStore.last_messages`."""
        self._ensure_open()
        self._fail_if_told("last_messages")
        previews: dict[int, MessagePreview] = {}
        for channel_id in channel_ids:
            _check_id("channel_id", channel_id)
            messages = self._channels.get(channel_id)
            if not messages:
                continue
            last = messages[-1]
            text, truncated = cut_text(last.text, max_chars)
            previews[channel_id] = MessagePreview(
                channel_id=channel_id,
                message_id=last.message_id,
                sender_id=last.sender_id,
                created_at=last.created_at,
                text=text,
                truncated=truncated,
                edited=last.edited_at is not None,
                deleted=last.deleted,
            )
        return previews

    async def original(self, sender_id: int, client_msg_id: str) -> AcceptedMessage | None:
        """See `MessageStore.original`: only sends already stored (not held) are found."""
        self._ensure_open()
        self._fail_if_told("original")
        _check_id("sender_id", sender_id)
        _check_client_msg_id(client_msg_id)
        return self._stored_original(sender_id, client_msg_id)

    async def get(self, channel_id: int, message_id: int) -> StoredMessage | None:
        """See `MessageStore.get`."""
        self._ensure_open()
        self._fail_if_told("get")
        _check_id("channel_id", channel_id)
        _check_id("message_id", message_id)
        messages = self._channels.get(channel_id, [])
        return messages[message_id - 1] if 1 <= message_id <= len(messages) else None

    async def scan_messages(
        self, *, after: tuple[int, int] = (0, 0), limit: int
    ) -> list[StoredMessage]:
        """See `MessageStore.scan_messages`."""
        self._ensure_open()
        found = (
            message
            for channel_id in sorted(self._channels)
            for message in self._channels[channel_id]
            if (message.channel_id, message.message_id) > after
        )
        return [message for _, message in zip(range(max(limit, 0)), found, strict=False)]

    async def scan_inbox(self, *, after: tuple[int, int] = (0, 0), limit: int) -> list[InboxRecord]:
        """See `MessageStore.scan_inbox`."""
        self._ensure_open()
        found = (
            InboxRecord(
                user_id=user_id,
                seq=entry.seq,
                channel_id=entry.channel_id,
                message_id=entry.message_id,
                update=entry.update,
            )
            for user_id in sorted(self._inboxes)
            for entry in self._inboxes[user_id]
            if (user_id, entry.seq) > after
        )
        return [record for _, record in zip(range(max(limit, 0)), found, strict=False)]

    async def scan_sends(
        self, *, after: tuple[int, str] | None = None, limit: int
    ) -> list[SendRecord]:
        """See `MessageStore.scan_sends`."""
        self._ensure_open()
        keys = sorted(k for k in self._receipts if after is None or k > after)
        return [
            SendRecord(
                sender_id=sender_id,
                client_msg_id=client_msg_id,
                channel_id=self._receipts[(sender_id, client_msg_id)][0],
                message_id=self._receipts[(sender_id, client_msg_id)][1],
                seq=self._receipts[(sender_id, client_msg_id)][2],
            )
            for sender_id, client_msg_id in keys[: max(limit, 0)]
        ]

    async def close(self) -> None:
        """See `MessageStore.close`: held sends and changes are stored first."""
        if not self._closed:
            self.release()
            self._closed = True

    # -- inside --------------------------------------------------------------------

    def _ensure_open(self) -> None:
        if self._closed:
            raise MessageStoreError("the message store is closed")

    def _commit(self, send: _Send) -> None:
        if send.future.done():  # the caller gave up: it was promised nothing
            return
        if self._should_fail("submit"):
            send.future.set_exception(self._failure("submit"))
            return
        draft = send.draft
        original = self._stored_original(draft.sender_id, draft.client_msg_id)
        if original is not None:
            send.future.set_result(original)
            return
        history = self._channels.setdefault(draft.channel_id, [])
        message = StoredMessage(
            channel_id=draft.channel_id,
            message_id=len(history) + 1,
            sender_id=draft.sender_id,
            text=draft.text,
            created_at=draft.created_at,
            client_msg_id=draft.client_msg_id,
            reply_to=draft.reply_to,
            mentions=draft.mentions,
        )
        history.append(message)
        inbox_seqs = self._deliver(message, send.member_ids, None)
        seq = inbox_seqs[draft.sender_id]
        self._receipts[(draft.sender_id, draft.client_msg_id)] = (
            draft.channel_id,
            message.message_id,
            seq,
        )
        send.future.set_result(
            AcceptedMessage(message=message, seq=seq, inbox_seqs=inbox_seqs, duplicate=False)
        )

    def _deliver(
        self, message: StoredMessage, member_ids: Sequence[int], update: UpdateKind | None
    ) -> dict[int, int]:
        """Append an entry for `message` to each member's inbox; the seq each got."""
        inbox_seqs: dict[int, int] = {}
        for user_id in member_ids:
            inbox = self._inboxes.setdefault(user_id, [])
            inbox.append(_Entry(len(inbox) + 1, message.channel_id, message.message_id, update))
            inbox_seqs[user_id] = len(inbox)
        return inbox_seqs

    def _commit_change(self, queued: _Change) -> None:
        if queued.future.done():  # the caller gave up: it was promised nothing
            return
        if self._should_fail("change"):
            queued.future.set_exception(self._failure("change"))
            return
        change = queued.change
        messages = self._channels.get(change.channel_id, [])
        if not 1 <= change.message_id <= len(messages):
            queued.future.set_exception(
                MessageMissing(f"channel {change.channel_id} has no message {change.message_id}")
            )
            return
        before = messages[change.message_id - 1]
        try:
            kind, after = changed(before, change)
        except ChangeRefused as refusal:
            queued.future.set_exception(refusal)
            return
        inbox_seqs: dict[int, int] = {}
        if after != before:
            messages[change.message_id - 1] = after
            inbox_seqs = self._deliver(after, queued.member_ids, kind)
        queued.future.set_result(ChangeOutcome(message=after, update=kind, inbox_seqs=inbox_seqs))

    def _stored_original(self, sender_id: int, client_msg_id: str) -> AcceptedMessage | None:
        receipt = self._receipts.get((sender_id, client_msg_id))
        if receipt is None:
            return None
        channel_id, message_id, seq = receipt
        # Only the sender's seq is kept with the receipt, as on disk.
        return AcceptedMessage(
            message=self._channels[channel_id][message_id - 1],
            seq=seq,
            inbox_seqs={sender_id: seq},
            duplicate=True,
        )


def _check_id(name: str, value: int) -> None:
    if not 0 <= value < _ID_COUNT:
        raise ValueError(f"{name} must be between 0 and 2**64 - 1, got {value}")


def _check_client_msg_id(client_msg_id: str) -> None:
    if not client_msg_id or not client_msg_id.isascii():
        raise ValueError(f"client_msg_id must be non-empty ASCII, got {client_msg_id!r}")
