"""`chatapp backup` of a server that serves, and `chatapp restore` of what it took.

The server is a real `chatapp serve` process; the CLI is run as its own
process, as an operator runs it.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from chatapp.client import ChatApiError, ChatClient
from chatapp.testing import ServerProcess
from tests.e2e.whole_reads import all_inbox_seqs, all_messages

PASSWORD = "correct horse battery"
SENDERS = 20


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chatapp", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


async def test_a_backup_taken_under_load_restores_every_acknowledged_message(
    tmp_path: Path,
) -> None:
    """20 clients send as fast as their acknowledgements come while `chatapp backup` runs.

    The backup is restored into a new folder and a server started on it:
    every message acknowledged before the backup began is there, once, at
    its id; message ids and inbox seqs are contiguous; every token still
    works; read markers are not past their channel's last message; and
    `chatapp check` finds the restored folder whole. Sends went on while
    the backup was taken.
    """
    data, backup, restored = tmp_path / "data", tmp_path / "backup", tmp_path / "restored"
    server = ServerProcess(data).start()
    clients: list[ChatClient] = []
    try:
        for number in range(SENDERS):
            client = ChatClient(server.url)
            clients.append(client)
            await client.signup(f"user{number}", PASSWORD)
            await client.login(f"user{number}", PASSWORD)
        # Four groups of five, and a direct channel between each pair of neighbours.
        channels: list[tuple[int, list[ChatClient]]] = []
        for first in range(0, SENDERS, 5):
            members = clients[first : first + 5]
            group = await members[0].create_group(
                f"group {first}", [member.user_id for member in members[1:]]
            )
            channels.append((group.channel_id, members))
        for number in range(0, SENDERS, 2):
            pair = clients[number : number + 2]
            direct = await pair[0].open_direct(pair[1].user_id)
            channels.append((direct.channel_id, pair))
        routes = [
            (client, channel_id)
            for client in clients
            for channel_id, members in channels
            if client in members
        ]
        acknowledged: dict[str, tuple[int, int, float]] = {}
        warmed_up = asyncio.Event()
        stop = asyncio.Event()

        async def keep_sending(number: int) -> None:
            mine = [route for route in routes if route[0] is clients[number]]
            for i in range(1_000_000):
                if stop.is_set():
                    return
                client, channel_id = mine[i % len(mine)]
                cmid = f"u{number}-{i}"
                try:
                    answer = await client.request(
                        "POST",
                        f"/api/v1/channels/{channel_id}/messages",
                        {"client_msg_id": cmid, "text": f"{cmid} " + "x" * (i % 300)},
                    )
                except (aiohttp.ClientError, ChatApiError):
                    return
                acknowledged[cmid] = (channel_id, answer["message"]["message_id"], time.monotonic())
                if len(acknowledged) >= 1500:
                    warmed_up.set()

        senders = [asyncio.create_task(keep_sending(number)) for number in range(SENDERS)]
        await warmed_up.wait()
        began = time.monotonic()
        before = {cmid: place[:2] for cmid, place in acknowledged.items()}
        taken = await asyncio.to_thread(cli, "backup", str(backup), "--data-dir", str(data))
        finished = time.monotonic()
        await asyncio.sleep(0.2)
        stop.set()
        await asyncio.gather(*senders)
        assert taken.returncode == 0, taken.stdout + taken.stderr
        assert "taken by the running server" in taken.stdout
        during = [at for _, _, at in acknowledged.values() if began < at < finished]
        assert during, "no send was acknowledged while the backup was taken"
        manifest = json.loads((backup / "chatapp-backup.json").read_text())
        assert manifest["format"] == 1
        assert manifest["messages"] >= len(before)
        assert manifest["users"] == SENDERS
        assert "presence" in manifest["not_copied"]
        tokens = [client.token or "" for client in clients]
        user_ids = [client.user_id for client in clients]
    finally:
        for client in clients:
            await client.close()
        server.stop()

    restore = cli("restore", str(backup), "--data-dir", str(restored))
    assert restore.returncode == 0, restore.stdout + restore.stderr
    checked = cli("check", "--data-dir", str(restored))
    assert checked.returncode == 0, checked.stdout + checked.stderr

    with ServerProcess(restored) as again:
        readers = [ChatClient(again.url, token=token) for token in tokens]
        try:
            for reader, user_id in zip(readers, user_ids, strict=True):
                assert (await reader.me()).user_id == user_id  # every token still works
            where: dict[str, tuple[int, int]] = {}
            for channel_id, members in channels:
                reader = readers[clients.index(members[0])]
                stored = await all_messages(reader, channel_id)
                assert [m["message_id"] for m in stored] == list(range(1, len(stored) + 1))
                for message in stored:
                    cmid = str(message["client_msg_id"])
                    assert cmid not in where, f"{cmid} is there twice"
                    where[cmid] = (channel_id, int(str(message["message_id"])))
            for cmid, place in before.items():
                assert where.get(cmid) == place, cmid
            for reader in readers:
                seqs = await all_inbox_seqs(reader)
                assert seqs == list(range(1, len(seqs) + 1))
                for channel in await reader.channels():
                    assert channel.read_message_id <= channel.last_message_id
            # The restored server goes on where the backup stopped.
            channel_id, members = channels[0]
            writer = readers[clients.index(members[0])]
            sent = await writer.send_message(channel_id, "after the restore", "after-restore")
            last = max(m for c, m in where.values() if c == channel_id)
            assert sent.message.message_id == last + 1
        finally:
            for reader in readers:
                await reader.close()


async def test_restore_refuses_a_served_folder_and_one_with_data_unless_forced(
    tmp_path: Path,
) -> None:
    """A restore refuses (exit 2, one line) a folder a server runs on, and a folder holding
    data without --force; with --force the old data is kept aside, not deleted."""
    data, backup = tmp_path / "data", tmp_path / "backup"
    with ServerProcess(data) as server:
        async with ChatClient(server.url) as alice:
            await alice.signup("alice", PASSWORD)
        taken = await asyncio.to_thread(cli, "backup", str(backup), "--data-dir", str(data))
        assert taken.returncode == 0, taken.stderr
        served = await asyncio.to_thread(
            cli, "restore", str(backup), "--data-dir", str(data), "--force"
        )
    assert served.returncode == 2
    assert served.stderr.splitlines() == [served.stderr.strip()]
    assert "a server runs on" in served.stderr

    refused = cli("restore", str(backup), "--data-dir", str(data))
    assert refused.returncode == 2
    assert "--force" in refused.stderr

    forced = cli("restore", str(backup), "--data-dir", str(data), "--force")
    assert forced.returncode == 0, forced.stderr
    [aside] = [entry for entry in data.iterdir() if entry.name.startswith("before-restore-")]
    assert (aside / "users.sqlite3").exists()
    assert (aside / "messages").is_dir()
    assert cli("check", "--data-dir", str(data)).returncode == 0


def test_a_backup_without_its_manifest_is_not_restored(tmp_path: Path) -> None:
    """A folder without chatapp-backup.json (a backup that failed or was cut short) is
    refused, and the data folder is not touched."""
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "users.sqlite3").write_bytes(b"")
    refused = cli("restore", str(tmp_path / "half"), "--data-dir", str(tmp_path / "data"))
    assert refused.returncode == 2
    assert "not a complete backup" in refused.stderr
    assert not (tmp_path / "data").exists()


def test_backup_refuses_a_folder_that_is_not_empty_and_a_cluster(tmp_path: Path) -> None:
    """A backup goes into a new (or empty) folder, of a folder that has data; in cluster mode
    it answers with one line pointing at PostgreSQL's own tools, exit 2. A refused backup
    leaves no folder behind."""
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "something").write_text("x")
    refused = cli("backup", str(tmp_path / "full"), "--data-dir", str(tmp_path / "data"))
    assert refused.returncode == 2
    assert "not empty" in refused.stderr
    refused = cli("backup", str(tmp_path / "new"), "--data-dir", str(tmp_path / "nothing"))
    assert refused.returncode == 2
    assert "no message store" in refused.stderr
    assert not (tmp_path / "new").exists()

    cluster = {
        "CHATAPP_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
        "CHATAPP_REDIS_URL": "redis://127.0.0.1:1/0",
    }
    refused = cli("backup", str(tmp_path / "b"), env=cluster)
    assert refused.returncode == 2
    assert refused.stderr.splitlines() == [refused.stderr.strip()]
    assert "pg_dump" in refused.stderr
    assert not (tmp_path / "b").exists()


async def test_a_backup_of_a_stopped_folder_is_taken_by_the_command(tmp_path: Path) -> None:
    """With no server running, the command copies the folder itself, holding its lock; the
    restored copy has the messages and the Web Push key, and builds its search index again."""
    data, backup, restored = tmp_path / "data", tmp_path / "backup", tmp_path / "restored"
    with ServerProcess(data, env={"CHATAPP_PUSH_PROVIDERS": "log,webpush"}) as server:
        async with ChatClient(server.url) as alice:
            await alice.signup("alice", PASSWORD)
            await alice.login("alice", PASSWORD)
            group = await alice.create_group("me", [])
            for number in range(10):
                await alice.send_message(group.channel_id, f"note {number}")
    key = (data / "vapid_private.pem").read_bytes()

    taken = cli("backup", str(backup), "--data-dir", str(data))
    assert taken.returncode == 0, taken.stderr
    assert "taken by this command (no server ran)" in taken.stdout
    assert (backup / "vapid_private.pem").stat().st_mode & 0o777 == 0o600
    assert cli("restore", str(backup), "--data-dir", str(restored)).returncode == 0
    assert (restored / "vapid_private.pem").read_bytes() == key
    manifest = json.loads((backup / "chatapp-backup.json").read_text())
    assert "search.sqlite3" in manifest["not_copied"]
    with ServerProcess(restored) as again:
        async with ChatClient(again.url) as alice:
            await alice.login("alice", PASSWORD)
            page = await alice.messages(group.channel_id)
            assert [m.text for m in page.messages] == [f"note {n}" for n in range(10)]
            # The search index, left out of the backup, is built again from the messages.
            for _ in range(100):
                found = await alice.request("GET", "/api/v1/search", params={"q": "note"})
                if len(found["results"]) == 10:
                    break
                await asyncio.sleep(0.1)
            assert len(found["results"]) == 10
