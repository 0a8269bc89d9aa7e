"""Reading a channel's whole history and a user's whole inbox over HTTP, page by page."""

from __future__ import annotations

from typing import Any

from chatapp.client import ChatClient


async def all_messages(client: ChatClient, channel_id: int) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    after = 0
    while True:
        page = await client.request(
            "GET",
            f"/api/v1/channels/{channel_id}/messages",
            params={"after": str(after), "limit": "200"},
        )
        messages += page["messages"]
        if not page["has_more"]:
            return messages
        after = page["messages"][-1]["message_id"]


async def all_inbox_seqs(client: ChatClient) -> list[int]:
    seqs: list[int] = []
    since = 0
    while True:
        page = await client.request(
            "GET", "/api/v1/sync", params={"since": str(since), "limit": "1000"}
        )
        seqs += [event["seq"] for event in page["events"]]
        since = page["next_since"]
        if not page["has_more"]:
            return seqs
