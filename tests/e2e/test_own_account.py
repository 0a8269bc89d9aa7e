"""A person's own account as a whole (protocol additions §7): a new password, deleting the
account, and taking one's data away as JSON lines.

Runs on the embedded server and on two cluster nodes (`ALSO_ON_CLUSTER`): sockets are
spread over every node, so a revocation must close them wherever they are.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from chatapp.client import ChatClient
from chatapp.testing import RawSocket, RunningServer, run_server
from tests.e2e.account_sockets import (
    all_closed_with_4401_within_a_second,
    sockets_on_every_node,
    still_open,
)
from tests.e2e.refusals import refusal

PASSWORD = "correct horse battery"
NEW_PASSWORD = "a brand new passphrase"
EXPORT_ORDER = ["user", "device", "friend", "channel", "message", "end"]


async def people(server: RunningServer, names: str) -> list[ChatClient]:
    """New users of these names, each logged in once."""
    return [await server.user(name) for name in names.split()]


async def befriend(a: ChatClient, b: ChatClient) -> None:
    await a.request("POST", "/api/v1/friends", {"user_id": b.user_id})
    await b.request("POST", "/api/v1/friends", {"user_id": a.user_id})


async def whole_inbox(client: ChatClient) -> list[dict[str, Any]]:
    """Every `GET /sync` event of the client's user, as the server sent them."""
    events: list[dict[str, Any]] = []
    since = 0
    while True:
        params = {"since": str(since), "limit": "1000"}
        page = await client.request("GET", "/api/v1/sync", params=params)
        events.extend(page["events"])
        since = page["next_since"]
        if not page["has_more"]:
            return events


async def updates_until_quiet(socket: RawSocket, count: int) -> list[dict[str, Any]]:
    """The next `count` `update` frames on the socket (other frames skipped)."""
    found: list[dict[str, Any]] = []
    while len(found) < count:
        frame = await socket.receive(timeout=10)
        if frame.get("type") == "update":
            found.append(frame["update"])
    return found


# -- a new password -------------------------------------------------------------------------


async def test_a_new_password_signs_out_every_other_device_and_keeps_this_one(
    chat_server: RunningServer,
) -> None:
    """`POST /me/password` answers 204; the other devices' sockets close with 4401 within a
    second on every node and their tokens are 401, while the calling device's socket and
    token go on working; the old password no longer logs in, the new one does."""
    alice = await chat_server.user("alice")
    laptop = await chat_server.device("alice")
    phone = await chat_server.device("alice")
    async with sockets_on_every_node(chat_server, [alice, laptop, phone]) as sockets:
        await alice.change_password(PASSWORD, NEW_PASSWORD)
        await all_closed_with_4401_within_a_second(sockets[1:])
        await still_open(sockets[0])
    assert (await alice.me()).username == "alice"
    assert [device.device_id for device in await alice.devices()] == [alice.device_id]
    for revoked in (laptop, phone):
        error = await refusal(revoked.me())
        assert (error.status, error.code) == (401, "unauthorized")
    error = await refusal(chat_server.client().login("alice", PASSWORD))
    assert (error.status, error.code) == (401, "invalid_credentials")
    assert (await chat_server.device("alice", NEW_PASSWORD)).user_id == alice.user_id


async def test_a_wrong_current_password_or_a_weak_new_one_changes_nothing(
    chat_server: RunningServer,
) -> None:
    """A wrong current password is 401 `invalid_credentials`, a new one shorter than signup
    allows is 422 `weak_password`, a missing or mistyped field 400; after each, no device
    was signed out and the old password still logs in."""
    alice = await chat_server.user("alice")
    laptop = await chat_server.device("alice")
    error = await refusal(alice.change_password("not my password", NEW_PASSWORD))
    assert (error.status, error.code) == (401, "invalid_credentials")
    error = await refusal(alice.change_password(PASSWORD, "short"))
    assert (error.status, error.code) == (422, "weak_password")
    for body in ({"current_password": PASSWORD}, {"current_password": 7, "new_password": "x" * 9}):
        error = await refusal(alice.request("POST", "/api/v1/me/password", body))
        assert (error.status, error.code) == (400, "bad_request")
    assert (await laptop.me()).username == "alice"
    await chat_server.device("alice", PASSWORD)


