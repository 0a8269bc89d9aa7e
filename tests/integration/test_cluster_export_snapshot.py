"""A cluster's export reads one snapshot: what the nodes commit meanwhile is whole or absent.

Sends are committed by a message store on its own pool, as a serving node
would, while an export reads the same schema.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from chatapp.bootstrap.archive import Progress, export_lines
from chatapp.bootstrap.archive_postgres import open_cluster_source
from chatapp.config import Settings
from chatapp.messaging.adapters.postgres_messages import PostgresMessageStore
from chatapp.storage.postgres import apply_postgres_migrations, open_postgres

MEMBERS = (1, 2, 3)


@pytest.fixture
async def node(postgres_schema_url: str) -> AsyncIterator[PostgresMessageStore]:
    """A node's message store on the fresh schema."""
    pool = await open_postgres(postgres_schema_url, max_size=4)
    await apply_postgres_migrations(pool, now_ms=1)
    store = PostgresMessageStore(pool)
    try:
        yield store
    finally:
        await store.close()
        await pool.close()


async def send(store: PostgresMessageStore, number: int) -> None:
    await store.append(
        sender_id=1 + number % 3,
        channel_id=1,
        client_msg_id=f"m{number}",
        text=f"message {number}",
        member_ids=MEMBERS,
        created_at=1_700_000_000_000 + number,
    )


def cluster_settings(url: str) -> Settings:
    return Settings(database_url=url, redis_url="redis://127.0.0.1:6379")


async def test_pages_read_after_a_commit_do_not_see_it(
    node: PostgresMessageStore, postgres_schema_url: str
) -> None:
    """A send committed after the export began is in none of its reads, tables or messages."""
    await send(node, 1)
    async with contextlib.AsyncExitStack() as stack:
        snapshot = await open_cluster_source(cluster_settings(postgres_schema_url), stack)
        assert [m.message_id for m in await snapshot.scan_messages(limit=100)] == [1]
        await send(node, 2)
        assert len((await node.inbox(1, since=0, limit=10)).entries) == 2  # committed
        assert [(e.user_id, e.seq) for e in await snapshot.scan_inbox(limit=100)] == [
            (1, 1),
            (2, 1),
            (3, 1),
        ]
        assert [s.client_msg_id for s in await snapshot.scan_sends(limit=100)] == ["m1"]
        counters = await snapshot.fetch("SELECT last_message_id FROM channel_counters", [])
        assert counters == [{"last_message_id": 1}]


async def test_an_export_while_sends_go_on_is_consistent(
    node: PostgresMessageStore, postgres_schema_url: str
) -> None:
    """Exports taken while a node commits sends without pause: every inbox entry and
    idempotency record in a file names a message in it, and every message in it has all of its
    inbox entries and its idempotency record."""
    stop = asyncio.Event()

    async def keep_sending() -> int:
        number = 0
        while not stop.is_set():
            number += 1
            await send(node, number)
        return number

    sender = asyncio.create_task(keep_sending())
    try:
        for _ in range(15):
            await asyncio.sleep(0.01)
            assert_consistent(await export(postgres_schema_url))
    finally:
        stop.set()
        sent = await sender
    final = await export(postgres_schema_url)
    assert_consistent(final)
    assert len([line for line in final if line["type"] == "message"]) == sent


async def export(url: str) -> list[dict[str, Any]]:
    out = io.StringIO()
    async with contextlib.AsyncExitStack() as stack:
        snapshot = await open_cluster_source(cluster_settings(url), stack)
        await export_lines(snapshot, snapshot, out, Progress("exported", io.StringIO()))
    return [json.loads(line) for line in out.getvalue().splitlines()]


def assert_consistent(lines: list[dict[str, Any]]) -> None:
    messages = {line["message"]["message_id"] for line in lines if line["type"] == "message"}
    inbox = [line["inbox"] for line in lines if line["type"] == "inbox"]
    sends = [line["idempotency"] for line in lines if line["type"] == "idempotency"]
    assert messages == set(range(1, len(messages) + 1))
    assert {entry["message_id"] for entry in inbox} == messages
    assert len(inbox) == len(messages) * len(MEMBERS)
    assert sorted(send["message_id"] for send in sends) == sorted(messages)
