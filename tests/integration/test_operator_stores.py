"""Invites, the audit log and deactivation in the user store: one set of tests on SQLite and
on PostgreSQL, the races on two nodes (on SQLite, one server racing with itself)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from chatapp.accounts import UsernameTaken
from chatapp.operators import AuditEntry, AuditLog, AuditTarget, Invite, InviteStore
from chatapp.operators.adapters import SqliteAuditLog, SqliteInviteStore
from chatapp.operators.adapters.postgres_operators import PostgresAuditLog, PostgresInviteStore
from chatapp.storage import open_sqlite
from chatapp.storage.postgres import open_postgres
from tests.integration.store_engines import Database, Node, PostgresDatabase, SqliteDatabase


@dataclass
class Operators:
    invites: InviteStore
    audit: AuditLog


@pytest.fixture
async def stack() -> AsyncIterator[contextlib.AsyncExitStack]:
    async with contextlib.AsyncExitStack() as opened:
        yield opened


async def operators_on(database: Database, stack: contextlib.AsyncExitStack) -> Operators:
    """One more node's operator stores on `database`, as the composition root opens them."""
    if isinstance(database, SqliteDatabase):
        connection = await open_sqlite(database.path)
        stack.push_async_callback(connection.close)
        return Operators(SqliteInviteStore(connection), SqliteAuditLog(connection))
    assert isinstance(database, PostgresDatabase)
    pool = await open_postgres(database.url, max_size=4)
    stack.push_async_callback(pool.close)
    return Operators(PostgresInviteStore(pool), PostgresAuditLog(pool))


async def racing_operators(
    database: Database, stack: contextlib.AsyncExitStack
) -> tuple[Operators, Operators]:
    """Two nodes' stores (on SQLite, one server's twice: embedded mode is one process)."""
    first = await operators_on(database, stack)
    if database.engine == "sqlite":
        return first, first
    return first, await operators_on(database, stack)


def invite(code: str, *, uses: int = 1, expires_at: int | None = None) -> Invite:
    return Invite(code=code, uses_left=uses, expires_at=expires_at, created_at=5, created_by=None)


async def test_an_invite_is_claimed_until_used_up_or_expired(
    database: Database, stack: contextlib.AsyncExitStack
) -> None:
    """Claims take one use each while uses are left and before `expires_at`; a release gives
    one back; a deleted code is gone; the list keeps creation order, used-up ones included."""
    store = (await operators_on(database, stack)).invites
    await store.create_invite(invite("two", uses=2))
    await store.create_invite(invite("timed", uses=5, expires_at=1_000))
    assert await store.claim_invite("two", now_ms=10)
    assert await store.claim_invite("two", now_ms=10)
    assert not await store.claim_invite("two", now_ms=10)
    await store.release_invite("two")
    assert [(i.code, i.uses_left) for i in await store.list_invites()] == [("two", 1), ("timed", 5)]
    assert await store.claim_invite("timed", now_ms=999)
    assert not await store.claim_invite("timed", now_ms=1_000)
    assert not await store.claim_invite("unknown", now_ms=10)
    await store.release_invite("unknown")
    assert await store.delete_invite("timed")
    assert not await store.delete_invite("timed")
    assert await store.list_invites() == [invite("two", uses=1)]


async def test_racing_claims_spend_exactly_the_uses_there_are(
    database: Database, stack: contextlib.AsyncExitStack
) -> None:
    """Twenty claims at once, half from each node: one wins a single-use code, five a
    five-use one, and neither is left below zero."""
    one, two = await racing_operators(database, stack)
    for code, uses in (("single", 1), ("five", 5)):
        await one.invites.create_invite(invite(code, uses=uses))
        claims = await asyncio.gather(
            *(node.invites.claim_invite(code, now_ms=1) for node in [one, two] * 10)
        )
        assert sum(claims) == uses, code
    assert [i.uses_left for i in await two.invites.list_invites()] == [0, 0]


async def test_audit_events_keep_their_order_and_targets(
    database: Database, stack: contextlib.AsyncExitStack
) -> None:
    """Appended events get ascending ids; pages after an id come back oldest first, each
    target as it was given (a user, a message with its channel, an invite's code)."""
    log = (await operators_on(database, stack)).audit
    targets = [AuditTarget.user(4), AuditTarget.message(7, 3), AuditTarget.invite("c0de")]
    written = [
        await log.append(
            AuditEntry(at=100 + n, actor_id=None if n else 9, action="deactivate", target=target,
                       reason="why" if n == 0 else None)
        )
        for n, target in enumerate(targets)
    ]  # fmt: skip
    assert [e.event_id for e in written] == sorted({e.event_id for e in written})
    assert await log.events(after=0, limit=10) == written
    assert await log.events(after=written[0].event_id, limit=1) == written[1:2]
    assert await log.events(after=written[-1].event_id, limit=10) == []
    assert [e.target for e in written] == targets


