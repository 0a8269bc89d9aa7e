"""`chatapp export` and `chatapp import` through the real stack: a moved deployment answers alike.

A real server is given users, devices, friends, a group and a direct channel,
messages, read markers, a push target, a user who does not share read
receipts and lets only friends add them to groups, blocks and notification
levels; it is stopped, exported with the CLI, imported into an empty
folder, and a server started on that folder must
answer every read endpoint identically for every user, keep every token and
continue every id and seq where the first one stopped.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chatapp.client import ChatClient
from chatapp.testing import run_server

DEVICE_NAME = "laptop"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chatapp", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


async def seed(server: Any) -> list[str]:
    """Users with history in a group and a direct channel; the tokens of every device."""
    alice, bob, carol = [await server.user(name) for name in ("alice", "bob", "carol")]
    phone = await server.device("alice", device_name="phone")
    await alice.request("POST", "/api/v1/friends", {"user_id": bob.user_id})
    await bob.request("POST", "/api/v1/friends", {"user_id": alice.user_id})
    await carol.request("POST", "/api/v1/friends", {"user_id": alice.user_id})  # pending
    group = await alice.create_group("team", [bob.user_id, carol.user_id])
    direct = await bob.open_direct(alice.user_id)
    for number in range(12):
        sender = (alice, bob, carol)[number % 3]
        await sender.send_message(group.channel_id, f"group {number}", f"g-{number}")
    for number in range(5):
        await (alice if number % 2 else bob).send_message(
            direct.channel_id, f"direct {number} \u00e9\u0000", f"d-{number}"
        )
    # Changed messages move with their present state and every update entry.
    await bob.edit_message(group.channel_id, 2, "group 1, edited for @carol")
    await alice.delete_message(group.channel_id, 3)
    await carol.react(group.channel_id, 4, "👍")
    await alice.react(group.channel_id, 4, "👍")
    await bob.send_message(group.channel_id, "a reply", "g-reply", reply_to=4)
    await carol.mark_read(group.channel_id, 7)
    await carol.update_me(share_read_receipts=False, group_adds="friends")
    # Blocks, notification levels and who may add whom move too.
    await carol.block(bob.user_id)
    await alice.block(carol.user_id)  # also ends carol's pending request
    await bob.set_notification_level(group.channel_id, "mentions")
    await alice.set_notification_level(direct.channel_id, "none")
    await alice.set_push_target(phone.device_id, "log", "alice's phone")
    revoked = await server.device("bob", device_name="old")
    await bob.revoke_device(revoked.device_id)
    return [client.token or "" for client in (alice, bob, carol, phone)]


async def answers(url: str, token: str) -> dict[str, Any]:
    """Every read endpoint's JSON for the user of `token`."""
    async with ChatClient(url, token=token) as client:
        found: dict[str, Any] = {}
        for path in (
            "/me",
            "/channels",
            "/sync",
            "/friends",
            "/friends/requests",
            "/me/devices",
            "/me/blocks",
        ):
            found[path] = await client.request("GET", f"/api/v1{path}")
        for channel in found["/channels"]["channels"]:
            path = f"/channels/{channel['channel_id']}"
            found[path] = await client.request("GET", f"/api/v1{path}")
            found[f"{path}/messages"] = await client.request(
                "GET", f"/api/v1{path}/messages", params={"limit": "100"}
            )
        return found


async def test_an_imported_folder_answers_as_the_exported_one_and_carries_on(
    tmp_path: Path,
) -> None:
    """Every read endpoint answers identically for every user; tokens, ids, seqs and sends go on."""
    source, target, lines = tmp_path / "source", tmp_path / "target", tmp_path / "export.jsonl"
    async with run_server(source) as server:
        tokens = await seed(server)
        before = [await answers(server.url, token) for token in tokens]
        # Reading touches devices' last_seen_at: what the export holds is what is read after.
        before = [await answers(server.url, token) for token in tokens]

    exported = cli("export", str(lines), "--data-dir", str(source))
    assert exported.returncode == 0, exported.stderr
    kinds = {json.loads(line)["type"] for line in lines.read_text().splitlines()}
    assert lines.stat().st_mode & 0o777 == 0o600
    assert kinds == {
        "user",
        "device",
        "push_target",
        "friend",
        "channel",
        "read_marker",
        "message",
        "inbox",
        "idempotency",
        # alice, the group's owner, deleted carol's message: that is on the record.
        "audit",
    }
    imported = cli("import", str(lines), "--data-dir", str(target))
    assert imported.returncode == 0, imported.stderr
    again = tmp_path / "again.jsonl"
    assert cli("export", str(again), "--data-dir", str(target)).returncode == 0
    assert again.read_text() == lines.read_text()
    checked = cli("check", "--data-dir", str(target))
    assert checked.returncode == 0, checked.stdout + checked.stderr

    async with run_server(target) as moved:
        after = [await answers(moved.url, token) for token in tokens]
        assert after == before
        alice = moved.client(tokens[0])
        bob = moved.client(tokens[1])
        group_id = next(
            c["channel_id"] for c in before[0]["/channels"]["channels"] if c["kind"] == "group"
        )
        assert not before[1]["/sync"]["has_more"]
        sent = await bob.send_message(group_id, "after the move", "moved-1")
        assert sent.message.message_id == 14
        assert sent.seq == before[1]["/sync"]["next_since"] + 1
        repeated = await alice.send_message(group_id, "again?", "g-0")
        assert repeated.message.message_id == 1
        assert repeated.message.text == "group 0"


