"""Pages of a channel's history and of a user's inbox, read by key range.

Plain functions of an open plyvel DB, so that the reader can run them on its
threads; the keys they walk are described in `leveldb_layout`.
"""

from __future__ import annotations

from itertools import islice
from typing import Any

from chatapp.messaging.adapters.leveldb_layout import (
    INBOX,
    MESSAGE,
    RANGE_END,
    decode_message,
    id_at_end,
    pack_id,
    read_pointed,
)
from chatapp.messaging.models import InboxEntry, InboxPage, MessagePage


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
    with db.iterator(
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
    return MessagePage(messages=messages, has_more=has_more)


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
        entries = [
            InboxEntry(seq=id_at_end(key), message=read_pointed(snapshot, key, value))
            for key, value in page[:limit]
        ]
    return InboxPage(entries=entries, has_more=len(page) > limit)