@pytest.mark.parametrize("chat_server_settings", [{"login_attempts_per_username": 3}])
async def test_wrong_current_passwords_count_as_failed_logins(
    chat_server: RunningServer,
) -> None:
    """Guessing the current password with a stolen token is limited as guessing at login is:
    after the failures allowed for the name, further tries are 429 (each node of a cluster
    may let one more through before it learns the shared budget is spent)."""
    alice = await chat_server.user("alice")
    answers = []
    for attempt in range(3 + len(chat_server.ws_urls)):
        error = await refusal(alice.change_password(f"guess number {attempt}", NEW_PASSWORD))
        answers.append(error.status)
    assert answers[:3] == [401, 401, 401]
    assert answers[-1] == 429
    error = await refusal(chat_server.client().login("alice", "yet another guess"))
    assert error.status == 429


# -- deleting the account -------------------------------------------------------------------


async def test_deleting_the_account_signs_out_everywhere_and_empties_the_profile(
    chat_server: RunningServer,
) -> None:
    """`DELETE /me` answers 204: every socket of the user closes with 4401 (this device's too)
    on every node, every token is 401, a login with the right password is 401
    `invalid_credentials` (not 403 `deactivated`), the profile shows `Deleted user` with an
    empty `about`, the user left every group (ownership passed on) and every friendship and
    pending request, the username stays taken, and without `erase_messages` the messages
    stay. An admin sees it as deleted and cannot reactivate it (409 `account_deleted`)."""
    alice = await chat_server.user("alice")
    laptop = await chat_server.device("alice")
    bob, carol, dave = await people(chat_server, "bob carol dave")
    await alice.update_me(about="I like trains")
    await befriend(alice, bob)
    await alice.request("POST", "/api/v1/friends", {"user_id": carol.user_id})
    await dave.request("POST", "/api/v1/friends", {"user_id": alice.user_id})
    owned = await alice.create_group("alice's", [bob.user_id, carol.user_id])
    joined = await bob.create_group("bob's", [alice.user_id])
    direct = await alice.open_direct(bob.user_id)
    sent = await alice.send_message(direct.channel_id, "remember me")
    async with sockets_on_every_node(chat_server, [alice, laptop, bob]) as sockets:
        await alice.delete_account(PASSWORD)
        await all_closed_with_4401_within_a_second(sockets[:2])
        await still_open(sockets[2])
    for token_holder in (alice, laptop):
        error = await refusal(token_holder.me())
        assert (error.status, error.code) == (401, "unauthorized")
    error = await refusal(chat_server.client().login("alice", PASSWORD))
    assert (error.status, error.code) == (401, "invalid_credentials")
    shown = await bob.user(alice.user_id)
    assert (shown.username, shown.display_name, shown.about) == ("alice", "Deleted user", "")
    assert await bob.find_users("alice") == []
    error = await refusal(chat_server.client().signup("alice", PASSWORD))
    assert (error.status, error.code) == (409, "username_taken")

    assert set((await bob.channel(owned.channel_id)).members) == {bob.user_id, carol.user_id}
    assert (await bob.channel(owned.channel_id)).owner_id == bob.user_id
    assert (await bob.channel(joined.channel_id)).members == [bob.user_id]
    assert alice.user_id in (await bob.channel(direct.channel_id)).members
    friends = await bob.request("GET", "/api/v1/friends")
    assert friends["friends"] == []
    for other in (carol, dave):
        requests = await other.request("GET", "/api/v1/friends/requests")
        assert requests == {"incoming": [], "outgoing": []}
    [kept] = (await bob.messages(direct.channel_id)).messages
    assert (kept.message_id, kept.text, kept.deleted) == (
        sent.message.message_id,
        "remember me",
        False,
    )

    admin = await chat_server.admin("root")
    [listed] = (await admin.admin_users("alice")).users
    assert (listed.deleted, listed.deactivated, listed.display_name) == (True, True, "Deleted user")
    assert listed.deleted_at is not None
    error = await refusal(admin.reactivate(alice.user_id))
    assert (error.status, error.code) == (409, "account_deleted")
    await admin.deactivate(alice.user_id)
    error = await refusal(chat_server.client().login("alice", PASSWORD))
    assert (error.status, error.code) == (401, "invalid_credentials")


