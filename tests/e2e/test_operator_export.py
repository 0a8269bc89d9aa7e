"""`chatapp export` / `import` carry what operators made: invites, the audit log, deactivations.

A server is given an admin, invites (one of them revoked), a deactivated
user, an account its owner deleted and an audited deletion; it is exported, imported into an
empty folder (and into an empty cluster), and the admin API must answer
alike there, the invites and the deactivation still count, and new ids
continue after the imported ones.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chatapp.client import ChatApiError, ChatClient
from chatapp.testing import RunningServer, run_server

PASSWORD = "correct horse battery"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chatapp", *args], capture_output=True, text=True, timeout=120
    )


async def seed(server: RunningServer) -> tuple[str, str]:
    """The admin's token and a code with uses left."""
    admin = await server.admin("root")
    alice, bob = await server.user("alice"), await server.user("bob")
    kept = await admin.create_invite(uses=3, expires_in_s=86_400)
    revoked = await admin.create_invite()
    await admin.revoke_invite(revoked.code)
    await admin.create_invite()
    group = await alice.create_group("team", [bob.user_id])
    await bob.send_message(group.channel_id, "spam, spam")
    await alice.delete_message(group.channel_id, 1)
    await admin.deactivate(bob.user_id, reason="spam")
    carol = await server.user("carol")
    await carol.delete_account(PASSWORD)
    return admin.token or "", kept.code


async def admin_answers(url: str, token: str) -> dict[str, Any]:
    async with ChatClient(url, token=token) as admin:
        return {
            path: await admin.request("GET", f"/api/v1/admin/{path}", params={"limit": "200"})
            for path in ("users", "audit")
        } | {"invites": await admin.request("GET", "/api/v1/admin/invites")}


async def check_moved(url: str, token: str, before: dict[str, Any], code: str) -> None:
    """What operators made counts on the moved deployment, and its ids go on."""
    assert await admin_answers(url, token) == before
    async with ChatClient(url) as newcomer, ChatClient(url, token=token) as admin:
        await newcomer.signup("dave", PASSWORD, invite_code=code)
        with pytest.raises(ChatApiError) as refused:
            await newcomer.login("bob", PASSWORD)
        assert (refused.value.status, refused.value.code) == (403, "deactivated")
        # Deleted by its owner: refused as an unknown name, and no reactivation brings it back.
        with pytest.raises(ChatApiError) as refused:
            await newcomer.login("carol", PASSWORD)
        assert (refused.value.status, refused.value.code) == (401, "invalid_credentials")
        invites = {invite.code: invite for invite in await admin.invites()}
        assert invites[code].uses_left == 2
        made = await admin.create_invite()
        events = (await admin.audit(limit=200)).events
        last_before = before["audit"]["events"][-1]["event_id"]
        assert [(e.event_id, e.action, e.target.id) for e in events[-1:]] == [
            (last_before + 1, "invite_create", made.code)
        ]


async def test_invites_audit_and_deactivations_move_with_an_export(tmp_path: Path) -> None:
    """The file has `invite` and `audit` lines after the messages and the users' deactivation;
    the imported folder's admin API answers as before, a kept invite lets one more person in,
    the deactivated user is still refused, and new audit ids follow the imported ones."""
    source, target, lines = tmp_path / "source", tmp_path / "target", tmp_path / "export.jsonl"
    async with run_server(source) as server:
        token, code = await seed(server)
        before = await admin_answers(server.url, token)
    assert len(before["invites"]["invites"]) == 2
    assert [e["action"] for e in before["audit"]["events"]] == [
        "invite_create", "invite_create", "invite_revoke", "invite_create",
        "delete_message", "deactivate",
    ]  # fmt: skip
    exported = cli("export", str(lines), "--data-dir", str(source))
    assert exported.returncode == 0, exported.stderr
    records = [json.loads(line) for line in lines.read_text().splitlines()]
    kinds = [record["type"] for record in records]
    assert kinds[-8:] == ["invite"] * 2 + ["audit"] * 6
    assert kinds.index("invite") > kinds.index("idempotency")
    users = {r["user"]["username"]: r["user"] for r in records if r["type"] == "user"}
    assert users["bob"]["deactivation_reason"] == "spam"
    assert users["bob"]["deactivated_at"] is not None
    assert users["alice"]["deactivated_at"] is None
    assert (users["carol"]["display_name"], users["carol"]["deleted_at"] is not None) == (
        "Deleted user", True,
    )  # fmt: skip
    assert users["bob"]["deleted_at"] is None

    imported = cli("import", str(lines), "--data-dir", str(target))
    assert imported.returncode == 0, imported.stderr
    again = tmp_path / "again.jsonl"
    assert cli("export", str(again), "--data-dir", str(target)).returncode == 0
    assert again.read_text() == lines.read_text()
    async with run_server(target, registration="invite") as moved:
        await check_moved(moved.url, token, before, code)


@pytest.mark.slow
async def test_they_move_into_a_cluster_too(tmp_path: Path) -> None:
    """The same file imported into an empty cluster: the export from it is the same file, and a
    node answers the admin API as the embedded server did, ids going on."""
    from chatapp.testing.cluster import local_cluster

    source, lines = tmp_path / "source", tmp_path / "export.jsonl"
    async with run_server(source) as server:
        token, code = await seed(server)
        before = await admin_answers(server.url, token)
    assert cli("export", str(lines), "--data-dir", str(source)).returncode == 0
    (tmp_path / "cluster").mkdir()
    async with local_cluster(
        tmp_path / "cluster", nodes=(), settings={"CHATAPP_REGISTRATION": "invite"}
    ) as cluster:
        imported = await cluster.run_cli("import", str(lines))
        assert imported.returncode == 0, imported.stderr
        round_trip = tmp_path / "from-cluster.jsonl"
        exported = await cluster.run_cli("export", str(round_trip))
        assert exported.returncode == 0, exported.stderr
        assert round_trip.read_text() == lines.read_text()
        await cluster.start("n1")
        await check_moved(cluster.url("n1"), token, before, code)