async def test_import_refuses_a_folder_with_data(tmp_path: Path) -> None:
    """An import into a folder that already has users is refused in one line, exit 2."""
    async with run_server(tmp_path / "source") as server:
        await server.user("alice")
    lines = tmp_path / "export.jsonl"
    assert cli("export", str(lines), "--data-dir", str(tmp_path / "source")).returncode == 0
    refused = cli("import", str(lines), "--data-dir", str(tmp_path / "source"))
    assert refused.returncode == 2
    assert refused.stderr.splitlines() == [refused.stderr.strip()]
    assert "not empty" in refused.stderr


def test_import_names_the_first_line_it_cannot_read(tmp_path: Path) -> None:
    """A line that is not an export line stops the import with its number, exit 2."""
    lines = tmp_path / "broken.jsonl"
    lines.write_text('{"type": "user", "user": {"user_id": 1}}\n')
    refused = cli("import", str(lines), "--data-dir", str(tmp_path / "a"))
    assert refused.returncode == 2
    assert "line 1" in refused.stderr
    lines.write_text('{"type": "planet", "planet": {}}\n')
    refused = cli("import", str(lines), "--data-dir", str(tmp_path / "b"))
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        "chatapp: cannot import: line 1 is not an export line of a known type"
    )


def test_a_user_line_from_before_read_receipts_imports_as_sharing(tmp_path: Path) -> None:
    """A `user` line without `share_read_receipts` or `group_adds` (a file written before the
    settings) is a user who shares and whom everyone may add to groups; a value that is not
    true or false, or an unfinished deletion that is neither "erase" nor "keep", stops the
    import with its line."""
    user: dict[str, Any] = {
        "user_id": 7, "username": "olga", "display_name": "Olga", "about": "",
        "role": "member", "created_at": 1000, "password_hash": "hash",
    }  # fmt: skip
    lines = tmp_path / "old.jsonl"
    lines.write_text(json.dumps({"type": "user", "user": user}) + "\n")
    imported = cli("import", str(lines), "--data-dir", str(tmp_path / "data"))
    assert imported.returncode == 0, imported.stderr
    again = tmp_path / "again.jsonl"
    assert cli("export", str(again), "--data-dir", str(tmp_path / "data")).returncode == 0
    [exported] = [json.loads(line) for line in again.read_text().splitlines()]
    # A file from before deactivation (and deletion) existed reads as an active user, too.
    active = {
        "deactivated_at": None, "deactivation_reason": None, "deleted_at": None,
        "deletion_unfinished": None,
    }  # fmt: skip
    settings = {"share_read_receipts": True, "group_adds": "everyone"}
    assert exported == {"type": "user", "user": user | settings | active}

    lines.write_text(json.dumps({"type": "user", "user": user | {"share_read_receipts": "no"}}))
    refused = cli("import", str(lines), "--data-dir", str(tmp_path / "other"))
    assert refused.returncode == 2
    assert "line 1" in refused.stderr
    assert "share_read_receipts" in refused.stderr
    lines.write_text(json.dumps({"type": "user", "user": user | {"deletion_unfinished": "no"}}))
    refused = cli("import", str(lines), "--data-dir", str(tmp_path / "third"))
    assert refused.returncode == 2
    assert 'deletion_unfinished must be one of null, "erase", "keep"' in refused.stderr


async def test_blocks_levels_and_group_adds_travel_in_the_lines_they_belong_to(
    tmp_path: Path,
) -> None:
    """A user line lists whom the user blocks (`blocks`, only when there are any) and carries
    `group_adds`; each member of a channel line carries its `notification_level`; no line of
    another type is added for them."""
    source, lines = tmp_path / "source", tmp_path / "export.jsonl"
    async with run_server(source) as server:
        await seed(server)
    assert cli("export", str(lines), "--data-dir", str(source)).returncode == 0
    records = [json.loads(line) for line in lines.read_text().splitlines()]
    users = {r["user"]["username"]: r["user"] for r in records if r["type"] == "user"}
    ids = {name: user["user_id"] for name, user in users.items()}
    assert [block["user_id"] for block in users["carol"]["blocks"]] == [ids["bob"]]
    assert [block["user_id"] for block in users["alice"]["blocks"]] == [ids["carol"]]
    assert "blocks" not in users["bob"]
    assert {name: user["group_adds"] for name, user in users.items()} == {
        "alice": "everyone", "bob": "everyone", "carol": "friends",
    }  # fmt: skip
    levels = {
        (r["channel"]["kind"], member["user_id"]): member["notification_level"]
        for r in records
        if r["type"] == "channel"
        for member in r["channel"]["members"]
    }
    assert levels == {
        ("group", ids["alice"]): "all", ("group", ids["bob"]): "mentions",
        ("group", ids["carol"]): "all", ("direct", ids["alice"]): "none",
        ("direct", ids["bob"]): "all",
    }  # fmt: skip
    friends = [r["friend"] for r in records if r["type"] == "friend"]
    assert [(f["user_low"], f["user_high"]) for f in friends] == [(ids["alice"], ids["bob"])]