async def test_nobody_can_reach_a_deleted_account_again(chat_server: RunningServer) -> None:
    """After `DELETE /me`, the account cannot be put into a group (created or added to),
    asked for friendship or given a new direct channel: 404 `not_found`, as for an
    unknown user. A block of it can still be lifted, once."""
    alice = await chat_server.user("alice")
    bob, carol = await people(chat_server, "bob carol")
    group = await bob.create_group("bob's", [carol.user_id])
    await carol.block(alice.user_id)
    await alice.delete_account(PASSWORD)
    attempts = (
        bob.create_group("again", [alice.user_id]),
        bob.add_member(group.channel_id, alice.user_id),
        bob.request("POST", "/api/v1/friends", {"user_id": alice.user_id}),
        bob.open_direct(alice.user_id),
        bob.block(alice.user_id),
    )
    for attempt in attempts:
        error = await refusal(attempt)
        assert (error.status, error.code) == (404, "not_found")
    assert alice.user_id not in (await bob.channel(group.channel_id)).members
    await carol.unblock(alice.user_id)
    assert await carol.blocks() == []
    error = await refusal(carol.unblock(alice.user_id))
    assert (error.status, error.code) == (404, "not_found")


async def test_erasing_messages_deletes_every_one_the_user_sent_for_every_member(
    chat_server: RunningServer,
) -> None:
    """With `erase_messages: true`, every message the user sent (in a group, in a direct
    channel, and in a group the user had already left) is deleted as a sender's deletion
    is: the members' sockets get `update` frames of kind `deleted`, their history shows the
    messages deleted with empty text, their sync has the `update` entries; everybody else's
    messages stay as they were."""
    alice, bob = await chat_server.user("alice"), await chat_server.user("bob")
    group = await bob.create_group("group", [alice.user_id])
    left = await bob.create_group("left", [alice.user_id])
    direct = await alice.open_direct(bob.user_id)
    mine = [
        await alice.send_message(group.channel_id, "one"),
        await alice.send_message(direct.channel_id, "two"),
        await alice.send_message(left.channel_id, "three"),
    ]
    theirs = await bob.send_message(group.channel_id, "bob stays")
    await alice.edit_message(group.channel_id, mine[0].message.message_id, "one, edited")
    await alice.remove_member(left.channel_id, alice.user_id)
    async with sockets_on_every_node(chat_server, [bob]) as [socket]:
        await alice.delete_account(PASSWORD, erase_messages=True)
        updates = await updates_until_quiet(socket, len(mine))
    erased = {(m.message.channel_id, m.message.message_id) for m in mine}
    assert {(u["channel_id"], u["message_id"]) for u in updates} == erased
    assert all((u["kind"], u["deleted_by"]) == ("deleted", alice.user_id) for u in updates)
    for channel_id, message_id in erased:
        [shown] = [
            m for m in (await bob.messages(channel_id)).messages if m.message_id == message_id
        ]
        assert (shown.deleted, shown.text, shown.sender_id) == (True, "", alice.user_id)
    [kept] = [
        m
        for m in (await bob.messages(group.channel_id)).messages
        if m.message_id == theirs.message.message_id
    ]
    assert (kept.text, kept.deleted) == ("bob stays", False)
    synced = [e["update"] for e in await whole_inbox(bob) if "update" in e]
    assert {(u["channel_id"], u["message_id"]) for u in synced if u["kind"] == "deleted"} == erased


