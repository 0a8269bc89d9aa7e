"""Message search through a real server: who finds what, in which order, and what survives.

The tests that take `chat_server` also run on a two-node cluster (see
conftest.py): there the index is PostgreSQL's, written by whichever node
published each event and read by the other. The index is written off the
send path, a moment after each send, so tests wait for what they expect to
be found; they never wait for something to stay unfound (that is checked
once everything else of the same moment has been found).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import subprocess
import sys
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any

import pytest

from chatapp.client import ChatClient
from chatapp.protocol.http import MessageOut
from chatapp.testing import RunningServer, ServerProcess
from chatapp.testing.cluster_server import ClusterServer
from tests.e2e.refusals import refused

WAIT = 15.0
Key = tuple[int, int]


# -- helpers -----------------------------------------------------------------------------


def key(message: MessageOut) -> Key:
    return (message.channel_id, message.message_id)


async def every_result(
    client: ChatClient, q: str, *, channel_id: int | None = None, limit: int | None = None
) -> list[MessageOut]:
    """Every page of a search, followed by `next_before`, checked as the protocol says."""
    found: list[MessageOut] = []
    before: str | None = None
    for _ in range(10_000):
        page = await client.search(q, channel_id=channel_id, before=before, limit=limit)
        assert len(page.results) <= (limit or 20)
        found += [result.message for result in page.results]
        assert (page.next_before is None) == (not page.has_more)
        if not page.has_more:
            return found
        before = page.next_before
    raise AssertionError("the pages never end")


async def found_keys(client: ChatClient, q: str, **options: Any) -> list[Key]:
    return [key(message) for message in await every_result(client, q, **options)]


async def until_found(
    client: ChatClient, q: str, expected: list[Key], *, within: float = WAIT, **options: Any
) -> None:
    """Wait until the search answers exactly `expected`, in that order."""
    got: list[Key] = []
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        got = await found_keys(client, q, **options)
        if got == expected:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"search {q!r}: {got}, not {expected} within {within} s")


async def send(client: ChatClient, channel_id: int, text: str) -> MessageOut:
    return (await client.send_message(channel_id, text)).message


def newest_first(messages: list[MessageOut]) -> list[Key]:
    ordered = sorted(messages, key=lambda m: (m.created_at, m.channel_id, m.message_id))
    return [key(message) for message in reversed(ordered)]


@contextlib.asynccontextmanager
async def stalled_index(server: RunningServer | ClusterServer) -> AsyncIterator[None]:
    """The index cannot be written while this holds (its engine's write lock is taken)."""
    if isinstance(server, RunningServer):
        async with sqlite_write_lock(server.data_dir / "search.sqlite3"):
            yield
        return
    import asyncpg

    connection = await asyncpg.connect(server.cluster.database_url)
    try:
        transaction = connection.transaction()
        await transaction.start()
        await connection.execute("LOCK TABLE search_documents IN EXCLUSIVE MODE")
        try:
            yield
        finally:
            await transaction.rollback()
    finally:
        await connection.close()


@contextlib.asynccontextmanager
async def sqlite_write_lock(path: Path) -> AsyncIterator[None]:
    """Another process's write transaction on the search file: readers go on, writers wait."""
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        # On a thread: the server's indexer may be inside a write this has to wait for.
        await asyncio.to_thread(connection.execute, "BEGIN IMMEDIATE")
        try:
            yield
        finally:
            connection.execute("ROLLBACK")
    finally:
        connection.close()


# -- who finds what ------------------------------------------------------------------------


async def test_search_finds_the_callers_channels_now(chat_server: RunningServer) -> None:
    """Only messages of channels the caller is a member of now are found: after leaving a
    group, its messages are no longer found (and searching in it is 403 `not_member`); a
    channel that does not exist is 404; a channel joined later is searched at once."""
    alice, bob, carol = await chat_server.users(3)
    group = await alice.create_group("orchard", [bob.user_id])
    direct = await alice.open_direct(carol.user_id)
    others = await bob.create_group("elsewhere", [carol.user_id])
    in_group = await send(bob, group.channel_id, "apples in the group")
    in_direct = await send(carol, direct.channel_id, "apples in private")
    in_others = await send(carol, others.channel_id, "apples alice is not told of")

    await until_found(alice, "apples", newest_first([in_group, in_direct]))
    await until_found(bob, "apples", newest_first([in_group, in_others]))
    await until_found(alice, "apples", [key(in_group)], channel_id=group.channel_id)
    assert await refused(alice.search("apples", channel_id=others.channel_id)) == (
        403,
        "not_member",
    )
    assert await refused(alice.search("apples", channel_id=987_654)) == (404, "not_found")

    await bob.remove_member(group.channel_id, bob.user_id)
    assert await found_keys(bob, "apples") == [key(in_others)]
    assert await refused(bob.search("apples", channel_id=group.channel_id)) == (403, "not_member")
    await bob.add_member(others.channel_id, alice.user_id)
    assert await found_keys(alice, "apples") == newest_first([in_group, in_direct, in_others])


async def test_results_are_newest_first_and_page_without_gaps(chat_server: RunningServer) -> None:
    """Many matches over three channels, paged 7 at a time and at the default 20: every
    match once, newest first (created_at, then channel_id, then message_id, descending),
    each page at most `limit`, `next_before` null exactly on the last page; `limit=100`
    takes them in two pages."""
    alice, bob = await chat_server.users(2)
    channels = [
        (await alice.create_group(f"room {index}", [bob.user_id])).channel_id for index in range(3)
    ]

    async def burst(sender: ChatClient, channel_id: int, count: int) -> list[MessageOut]:
        return [await send(sender, channel_id, f"tick number {index}") for index in range(count)]

    # Concurrent senders, so that messages of different channels share milliseconds.
    bursts = await asyncio.gather(
        burst(alice, channels[0], 60), burst(bob, channels[1], 50), burst(alice, channels[2], 40)
    )
    await send(bob, channels[0], "tock, which the search leaves out")
    expected = newest_first([message for messages in bursts for message in messages])

    await until_found(alice, "tick", expected, limit=7)
    assert await found_keys(bob, "TICK") == expected
    first = await alice.search("tick", limit=100)
    assert [key(r.message) for r in first.results] == expected[:100]
    assert first.has_more
    assert first.next_before is not None
    rest = await alice.search("tick", before=first.next_before, limit=100)
    assert [key(r.message) for r in rest.results] == expected[100:]
    assert (rest.has_more, rest.next_before) == (False, None)
    default = await alice.search("tick")
    assert [key(r.message) for r in default.results] == expected[:20]


async def test_words_prefixes_phrases_and_case(chat_server: RunningServer) -> None:
    """Every word must match (AND), case-insensitively; the last word also as a prefix;
    "quoted phrases" as phrases; punctuation and FTS operators in the query are text."""
    alice, bob = await chat_server.users(2)
    channel_id = (await alice.create_group("words", [bob.user_id])).channel_id
    texts = [
        "The quick brown fox",  # 0
        "a brown quick FOX",  # 1
        "quickly, brownies!",  # 2
        "Straße und Gärten",  # 3
        "meet at 12:30, e-mail me",  # 4
        "near(apple OR pear) AND *",  # 5
    ]
    sent = [await send(bob, channel_id, text) for text in texts]

    def keys(*indexes: int) -> list[Key]:
        return newest_first([sent[index] for index in indexes])

    await until_found(alice, "near", keys(5))
    assert await found_keys(alice, "quick fox") == keys(0, 1)
    assert await found_keys(alice, "QUICK brown") == keys(0, 1)  # not quickly: not the last
    assert await found_keys(alice, "brown") == keys(0, 1, 2)  # the last: brownies too
    assert await found_keys(alice, "quick brown fox") == keys(0, 1)
    assert await found_keys(alice, '"quick brown"') == keys(0)
    assert await found_keys(alice, '"quick brown" fo') == keys(0)
    assert await found_keys(alice, "brownies quick") == keys(2)  # quick also a prefix
    assert await found_keys(alice, '"brown quick fox"') == keys(1)
    assert await found_keys(alice, '"fox quick"') == []  # a phrase is in its order
    assert await found_keys(alice, '"brown quick fo') == keys(1)  # an open quote, a prefix
    assert await found_keys(alice, "qu br fox") == []  # only the last word is a prefix
    assert await found_keys(alice, "strasse GÄRTEN") == keys(3)
    assert await found_keys(alice, "12:30") == keys(4)
    assert await found_keys(alice, "e-mail") == keys(4)
    assert await found_keys(alice, "NEAR(apple pear)") == keys(5)
    assert await found_keys(alice, "apple OR pear AND") == keys(5)
    assert await found_keys(alice, "fox OR pear") == []  # OR is a word here, not an operator


async def test_edited_and_deleted_messages(chat_server: RunningServer) -> None:
    """An edited message is found by its new text only; a deleted one never; results are
    the messages as they are now (edited_at, reactions), as history shows them."""
    alice, bob = await chat_server.users(2)
    channel_id = (await alice.create_group("changes", [bob.user_id])).channel_id
    edited = await send(alice, channel_id, "draft wording here")
    deleted = await send(alice, channel_id, "draft secret here")
    kept = await send(bob, channel_id, "draft kept here")
    await until_found(bob, "draft", newest_first([edited, deleted, kept]))

    await alice.edit_message(channel_id, edited.message_id, "final wording here")
    await alice.delete_message(channel_id, deleted.message_id)
    await bob.react(channel_id, kept.message_id, "👍")
    await until_found(bob, "draft", [key(kept)])
    await until_found(bob, "final", [key(edited)])
    assert await found_keys(bob, "secret") == []
    assert await found_keys(bob, "wording") == [key(edited)]
    history = {m.message_id: m for m in (await bob.messages(channel_id)).messages}
    for message in await every_result(bob, "here"):
        assert message == history[message.message_id]
    (reacted,) = await every_result(bob, "kept")
    assert [(r.emoji, r.user_ids) for r in reacted.reactions] == [("👍", [bob.user_id])]
    (changed,) = await every_result(bob, "final")
    assert changed.edited_at is not None
    assert changed.text == "final wording here"


async def test_limits_and_refusals(chat_server: RunningServer) -> None:
    """`q` of 1 to 200 characters with something to search for, else 422 `bad_query`;
    `limit` 1 to 100, else 400; a `before` that no search gave is 400; a `channel_id` that
    is not an id is 400; no FTS syntax in `q` is ever an error of the server."""
    alice = await chat_server.user()
    channel_id = (await alice.open_direct(alice.user_id)).channel_id
    note = await send(alice, channel_id, "x" * 199 + " plain note")
    await until_found(alice, "plain note", [key(note)])

    def code(q: str, **options: Any) -> Awaitable[tuple[int, str]]:
        return refused(alice.search(q, **options))

    assert await code("") == (422, "bad_query")
    assert await code("a" * 201) == (422, "bad_query")
    assert await found_keys(alice, "y" * 200) == []  # 200 characters: a search
    assert await found_keys(alice, "x" * 198 + " p") == [key(note)]
    for nothing in ("   ", "*", '""', "()", "-:^", "🙂"):
        assert await code(nothing) == (422, "bad_query"), nothing
    for limit in (0, 101, -1):
        assert await code("note", limit=limit) == (400, "bad_request"), limit
    assert len((await alice.search("note", limit=100)).results) == 1
    for before in ("nope", "MTIz", "", "a.b.c", "%%%"):
        assert await code("note", before=before) == (400, "bad_request"), before
    raw = await alice.raw_request("GET", "/api/v1/search?q=note&limit=ten")
    assert raw.status == 400
    raw = await alice.raw_request("GET", "/api/v1/search?q=note&channel_id=abc")
    assert raw.status == 400
    raw = await alice.raw_request("GET", "/api/v1/search")
    assert (raw.status, raw.json()["error"]["code"]) == (400, "bad_request")
    hostile = [
        'NEAR(plain note, 2)', "plain AND OR NOT note", '"plain', 'plain"note"', "note*",
        "*note", "(plain) (note)", "{text}: note", "text:plain", "plain + note", "^note",
        "plain -note", "'; DROP TABLE documents; --", "\\", "'", "plain:*", "!note & plain",
        "note <-> plain", "\x00", "plain\u200bnote", "%",
    ]  # fmt: skip
    quoted = [urllib.parse.quote(q, safe="") for q in hostile]
    for q in [*quoted, "%ED%A0%80note", "%FF%FEnote"]:
        raw = await alice.raw_request("GET", f"/api/v1/search?q={q}")
        assert raw.status in (200, 422), (q, raw.status, raw.text)


async def test_outsiders_find_nothing(chat_server: RunningServer) -> None:
    """A user in no channel finds nothing, and a caller without a valid token is 401."""
    alice, bob, mallory = await chat_server.users(3)
    group = await alice.create_group("private", [bob.user_id])
    secret = await send(alice, group.channel_id, "the nightingale sings")
    await until_found(bob, "nightingale", [key(secret)])
    answer = await mallory.search("nightingale")
    assert (answer.results, answer.has_more, answer.next_before) == ([], False, None)
    stranger = chat_server.client("A" * 43)
    assert await refused(stranger.search("nightingale")) == (401, "unauthorized")


async def test_a_stalled_index_never_holds_up_sends(chat_server: RunningServer) -> None:
    """While the index cannot be written, sends are still acknowledged at once and searches
    answer from what is indexed; once it can, everything sent meanwhile is found."""
    alice, bob = await chat_server.users(2)
    channel_id = (await alice.create_group("stall", [bob.user_id])).channel_id
    before = await send(alice, channel_id, "indexed before the stall")
    await until_found(bob, "stall", [key(before)])
    during: list[MessageOut] = []
    async with stalled_index(chat_server):
        slowest = 0.0
        for index in range(40):
            started = time.monotonic()
            during.append(await send(alice if index % 2 else bob, channel_id, f"stall {index}"))
            slowest = max(slowest, time.monotonic() - started)
        started = time.monotonic()
        meanwhile = await found_keys(bob, "stall")
        assert time.monotonic() - started < 2.0
        assert set(meanwhile) <= {key(m) for m in [before, *during]}
        await asyncio.sleep(1.0)  # the indexer has met the lock by now
        # A write waiting for the lock would hold a send for SQLite's 5 s busy timeout.
        assert slowest < 2.0, f"a send took {slowest:.2f} s while the index was stalled"
    await until_found(bob, "stall", newest_first([before, *during]))


# -- crashes and rebuilds (embedded processes) -----------------------------------------------


async def signed_in(url: str, name: str) -> ChatClient:
    client = ChatClient(url)
    await client.signup(name, "correct horse battery")
    await client.login(name, "correct horse battery")
    return client


def run_cli(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chatapp", *args, "--data-dir", str(data)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@contextlib.asynccontextmanager
async def clients_of(url: str, *names: str) -> AsyncIterator[list[ChatClient]]:
    clients = [await signed_in(url, name) for name in names]
    try:
        yield clients
    finally:
        for client in clients:
            await client.close()


@contextlib.asynccontextmanager
async def logged_in(url: str, name: str) -> AsyncIterator[ChatClient]:
    client = ChatClient(url)
    try:
        await client.login(name, "correct horse battery")
        yield client
    finally:
        await client.close()


async def test_a_killed_server_finds_everything_after_restart(tmp_path: Path) -> None:
    """Messages, an edit and a deletion the index never got to write (it was stalled) before
    a SIGKILL are all in it after the restart: the new text is found, the old one and the
    deleted message are not, and their words are gone from the search file."""
    data = tmp_path / "data"
    server = ServerProcess(data).start()
    try:
        async with clients_of(server.url, "alice", "bob") as (alice, bob):
            channel_id = (await alice.create_group("crash", [bob.user_id])).channel_id
            edited = await send(alice, channel_id, "original wording")
            deleted = await send(alice, channel_id, "forgettable remark")
            await until_found(bob, "original", [key(edited)])
            await until_found(bob, "forgettable", [key(deleted)])
            async with sqlite_write_lock(data / "search.sqlite3"):
                later = [await send(bob, channel_id, f"sent unindexed {i}") for i in range(30)]
                await alice.edit_message(channel_id, edited.message_id, "revised wording")
                await alice.delete_message(channel_id, deleted.message_id)
                await asyncio.sleep(0.5)
                server.kill()
        server.start()
        async with logged_in(server.url, "bob") as bob:
            await until_found(bob, "unindexed", newest_first(later))
            await until_found(bob, "revised", [key(edited)])
            assert await found_keys(bob, "original") == []
            assert await found_keys(bob, "forgettable") == []
        assert server.stop() == 0
    finally:
        with contextlib.suppress(Exception):
            server.kill()
    index = sqlite3.connect(data / "search.sqlite3")
    try:
        for word in ("original", "forgettable"):
            hits = index.execute("SELECT rowid FROM word_index WHERE word_index MATCH ?", (word,))
            assert hits.fetchall() == [], word
        (clean,) = index.execute("SELECT clean FROM run").fetchone()
        assert clean == 1
    finally:
        index.close()


async def test_reindex_rebuilds_a_stopped_folder(tmp_path: Path) -> None:
    """`chatapp reindex` makes a lost search file again from the messages (refused while a
    server runs on the folder); the next start finds everything at once."""
    data = tmp_path / "data"
    server = ServerProcess(data).start()
    try:
        async with clients_of(server.url, "alice") as (alice,):
            channel_id = (await alice.open_direct(alice.user_id)).channel_id
            notes = [await send(alice, channel_id, f"note {i} to self") for i in range(25)]
            await alice.delete_message(channel_id, notes[0].message_id)
            running = run_cli(data, "reindex")
            assert running.returncode == 2, running
            assert "in use" in running.stderr
        assert server.stop() == 0
        for suffix in ("", "-wal", "-shm"):
            (data / f"search.sqlite3{suffix}").unlink(missing_ok=True)
        (data / "search.sqlite3").write_bytes(b"not a database at all")
        rebuilt = run_cli(data, "reindex")
        assert rebuilt.returncode == 0, rebuilt.stderr
        assert rebuilt.stdout.startswith("indexed 25 messages"), rebuilt.stdout
        server.start()
        async with logged_in(server.url, "alice") as alice:
            assert await found_keys(alice, "self") == newest_first(notes[1:])
    finally:
        with contextlib.suppress(Exception):
            server.stop()


# -- a cluster's crashes and rebuilds --------------------------------------------------------


@contextlib.asynccontextmanager
async def two_nodes(tmp_path: Path) -> AsyncIterator[Any]:
    from chatapp.testing.cluster import local_cluster

    async with local_cluster(tmp_path, nodes=("n1", "n2")) as cluster:
        yield cluster


async def database(cluster: Any) -> Any:
    import asyncpg

    return await asyncpg.connect(cluster.database_url)


async def restarted(node: ServerProcess, *, within: float = 10.0) -> None:
    """Start a killed node again once its registry entry has expired (the presence timeout)."""
    deadline = time.monotonic() + within
    while True:
        try:
            await asyncio.to_thread(node.start)
            return
        except RuntimeError as refused:
            if "in use by another live node" not in str(refused) or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


@pytest.mark.slow
async def test_a_killed_node_catches_up_when_it_comes_back(tmp_path: Path) -> None:
    """A node killed with what it heard not yet written (its index writes were stalled) writes
    it after it restarts: its row in `search_writers` tells it the last run was cut short."""
    async with two_nodes(tmp_path) as cluster:
        alice = await cluster.user("alice", "n1")
        bob = await cluster.user("bob", "n2")
        channel_id = (await alice.create_group("nodes", [bob.user_id])).channel_id
        first = await send(alice, channel_id, "seen by the index")
        await until_found(bob, "seen", [key(first)])
        connection = await database(cluster)
        try:
            transaction = connection.transaction()
            await transaction.start()
            await connection.execute("LOCK TABLE search_documents IN EXCLUSIVE MODE")
            lost = [await send(alice, channel_id, f"lost with n1 {i}") for i in range(20)]
            await asyncio.sleep(0.5)
            cluster["n1"].kill()
            # Its sessions end now, not when PostgreSQL next writes to their closed sockets:
            # a session still waiting for the lock must never get further.
            await connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = 'chatapp-n1'"
            )
            await transaction.rollback()
        finally:
            await connection.close()
        assert await found_keys(bob, "lost") == []
        await restarted(cluster["n1"])
        await until_found(bob, "lost", newest_first(lost))


@pytest.mark.slow
async def test_reindex_on_a_running_cluster(tmp_path: Path) -> None:
    """`chatapp reindex` with the cluster's settings makes an emptied index again while
    the nodes run, and they go on indexing what is sent after."""
    async with two_nodes(tmp_path) as cluster:
        alice = await cluster.user("alice", "n1")
        bob = await cluster.user("bob", "n2")
        channel_id = (await alice.create_group("rebuild", [bob.user_id])).channel_id
        sent = [await send(alice if i % 2 else bob, channel_id, f"rebuilt {i}") for i in range(30)]
        await until_found(bob, "rebuilt", newest_first(sent))
        connection = await database(cluster)
        try:
            await connection.execute("DELETE FROM search_documents")
        finally:
            await connection.close()
        assert await found_keys(bob, "rebuilt") == []
        done = await cluster.run_cli("reindex")
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("indexed 30 messages"), done.stdout
        assert await found_keys(bob, "rebuilt") == newest_first(sent)
        after = await send(bob, channel_id, "rebuilt later")
        await until_found(alice, "rebuilt", newest_first([*sent, after]))