async def test_deactivation_marks_the_user_and_shows_in_the_account_list(node: Node) -> None:
    """Deactivating is True once (the first reason stays), reactivating True once; the
    credentials say so; the account list filters by prefix, pages by id and shows the latest
    `last_seen_at` of any device, revoked ones too, or None without any."""
    users = [
        await node.users.create_user(
            username=name, display_name=name, password_hash="h", created_at=1
        )
        for name in ("mod_a", "mod_b", "other", "mod_c")
    ]
    a, b = users[0].user_id, users[1].user_id
    device = await node.users.create_device(user_id=a, name="d", token_hash="t1", created_at=50)
    await node.users.create_device(user_id=a, name="e", token_hash="t2", created_at=40)
    await node.users.touch_device(device.device_id, seen_at=90)
    await node.users.revoke_device(a, device.device_id, revoked_at=95)
    assert await node.users.deactivate_user(a, at=100, reason="spam")
    assert not await node.users.deactivate_user(a, at=200, reason="again")
    assert not await node.users.deactivate_user(10**9, at=200, reason=None)
    credentials = await node.users.get_credentials("mod_a")
    assert credentials is not None
    assert credentials.deactivated
    page = await node.users.list_accounts("mod_", after=0, limit=2)
    assert [(x.user.user_id, x.deactivated_at, x.deactivation_reason, x.last_seen_at)
            for x in page] == [(a, 100, "spam", 90), (b, None, None, None)]  # fmt: skip
    rest = await node.users.list_accounts("mod_", after=b, limit=5)
    assert [x.user.username for x in rest] == ["mod_c"]
    assert [x.user.username for x in await node.users.list_accounts("", after=0, limit=9)] == [
        "mod_a", "mod_b", "other", "mod_c",
    ]  # fmt: skip
    assert await node.users.list_accounts("mod%", after=0, limit=9) == []
    assert await node.users.reactivate_user(a)
    assert not await node.users.reactivate_user(a)
    again = await node.users.get_credentials("mod_a")
    assert again is not None
    assert not again.deactivated
    [shown] = await node.users.list_accounts("mod_a", after=0, limit=1)
    assert (shown.deactivated_at, shown.deactivation_reason) == (None, None)


async def test_racing_deactivations_have_one_winner(database: Database) -> None:
    """Two nodes deactivate the same user at once, ten times each: exactly one call changes it."""
    one, two = await database.racers()
    user = await one.users.create_user(
        username="alice", display_name="Alice", password_hash="h", created_at=1
    )
    results = await asyncio.gather(
        *(node.users.deactivate_user(user.user_id, at=n, reason=str(n))
          for n, node in enumerate([one, two] * 10))
    )  # fmt: skip
    assert sum(results) == 1


async def test_a_deleted_account_keeps_its_row_and_its_name_and_cannot_come_back(
    node: Node,
) -> None:
    """`delete_user` marks the account deleted in one write: deactivated (an earlier
    deactivation's time and reason stay), display name replaced, `about` emptied, role back
    to member; it answers True once. The username stays taken, the user is no longer found
    by prefix search, and reactivation leaves it deleted and deactivated."""
    admin = await node.users.create_user(
        username="gone", display_name="Gone", password_hash="h", created_at=1, role="admin"
    )
    await node.users.update_profile(admin.user_id, display_name=None, about="hello")
    other = await node.users.create_user(
        username="gone_not", display_name="Stays", password_hash="h", created_at=2
    )
    await node.users.deactivate_user(other.user_id, at=50, reason="spam")

    async def delete(user_id: int, at: int) -> bool:
        return await node.users.delete_user(
            user_id, at=at, display_name="Deleted user", erase_messages=user_id == other.user_id
        )

    assert await delete(admin.user_id, 100)
    assert not await delete(admin.user_id, 200)
    assert not await delete(10**9, 200)
    assert await delete(other.user_id, 300)
    # Unfinished until told: the second with its messages to erase.
    assert await node.users.unfinished_deletions() == [
        (admin.user_id, False), (other.user_id, True),
    ]  # fmt: skip
    await node.users.deletion_finished(admin.user_id, erase_messages=False)
    assert await node.users.unfinished_deletions() == [(other.user_id, True)]
    # A run that kept the messages does not finish one since asked to erase them.
    await node.users.deletion_finished(other.user_id, erase_messages=False)
    await node.users.erase_on_deletion(admin.user_id)
    await node.users.erase_on_deletion(10**9)
    assert await node.users.unfinished_deletions() == [
        (admin.user_id, True), (other.user_id, True),
    ]  # fmt: skip
    await node.users.deletion_finished(other.user_id, erase_messages=True)
    assert await node.users.unfinished_deletions() == [(admin.user_id, True)]
    shown = await node.users.get_user(admin.user_id)
    assert shown is not None
    assert (shown.username, shown.display_name, shown.about, shown.role) == (
        "gone", "Deleted user", "", "member",
    )  # fmt: skip
    credentials = await node.users.get_credentials("gone")
    assert credentials is not None
    assert (credentials.deleted, credentials.deactivated) == (True, True)
    with pytest.raises(UsernameTaken):
        await node.users.create_user(
            username="gone", display_name="New", password_hash="h", created_at=3
        )
    assert await node.users.find_users("gone", limit=5) == []
    assert not await node.users.reactivate_user(admin.user_id)
    accounts = await node.users.list_accounts("gone", after=0, limit=5)
    assert [(a.deleted_at, a.deactivated_at, a.deactivation_reason) for a in accounts] == [
        (100, 100, None), (300, 50, "spam"),
    ]  # fmt: skip