async def test_a_wrong_password_deletes_nothing(chat_server: RunningServer) -> None:
    """`DELETE /me` with a wrong password is 401 `invalid_credentials`, without one 400; the
    account, its devices and its profile are untouched."""
    alice = await chat_server.user("alice")
    laptop = await chat_server.device("alice")
    error = await refusal(alice.delete_account("not my password", erase_messages=True))
    assert (error.status, error.code) == (401, "invalid_credentials")
    error = await refusal(alice.request("DELETE", "/api/v1/me", {"erase_messages": True}))
    assert (error.status, error.code) == (400, "bad_request")
    assert (await laptop.me()).display_name == "alice"
    await chat_server.device("alice")


# -- the export -----------------------------------------------------------------------------


async def test_the_export_is_exactly_what_the_read_endpoints_show_of_the_user(
    chat_server: RunningServer,
) -> None:
    """`GET /me/export` is `application/x-ndjson`, one `{"type": T, T: object}` per line: the
    user as `GET /me`, the devices as `GET /me/devices`, friends and pending requests as
    `GET /friends` and `/friends/requests` show them, the channels as `GET /channels`, and
    the inbox as `GET /sync` replays it (messages as they are now, with their seq; updates
    as `inbox` lines), closed by an `end` line; nothing of anyone else's channels."""
    alice = await chat_server.user("alice")
    await chat_server.device("alice", device_name="laptop")
    bob, carol, dave, eve = await people(chat_server, "bob carol dave eve")
    await befriend(alice, bob)
    await alice.request("POST", "/api/v1/friends", {"user_id": carol.user_id})
    await dave.request("POST", "/api/v1/friends", {"user_id": alice.user_id})
    group = await alice.create_group("plans", [bob.user_id])
    direct = await alice.open_direct(carol.user_id)
    first = await alice.send_message(group.channel_id, "hello @bob")
    await bob.send_message(group.channel_id, "hi")
    await carol.send_message(direct.channel_id, "psst")
    await alice.edit_message(group.channel_id, first.message.message_id, "hello again @bob")
    await bob.react(group.channel_id, first.message.message_id, "👍")
    await alice.mark_read(group.channel_id, first.message.message_id)
    await eve.create_group("not alice's", [dave.user_id])

    raw = await alice.raw_request("GET", "/api/v1/me/export")
    assert raw.status == 200
    assert raw.headers["Content-Type"].split(";")[0] == "application/x-ndjson"
    lines = [line async for line in alice.export_me()]
    assert all(set(line) == {"type", line["type"]} for line in lines)
    # `message` and `inbox` lines interleave, in seq order; the kinds otherwise come in turn.
    ranks = [EXPORT_ORDER.index(line["type"].replace("inbox", "message")) for line in lines]
    assert ranks == sorted(ranks)
    assert lines[-1]["type"] == "end"
    by_kind: dict[str, list[Any]] = {}
    for line in lines:
        by_kind.setdefault(line["type"], []).append(line[line["type"]])

    assert by_kind["user"] == [(await alice.request("GET", "/api/v1/me"))["user"]]
    assert by_kind["device"] == (await alice.request("GET", "/api/v1/me/devices"))["devices"]
    friends = (await alice.request("GET", "/api/v1/friends"))["friends"]
    requests = await alice.request("GET", "/api/v1/friends/requests")
    assert by_kind["friend"] == [
        *({"user": f["user"], "status": "accepted"} for f in friends),
        *({"user": r["user"], "status": "incoming"} for r in requests["incoming"]),
        *({"user": r["user"], "status": "outgoing"} for r in requests["outgoing"]),
    ]
    assert [f["user"]["username"] for f in by_kind["friend"]] == ["bob", "dave", "carol"]
    assert by_kind["channel"] == (await alice.request("GET", "/api/v1/channels"))["channels"]
    exported_inbox = [
        {"seq": line["message"]["seq"], "message": _without(line["message"], "seq")}
        if line["type"] == "message"
        else line["inbox"]
        for line in lines
        if line["type"] in ("message", "inbox")
    ]
    assert exported_inbox == await whole_inbox(alice)
    assert {e["update"]["kind"] for e in exported_inbox if "update" in e} == {
        "edited", "reactions",
    }  # fmt: skip
    assert by_kind["end"] == [{"inbox_entries": len(exported_inbox)}]
    assert "not alice's" not in raw.text


