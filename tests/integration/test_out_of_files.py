"""The stores when the process runs out of open files, or cannot reopen: real faults, real engines.

Two real faults, neither simulated: the process's descriptors all taken
(`out_of_files`, EMFILE on every open), and directories squatting on the
names of LevelDB's next files (`squat_next_files`, EISDIR), which fails a
write and every reopen for as long as they stay. Time is the stores' own
`pause`, replaced here by fakes that let none pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import re
import resource
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import plyvel
import pytest

from chatapp.messaging import MessageStoreError
from chatapp.messaging.adapters import LevelDBMessageStore
from chatapp.messaging.adapters.leveldb_layout import OutOfResources, open_db
from chatapp.messaging.adapters.leveldb_writer import REOPEN_LONGEST_WAIT
from chatapp.presence import PresenceStoreError
from chatapp.presence.adapters import LevelDBPresenceStore
from chatapp.presence.adapters.leveldb_presence import PresenceStoreOutOfResources
from chatapp.storage import open_sqlite
from tests.integration.test_leveldb_message_store import all_history, ids, send, until_writable


@contextlib.contextmanager
def out_of_files() -> Iterator[None]:
    """Take every descriptor this process may still open, until the block ends."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # A low soft limit first, so that a few dozen descriptors exhaust it.
    resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 32, hard))
    held: list[int] = []
    try:
        while True:
            try:
                held.append(os.open(os.devnull, os.O_RDONLY))
            except OSError as error:
                if error.errno != errno.EMFILE:
                    raise
                break
        yield
    finally:
        for descriptor in held:
            os.close(descriptor)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def squat_next_files(folder: Path) -> list[Path]:
    """Directories on the names of LevelDB's next 99 files, so that creating any of them fails."""
    newest = max(int(m[1]) for p in folder.iterdir() if (m := re.match(r"(\d+)\.", p.name)))
    squatters = [folder / f"{n:06d}.log" for n in range(newest + 1, newest + 100)]
    for squatter in squatters:
        squatter.mkdir()
    return squatters


def leave(squatters: list[Path]) -> None:
    for squatter in squatters:
        squatter.rmdir()
    squatters.clear()


class ClearingPause:
    """A pause that lets no time pass: it notes each wait, runs `during` in it, and at the
    `clear_at`-th wait runs `clear`, so that the attempt after that one finds no fault."""

    def __init__(
        self,
        *,
        clear_at: int,
        clear: Callable[[], None],
        during: Callable[[], Awaitable[None]],
    ) -> None:
        self.waits: list[float] = []
        self._clear_at = clear_at
        self._clear = clear
        self._during = during

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        await self._during()
        if len(self.waits) == self._clear_at:
            self._clear()
        await asyncio.sleep(0)


class EndlessPause:
    """A pause that never ends by itself; `called` is set once something waits on it."""

    def __init__(self) -> None:
        self.called = asyncio.Event()

    async def __call__(self, seconds: float) -> None:
        self.called.set()
        await asyncio.Event().wait()


async def fill_and_fail_a_write(store: LevelDBMessageStore, folder: Path) -> list[Path]:
    """Store 60 messages of 100,000 characters in channel 1, then make the next write fail.

    The memtable is then past its 4 MiB, so the next write needs a new log
    file, whose name a squatter holds. Returns the squatters.
    """
    await asyncio.gather(
        *(send(store, f"fill{n}", members=[1], text="x" * 100_000) for n in range(60))
    )
    squatters = squat_next_files(folder)
    failed = await asyncio.gather(
        send(store, "a", members=[1, 2]),
        send(store, "b", channel_id=2, sender_id=3, members=[3]),
        return_exceptions=True,
    )
    assert all(isinstance(result, MessageStoreError) for result in failed), failed
    return squatters


async def test_a_reopen_that_fails_is_retried_with_longer_waits_until_it_opens(
    tmp_path: Path,
) -> None:
    """After a failed write the writer reopens the database; while that fails too it tries
    again, each wait twice the last up to the longest, and refuses every send meanwhile at
    once. When the fault is gone the store answers by itself, with no send stored twice, ids
    contiguous, and nothing reported as damage."""
    folder = tmp_path / "messages"
    squatters: list[Path] = []
    refused: list[BaseException] = []

    async def send_now() -> None:
        try:
            await store.submit(
                sender_id=1,
                channel_id=1,
                client_msg_id="during",
                text="while reopening",
                member_ids=[1, 2],
                created_at=1,
            )
        except MessageStoreError as refusal:
            refused.append(refusal)

    pause = ClearingPause(clear_at=7, clear=lambda: leave(squatters), during=send_now)
    store = await LevelDBMessageStore.open(folder, pause=pause)
    try:
        squatters += await fill_and_fail_a_write(store, folder)
        await until_writable(store)
        assert pause.waits == [0.05, 0.1, 0.2, 0.4, 0.8, REOPEN_LONGEST_WAIT, REOPEN_LONGEST_WAIT]
        assert len(refused) == len(pause.waits)
        assert store.damage() is None
        retried = await send(store, "a", members=[1, 2])
        other = await send(store, "b", channel_id=2, sender_id=3, members=[3])
        again = await send(store, "a", members=[1, 2])
    finally:
        leave(squatters)
        await store.close()

    assert (retried.message.message_id, retried.duplicate) == (61, False)
    assert (other.message.message_id, other.seq) == (1, 1)
    assert again.duplicate
    assert again.message.message_id == 61
    reopened = await LevelDBMessageStore.open(folder)
    try:
        stored = await all_history(reopened, 1)
        assert ids(stored) == list(range(1, 62))
        assert "during" not in {message.client_msg_id for message in stored}
    finally:
        await reopened.close()