def test_lines_from_before_levels_import_with_the_defaults(tmp_path: Path) -> None:
    """A channel line whose members have no `notification_level` imports them at `all`; a
    level or a `group_adds` that is not one of its words stops the import with its line."""
    user: dict[str, Any] = {
        "user_id": 7, "username": "olga", "display_name": "Olga", "about": "",
        "role": "member", "created_at": 1000, "password_hash": "hash",
    }  # fmt: skip
    channel: dict[str, Any] = {
        "channel_id": 3, "kind": "group", "name": "old", "owner_id": 7, "direct_key": None,
        "created_at": 1000, "members": [{"user_id": 7, "joined_at": 1000}],
    }  # fmt: skip
    lines = tmp_path / "old.jsonl"
    lines.write_text(
        json.dumps({"type": "user", "user": user})
        + "\n"
        + json.dumps({"type": "channel", "channel": channel})
        + "\n"
    )
    imported = cli("import", str(lines), "--data-dir", str(tmp_path / "data"))
    assert imported.returncode == 0, imported.stderr
    again = tmp_path / "again.jsonl"
    assert cli("export", str(again), "--data-dir", str(tmp_path / "data")).returncode == 0
    exported = [json.loads(line) for line in again.read_text().splitlines()]
    assert exported[1]["channel"]["members"] == [
        {"user_id": 7, "joined_at": 1000, "notification_level": "all"}
    ]
    for number, (kind, value) in enumerate(
        [
            ("user", user | {"group_adds": "nobody"}),
            (
                "channel",
                channel
                | {"members": [{"user_id": 7, "joined_at": 1, "notification_level": "loud"}]},
            ),
        ]
    ):
        lines.write_text(json.dumps({"type": kind, kind: value}) + "\n")
        refused = cli("import", str(lines), "--data-dir", str(tmp_path / f"bad{number}"))
        assert refused.returncode == 2
        assert "line 1" in refused.stderr
        assert ("group_adds" if kind == "user" else "notification_level") in refused.stderr


async def test_export_refuses_a_folder_a_server_runs_on(tmp_path: Path) -> None:
    """While a server holds the folder, export gives the one-line "in use" refusal, exit 2."""
    async with run_server(tmp_path / "data") as server:
        await server.user("alice")
        refused = await asyncio.to_thread(
            cli, "export", str(tmp_path / "x.jsonl"), "--data-dir", str(tmp_path / "data")
        )
    assert refused.returncode == 2
    assert refused.stderr.splitlines() == [refused.stderr.strip()]
    assert "in use by another chatapp process" in refused.stderr
    assert not (tmp_path / "x.jsonl").exists()


@pytest.mark.slow
async def test_an_export_imported_into_an_empty_cluster_answers_as_the_embedded_server(
    tmp_path: Path,
) -> None:
    """A node of the cluster answers every read as the embedded server did; ids and seqs go on."""
    from chatapp.testing.cluster import local_cluster

    source, lines = tmp_path / "source", tmp_path / "export.jsonl"
    async with run_server(source) as server:
        tokens = await seed(server)
        await answers(server.url, token=tokens[0])
        before = [await answers(server.url, token) for token in tokens]
    assert cli("export", str(lines), "--data-dir", str(source)).returncode == 0

    (tmp_path / "cluster").mkdir()
    async with local_cluster(tmp_path / "cluster", nodes=()) as cluster:
        imported = await cluster.run_cli("import", str(lines))
        assert imported.returncode == 0, imported.stderr
        again = await cluster.run_cli("import", str(lines))
        assert again.returncode == 2
        assert "not empty" in again.stderr
        round_trip = tmp_path / "from-cluster.jsonl"
        exported = await cluster.run_cli("export", str(round_trip))
        assert exported.returncode == 0, exported.stderr
        assert round_trip.read_text() == lines.read_text()
        await cluster.start("n1")
        after = [await answers(cluster.url("n1"), token) for token in tokens]
        assert after == before
        bob = cluster.client("n1", tokens[1])
        group_id = next(
            c["channel_id"] for c in before[0]["/channels"]["channels"] if c["kind"] == "group"
        )
        sent = await bob.send_message(group_id, "after the move", "moved-1")
        assert sent.message.message_id == 14
        assert sent.seq == before[1]["/sync"]["next_since"] + 1
        repeated = await cluster.client("n1", tokens[0]).send_message(group_id, "?", "g-0")
        assert repeated.message.message_id == 1
        newcomer = await cluster.user("dave", "n1")
        assert newcomer.user_id == 4
        assert newcomer.device_id == 6  # after alice's two, bob's two and carol's
        group = await newcomer.create_group("new", [])
        assert group.channel_id == 3