def _without(value: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in value.items() if k != key}


async def test_a_large_export_is_streamed_in_pieces(chat_server: RunningServer) -> None:
    """An inbox of 3 MB of text comes as a chunked body (no Content-Length) read in many
    pieces as the server writes them, and every message is in it once, in seq order."""
    alice, bob = await chat_server.user("alice"), await chat_server.user("bob")
    direct = await alice.open_direct(bob.user_id)
    texts = [f"{index:03d}" + "x" * 99_997 for index in range(30)]
    for text in texts:
        await bob.send_message(direct.channel_id, text)
    pieces = 0
    body = bytearray()
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            chat_server.url + "/api/v1/me/export",
            headers={"Authorization": f"Bearer {alice.token}"},
        ) as response,
    ):
        assert response.status == 200
        assert "Content-Length" not in response.headers
        assert response.headers.get("Transfer-Encoding") == "chunked"
        async for piece in response.content.iter_any():
            pieces += 1
            body.extend(piece)
    assert pieces > 1
    lines = [line async for line in alice.export_me()]
    exported = [line["message"]["text"] for line in lines if line["type"] == "message"]
    assert exported == texts
    seqs = [line["message"]["seq"] for line in lines if line["type"] == "message"]
    assert seqs == sorted(seqs)
    assert len(body) > 3_000_000


async def test_a_deleted_account_exports_nothing(chat_server: RunningServer) -> None:
    """The export needs a live token: once the account is deleted its token is 401 there
    too, and a token never issued is 401 as everywhere."""
    alice = await chat_server.user("alice")
    await alice.delete_account(PASSWORD)
    error = await refusal(_drain(alice.export_me()))
    assert (error.status, error.code) == (401, "unauthorized")


async def _drain(lines: AsyncIterator[dict[str, Any]]) -> None:
    async for _ in lines:
        pass


async def test_a_deletion_cut_short_is_finished_when_the_server_next_starts(
    tmp_path: Path,
) -> None:
    """The server stopped right after a deletion's first write (the deleted mark, with
    `erase_messages`), as a kill there leaves the folder: when it starts again it revokes
    the user's devices, erases the messages they sent, takes them out of their groups and
    friendships, and marks the deletion finished, without any request."""
    data = tmp_path / "data"
    async with run_server(data) as server:
        alice, bob, carol = await people(server, "alice bob carol")
        await befriend(alice, bob)
        group = await alice.create_group("team", [bob.user_id, carol.user_id])
        mine = [await alice.send_message(group.channel_id, f"mine {n}") for n in range(3)]
        theirs = await bob.send_message(group.channel_id, "bob stays")
        alice_id, bob_id, carol_id = alice.user_id, bob.user_id, carol.user_id
        tokens = {client.user_id: client.token for client in (alice, bob)}
    with sqlite3.connect(data / "users.sqlite3") as db:
        # The one write `delete_user` makes, and nothing after it.
        db.execute(
            "UPDATE users SET deleted_at = 1, deactivated_at = 1, display_name = 'Deleted user',"
            " about = '', role = 'member', deletion_unfinished = 'erase' WHERE user_id = ?",
            (alice_id,),
        )
    db.close()
    async with run_server(data) as server:
        again = server.client(tokens[bob_id])
        deadline = time.monotonic() + 10
        while (await again.channel(group.channel_id)).members != [bob_id, carol_id]:
            assert time.monotonic() < deadline, "alice never left the group"
            await asyncio.sleep(0.05)
        friends = await again.request("GET", "/api/v1/friends")
        assert alice_id not in [f["user"]["user_id"] for f in friends["friends"]]
        history = {m.message_id: m for m in (await again.messages(group.channel_id)).messages}
        assert all(history[m.message.message_id].deleted for m in mine)
        assert not history[theirs.message.message_id].deleted
        revoked = await refusal(server.client(tokens[alice_id]).me())
        assert revoked.status == 401
        assert await server.services.accounts.unfinished_deletions() == []
