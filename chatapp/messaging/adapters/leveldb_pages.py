"""Pages of a channel's history and of a user's inbox, read by key range.

Plain functions of an open plyvel DB, so that the reader can run them on its
threads; the keys they walk are described in `leveldb_layout`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from itertools import islice
from typing import Any

from chatapp.messaging.adapters import codec
from chatapp.messaging.adapters.leveldb_layout import (
    INBOX,
    MESSAGE,
    RANGE_END,
    REACTIONS,
    U64,
    counter_at,
    decode_message,
    decoded,
    floor_key,
    id_at_end,
    pack_id,
    read_pointed,
    with_reactions,
)
from chatapp.messaging.models import (
    InboxEntry,
    InboxPage,
    MessagePage,
    MessagePreview,
    Reaction,
    StoredMessage,
)


def read_history(
    db: Any, channel_id: int, *, before: int | None, after: int | None, limit: int
) -> MessagePage:
    """See `MessageStore.history`."""
    prefix = MESSAGE + pack_id("channel_id", channel_id)
    start = prefix if after is None else prefix + pack_id("after", after)
    stop = prefix + (RANGE_END if before is None else pack_id("before", before))
    if limit <= 0:
        return MessagePage(messages=[], has_more=False)
    # Without `after` the page hugs the upper end, so it is read downwards.
    downwards = after is None
    with db.snapshot() as snapshot:
        with snapshot.iterator(
            start=start,
            include_start=after is None,
            stop=stop,
            include_stop=before is None,
            reverse=downwards,
            verify_checksums=True,
        ) as rows:
            page = list(islice(rows, limit + 1))
        has_more = len(page) > limit
        del page[limit:]
        if downwards:
            page.reverse()
        messages = [
            decode_message(value, channel_id=channel_id, message_id=id_at_end(key))
            for key, value in page
        ]
        if messages:
            reactions = _reactions_between(
                snapshot, channel_id, messages[0].message_id, messages[-1].message_id
            )
            messages = [
                with_reactions(message, reactions.get(message.message_id, []))
                for message in messages
            ]
    return MessagePage(messages=messages, has_more=has_more)


def _reactions_between(
    snapshot: Any, channel_id: int, first: int, last: int
) -> dict[int, list[Reaction]]:
    """The reactions of a page's messages, in one range read: most messages have none."""
    prefix = REACTIONS + pack_id("channel_id", channel_id)
    with snapshot.iterator(
        start=prefix + pack_id("first", first),
        stop=prefix + pack_id("last", last),
        include_stop=True,
        verify_checksums=True,
    ) as rows:
        return {id_at_end(key): decoded(codec.decode_reactions, value) for key, value in rows}


def read_inbox(db: Any, user_id: int, *, since: int, limit: int) -> InboxPage:
    """See `MessageStore.inbox`; entries and the messages they point at come from one snapshot."""
    prefix = INBOX + pack_id("user_id", user_id)
    start = prefix + pack_id("since", since)
    if limit <= 0:
        return InboxPage(entries=[], has_more=False)
    with db.snapshot() as snapshot:
        with snapshot.iterator(
            start=start,
            include_start=False,
            stop=prefix + RANGE_END,
            include_stop=True,
            verify_checksums=True,
        ) as rows:
            page = list(islice(rows, limit + 1))
        # A message and its updates are often on one page: each is read once.
        read: dict[tuple[int, int], StoredMessage] = {}
        entries = []
        for key, value in page[:limit]:
            channel_id, message_id, update = decoded(codec.decode_entry, value)
            message = read.get((channel_id, message_id))
            if message is None:
                message, _ = read_pointed(snapshot, key, value)
                read[channel_id, message_id] = message
            entries.append(InboxEntry(seq=id_at_end(key), message=message, update=update))
    return InboxPage(entries=entries, has_more=len(page) > limit)


def read_last_message_ids(db: Any, channel_ids: Sequence[int]) -> dict[int, int]:
    """Each channel's counter as on disk (see `counter_at`), 0 for a channel without messages.

    Each is a seek to the channel's last key, which reads the table block
    that holds its last message: as costly as reading that message.
    """
    return {
        channel_id: counter_at(db, table=MESSAGE, owner_id=channel_id) for channel_id in channel_ids
    }


def read_last_messages(
    db: Any, channel_ids: Sequence[int], *, max_chars: int
) -> tuple[dict[int, MessagePreview], dict[int, int]]:
    """See `MessageStore.last_messages`; also each channel's counter, as `counter_at` gives it.

    One seek per channel to its last key gives both the last message and the
    counter (with the floor a repair may have left), so a reader of both
    reads each table block once. LevelDB still reads the whole value (up to
    400 KB for 100,000 emoji); what is saved is decoding it: only the fields
    before the text and `head_bytes(max_chars)` bytes of the text are.
    """
    decode = functools.partial(codec.decode_message_preview, max_chars=max_chars)
    previews: dict[int, MessagePreview] = {}
    counters: dict[int, int] = {}
    for channel_id in channel_ids:
        prefix = MESSAGE + pack_id("channel_id", channel_id)
        with db.iterator(prefix=prefix, reverse=True, verify_checksums=True) as rows:
            last = next(rows, None)
        floor: bytes | None = db.get(floor_key(MESSAGE, channel_id), verify_checksums=True)
        last_id = 0 if last is None else id_at_end(last[0])
        counters[channel_id] = last_id if floor is None else max(last_id, U64.unpack(floor)[0])
        if last is None:
            continue
        head = decoded(decode, last[1])
        previews[channel_id] = MessagePreview(
            channel_id=channel_id,
            message_id=last_id,
            sender_id=head.sender_id,
            created_at=head.created_at,
            text=head.text,
            truncated=head.truncated,
            edited=head.edited,
            deleted=head.deleted,
        )
    return previews, counters
