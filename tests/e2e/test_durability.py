"""Acknowledged means on disk: the server is killed with SIGKILL and restarted on its folder."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import aiohttp

from chatapp.client import ChatApiError, ChatClient
from chatapp.testing import ServerProcess
from tests.e2e.whole_reads import all_inbox_seqs, all_messages

PASSWORD = "correct horse battery"


async def signed_in(url: str, name: str) -> ChatClient:
    client = ChatClient(url)
    await client.signup(name, PASSWORD)
    await client.login(name, PASSWORD)
    return client


async def test_acknowledged_sends_survive_sigkill(tmp_path: Path) -> None:
    """Every acknowledged send is there once after a SIGKILL; ids and seqs stay contiguous."""
    data = tmp_path / "data"
    server = ServerProcess(data).start()
    clients: list[ChatClient] = []
    try:
        alice, bob, carol = [
            await signed_in(server.url, name) for name in ("alice", "bob", "carol")
        ]
        clients = [alice, bob, carol]
        pair = await alice.request("POST", "/api/v1/channels/direct", {"user_id": bob.user_id})
        team = await alice.request(
            "POST",
            "/api/v1/channels/group",
            {"name": "team", "member_ids": [bob.user_id, carol.user_id]},
        )
        channels = [pair["channel"]["channel_id"], team["channel"]["channel_id"]]
        acknowledged: dict[str, tuple[int, int]] = {}
        attempted: list[tuple[ChatClient, int, str]] = []
        enough_acknowledged = asyncio.Event()

        async def keep_sending(sender: ChatClient, channel_id: int, name: str) -> None:
            for i in range(10_000):
                cmid = f"{name}-{channel_id}-{i}"
                attempted.append((sender, channel_id, cmid))
                try:
                    answer = await sender.request(
                        "POST",
                        f"/api/v1/channels/{channel_id}/messages",
                        {"client_msg_id": cmid, "text": f"{name} {i}"},
                    )
                except (aiohttp.ClientError, ChatApiError):
                    return
                acknowledged[cmid] = (channel_id, answer["message"]["message_id"])
                if len(acknowledged) >= 200:
                    enough_acknowledged.set()

        senders = [
            asyncio.create_task(keep_sending(alice, channels[0], "alice")),
            asyncio.create_task(keep_sending(bob, channels[0], "bob")),
            asyncio.create_task(keep_sending(carol, channels[1], "carol")),
            asyncio.create_task(keep_sending(alice, channels[1], "alice")),
        ]
        await enough_acknowledged.wait()
        server.kill()
        await asyncio.gather(*senders)

        server.start()
        stored: dict[int, list[dict[str, object]]] = {
            channel_id: await all_messages(alice, channel_id) for channel_id in channels
        }
        for messages in stored.values():
            assert [m["message_id"] for m in messages] == list(range(1, len(messages) + 1))
            cmids = [m["client_msg_id"] for m in messages]
            assert len(cmids) == len(set(cmids))
        where = {
            str(m["client_msg_id"]): (channel_id, m["message_id"])
            for channel_id, messages in stored.items()
            for m in messages
        }
        for cmid, place in acknowledged.items():
            assert where[cmid] == place

        # Retrying every attempted send, as a client would after the crash,
        # stores only what had not been stored.
        for sender, channel_id, cmid in attempted:
            answer = await sender.request(
                "POST",
                f"/api/v1/channels/{channel_id}/messages",
                {"client_msg_id": cmid, "text": "retry"},
            )
            if cmid in where:
                assert answer["message"]["message_id"] == where[cmid][1]
        totals = {channel_id: len(await all_messages(alice, channel_id)) for channel_id in channels}
        assert sum(totals.values()) == len(attempted)
        for client, expected in ((alice, sum(totals.values())), (bob, sum(totals.values())),
                                 (carol, totals[channels[1]])):  # fmt: skip
            assert await all_inbox_seqs(client) == list(range(1, expected + 1))
    finally:
        for client in clients:
            await client.close()
        with contextlib.suppress(Exception):
            server.stop()


async def test_acknowledged_changes_survive_sigkill(tmp_path: Path) -> None:
    """Reactions and edits acknowledged before a SIGKILL are there after it; seqs stay
    contiguous, and every inbox still converges on what history shows."""
    data = tmp_path / "data"
    server = ServerProcess(data).start()
    clients: list[ChatClient] = []
    try:
        alice, bob = [await signed_in(server.url, name) for name in ("alice", "bob")]
        clients = [alice, bob]
        pair = await alice.request("POST", "/api/v1/channels/direct", {"user_id": bob.user_id})
        channel_id = pair["channel"]["channel_id"]
        targets = [
            (await alice.send_message(channel_id, f"message {i}")).message.message_id
            for i in range(5)
        ]
        reacted: set[tuple[int, str]] = set()
        edited: dict[int, str] = {}
        enough = asyncio.Event()

        async def keep_reacting(client: ChatClient) -> None:
            for i in range(10_000):
                message_id, emoji = targets[i % len(targets)], f"r{i // len(targets) % 19}"
                try:
                    await client.react(channel_id, message_id, emoji)
                except (aiohttp.ClientError, ChatApiError):
                    return
                if client is bob:
                    reacted.add((message_id, emoji))
                if len(reacted) >= 40:
                    enough.set()

        async def keep_editing() -> None:
            for i in range(10_000):
                message_id = targets[i % len(targets)]
                try:
                    await alice.edit_message(channel_id, message_id, f"edit {i}")
                except (aiohttp.ClientError, ChatApiError):
                    return
                edited[message_id] = f"edit {i}"

        workers = [
            asyncio.create_task(keep_reacting(bob)),
            asyncio.create_task(keep_reacting(alice)),
            asyncio.create_task(keep_editing()),
        ]
        await enough.wait()
        server.kill()
        await asyncio.gather(*workers)

        server.start()
        stored: dict[int, Any] = {
            int(str(m["message_id"])): m for m in await all_messages(alice, channel_id)
        }
        for message_id, emoji in reacted:
            users = {
                user
                for reaction in stored[message_id]["reactions"]
                if reaction["emoji"] == emoji
                for user in reaction["user_ids"]
            }
            assert bob.user_id in users, (message_id, emoji)
        for message_id, text in edited.items():
            # The last acknowledged edit, or one after it that landed without its answer.
            number = int(str(stored[message_id]["text"]).removeprefix("edit "))
            assert number >= int(text.removeprefix("edit "))
        for client in clients:
            seqs = await all_inbox_seqs(client)
            assert seqs == list(range(1, len(seqs) + 1))
    finally:
        for client in clients:
            await client.close()
        with contextlib.suppress(Exception):
            server.stop()
