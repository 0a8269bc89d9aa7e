"""Walking the PostgreSQL message tables in key order, a page at a time (for an export)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from chatapp.messaging.adapters.postgres_rows import (
    REACTIONS,
    SELECT_MESSAGES,
    message_from_row,
    update_kind,
)
from chatapp.messaging.models import InboxRecord, SendRecord, StoredMessage

Fetch = Callable[..., Awaitable[list[asyncpg.Record]]]


async def scan_messages(fetch: Fetch, *, after: tuple[int, int], limit: int) -> list[StoredMessage]:
    """See `MessageStore.scan_messages`: each message as it is now, its reactions included."""
    if limit <= 0:
        return []
    rows = await fetch(
        f"{SELECT_MESSAGES}{REACTIONS} WHERE (m.channel_id, m.message_id) > ($1, $2)"
        " ORDER BY m.channel_id, m.message_id LIMIT $3",
        *after,
        limit,
    )
    return [message_from_row(row) for row in rows]


async def scan_inbox(fetch: Fetch, *, after: tuple[int, int], limit: int) -> list[InboxRecord]:
    """See `MessageStore.scan_inbox`."""
    if limit <= 0:
        return []
    rows = await fetch(
        "SELECT user_id, seq, channel_id, message_id, update_kind FROM inbox"
        " WHERE (user_id, seq) > ($1, $2) ORDER BY user_id, seq LIMIT $3",
        *after,
        limit,
    )
    return [
        InboxRecord(
            user_id=row["user_id"],
            seq=row["seq"],
            channel_id=row["channel_id"],
            message_id=row["message_id"],
            update=update_kind(row["update_kind"]),
        )
        for row in rows
    ]


async def scan_sends(
    fetch: Fetch, *, after: tuple[int, str] | None, limit: int
) -> list[SendRecord]:
    """See `MessageStore.scan_sends`: by sender, then by `client_msg_id`'s bytes."""
    if limit <= 0:
        return []
    columns = "sender_id, client_msg_id, channel_id, message_id, seq"
    order = 'ORDER BY sender_id, client_msg_id COLLATE "C" LIMIT'
    args: list[Any]
    if after is None:
        sql, args = f"SELECT {columns} FROM sends {order} $1", [limit]
    else:
        sql = (
            f"SELECT {columns} FROM sends WHERE sender_id > $1"
            f' OR (sender_id = $1 AND client_msg_id COLLATE "C" > $2) {order} $3'
        )
        args = [*after, limit]
    rows = await fetch(sql, *args)
    return [SendRecord(**dict(row)) for row in rows]