async def test_a_store_that_cannot_reopen_still_closes_at_once(tmp_path: Path) -> None:
    """Closing the store while its writer waits to retry a reopen ends the retries: close
    returns at once, and the folder opens whole afterwards."""
    folder = tmp_path / "messages"
    pause = EndlessPause()
    store = await LevelDBMessageStore.open(folder, pause=pause)
    squatters = await fill_and_fail_a_write(store, folder)
    try:
        async with asyncio.timeout(10):
            await pause.called.wait()
            await store.close()
    finally:
        leave(squatters)
    reopened = await LevelDBMessageStore.open(folder)
    try:
        assert ids(await all_history(reopened, 1)) == list(range(1, 61))
    finally:
        await reopened.close()


async def test_a_read_out_of_files_is_refused_not_damage_and_answers_once_files_are_free(
    tmp_path: Path,
) -> None:
    """A history page whose table LevelDB cannot open for lack of descriptors (EMFILE) fails
    with `MessageStoreError`, is not reported as damage (readiness is not lost for good), and
    the same read answers as soon as descriptors are free."""
    folder = tmp_path / "messages"
    store = await LevelDBMessageStore.open(folder)
    try:
        await asyncio.gather(
            *(send(store, f"fill{n}", members=[1], text="x" * 100_000) for n in range(60))
        )
    finally:
        await store.close()
    # Opening recovers the log into a table, which LevelDB opens to check it; opened once
    # more, it has opened no table yet.
    await (await LevelDBMessageStore.open(folder)).close()
    store = await LevelDBMessageStore.open(folder)
    try:
        with out_of_files(), pytest.raises(MessageStoreError, match="Too many open files"):
            await store.history(1, after=0, limit=5)
        assert store.damage() is None
        page = await store.history(1, after=0, limit=5)
        assert ids(page.messages) == [1, 2, 3, 4, 5]
        assert store.damage() is None
    finally:
        await store.close()


async def test_opening_out_of_files_is_not_damage(tmp_path: Path) -> None:
    """A store opened while the process has no descriptor to spare is refused as out of
    resources, never as damaged (which would send the operator to `chatapp repair`)."""
    open_db(tmp_path / "messages").close()
    await (await LevelDBPresenceStore.open(tmp_path / "presence")).close()
    with out_of_files():
        with pytest.raises(OutOfResources, match="Too many open files"):
            open_db(tmp_path / "messages")
        with pytest.raises(PresenceStoreOutOfResources, match="Too many open files"):
            await LevelDBPresenceStore.open(tmp_path / "presence")
    open_db(tmp_path / "messages").close()


async def test_presence_store_reopens_by_itself_after_a_failed_write(tmp_path: Path) -> None:
    """A presence write that fails (its new log cannot be created) makes the store reopen
    the database, retrying while that fails; calls are refused meanwhile, and once the fault
    is gone saves land and are read back."""
    folder = tmp_path / "presence"
    squatters: list[Path] = []
    refusals: list[str] = []

    async def load_now() -> None:
        with pytest.raises(PresenceStoreError) as refusal:
            await store.load(1)
        refusals.append(str(refusal.value))

    pause = ClearingPause(clear_at=3, clear=lambda: leave(squatters), during=load_now)
    # A small memtable, so that a few thousand saves need a new log file.
    db = plyvel.DB(str(folder), create_if_missing=True, write_buffer_size=64 * 1024)
    store = LevelDBPresenceStore(db, folder, pause=pause)
    try:
        for user_id in range(1, 3000):
            await store.save(user_id, "online", user_id)
        squatters += squat_next_files(folder)
        with pytest.raises(PresenceStoreError):
            await save_until_refused(store, range(3000, 20_000))
        async with asyncio.timeout(10):
            while True:
                try:
                    await store.save(1, "offline", 42)
                    break
                except PresenceStoreError:
                    await asyncio.sleep(0.01)
        assert pause.waits == [0.05, 0.1, 0.2]
        assert refusals == ["the presence store is reopening after a failed write"] * 3
        assert await store.load(1) == ("offline", 42)
        assert await store.load(2999) == ("online", 2999)
    finally:
        leave(squatters)
        await store.close()


async def save_until_refused(store: LevelDBPresenceStore, user_ids: range) -> None:
    for user_id in user_ids:
        await store.save(user_id, "offline", user_id)


async def test_sqlite_opens_no_file_once_connected(tmp_path: Path) -> None:
    """Once connected, SQLite needs no new descriptor: with none to spare, writes, a checkpoint
    and statements that build temporary b-trees (DISTINCT, CREATE INDEX) all succeed."""
    connection = await open_sqlite(tmp_path / "users.sqlite3")
    try:
        await connection.execute("CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT)")
        await connection.execute("BEGIN")
        await connection.executemany(
            "INSERT INTO t (b) VALUES (?)", [(os.urandom(40).hex(),) for _ in range(20_000)]
        )
        await connection.execute("COMMIT")
        with out_of_files():
            async with connection.execute("SELECT COUNT(DISTINCT b) FROM t") as cursor:
                assert tuple(await cursor.fetchone() or ()) == (20_000,)
            await connection.execute("UPDATE t SET b = b || 'y' WHERE a % 2 = 0")
            await connection.execute("CREATE INDEX t_b ON t (b)")
            await connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        await connection.close()
