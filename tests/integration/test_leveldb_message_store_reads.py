"""Reads of the LevelDB message store run off the event loop and survive close()."""

from __future__ import annotations

import asyncio
import base64
import itertools
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import plyvel
import pytest

from chatapp.messaging import MessageStoreError
from chatapp.messaging.adapters import LevelDBMessageStore

LONG = 100_000
"""The longest text a message may have."""


async def fill(store: LevelDBMessageStore, count: int) -> None:
    """`count` messages of LONG characters in channel 1, from user 1 to user 2.

    Random text, so that LevelDB cannot compress it away and a read really
    moves LONG bytes per message.
    """
    for first in range(0, count, 50):
        await asyncio.gather(
            *(
                store.append(
                    sender_id=1,
                    channel_id=1,
                    client_msg_id=f"c{n}",
                    text=base64.b64encode(os.urandom(LONG * 3 // 4)).decode(),
                    member_ids=[1, 2],
                    created_at=n,
                )
                for n in range(first, min(first + 50, count))
            )
        )


async def longest_stall(read: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    """(the read's duration, the longest gap of a 1 ms ticker while it ran), in seconds."""
    ticks: list[float] = []
    reading = True

    async def tick() -> None:
        while reading:
            ticks.append(time.perf_counter())
            await asyncio.sleep(0.001)

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0.01)
    started = time.perf_counter()
    await read()
    ended = time.perf_counter()
    await asyncio.sleep(0.005)  # a tick after the read closes the last gap
    reading = False
    await ticker
    gaps = [b - a for a, b in itertools.pairwise(ticks) if b > started and a < ended]
    return ended - started, max(gaps)


@pytest.mark.parametrize("which", ["inbox", "history"])
async def test_a_page_of_a_thousand_long_messages_does_not_stall_the_loop(
    tmp_path: Path, which: str
) -> None:
    """While inbox or history reads 1000 messages of 100,000 characters, the loop keeps ticking.

    Read on the loop, the page would stall a 1 ms ticker for the whole read
    (one gap as long as the read). Read on a reader thread, the ticker only
    waits for the GIL now and then. The bound is generous (half the read) and
    the best of three tries counts, because the box is small and noisy.
    """
    store = await LevelDBMessageStore.open(tmp_path / "messages")
    try:
        await fill(store, 1000)

        async def read() -> None:
            if which == "inbox":
                page = await store.inbox(2, since=0, limit=1000)
                texts = [entry.message.text for entry in page.entries]
            else:
                texts = [message.text for message in (await store.history(1, limit=1000)).messages]
            assert len(texts) == 1000
            assert all(len(text) == LONG for text in texts)

        tries = [await longest_stall(read) for _ in range(3)]
    finally:
        await store.close()

    assert min(stall / duration for duration, stall in tries) < 0.5, tries


async def test_a_corrupt_table_fails_a_read_with_message_store_error(tmp_path: Path) -> None:
    """A plyvel error while reading reaches the caller as MessageStoreError, not as plyvel's own.

    The corruption is real: zeros written over the middle of every table file.
    """
    folder = tmp_path / "messages"
    store = await LevelDBMessageStore.open(folder)
    await fill(store, 100)
    await store.close()
    # Reopening turns the log into a table, so every message is in a table.
    await (await LevelDBMessageStore.open(folder)).close()
    tables = list(folder.glob("*.ldb"))
    assert tables
    for table in tables:
        with table.open("r+b") as file:
            file.seek(table.stat().st_size // 3)
            file.write(bytes(200_000))

    store = await LevelDBMessageStore.open(folder)
    try:
        with pytest.raises(MessageStoreError, match="could not read") as raised:
            await store.history(1, limit=1000)
    finally:
        await store.close()

    assert not isinstance(raised.value, plyvel.Error)
    assert isinstance(raised.value.__cause__, plyvel.Error)


CHILD = """
import asyncio, pathlib, sys
from chatapp.messaging import MessageStoreError
from chatapp.messaging.adapters import LevelDBMessageStore

def outcome(read):
    if read.cancelled():
        return "cancelled"
    error = read.exception()
    if isinstance(error, MessageStoreError):
        return "refused"
    if error is not None:
        return f"failed {error!r}"
    page = read.result()
    messages = getattr(page, "messages", None) or [e.message for e in page.entries]
    return f"read {len(messages)} {sum(len(m.text) for m in messages)}"

async def main():
    store = await LevelDBMessageStore.open(pathlib.Path(sys.argv[1]))
    reads = [asyncio.create_task(store.inbox(2, since=0, limit=1000)) for _ in range(3)]
    reads += [asyncio.create_task(store.history(1, limit=1000)) for _ in range(3)]
    await asyncio.sleep(0.02)  # the first two are on the reader threads, the rest queued
    print("running", sum(not read.done() for read in reads))
    reads[0].cancel()  # its thread reads on; close() must wait for it all the same
    await store.close()
    print("closed")
    await asyncio.wait(reads)
    for read in reads:
        print(outcome(read))
    try:
        await store.inbox(2, since=0, limit=1)
    except MessageStoreError:
        print("after close refused")

asyncio.run(main())
"""


async def test_close_while_reads_run_neither_crashes_nor_hangs(tmp_path: Path) -> None:
    """close() with long reads running and queued: the process lives and close returns.

    plyvel crashes the process when a database is closed under a read on
    another thread, so the race runs in a child process whose exit status
    tells. Each read ends with its full page or MessageStoreError (a cancelled
    one just ends), and a read after close is refused.
    """
    folder = tmp_path / "messages"
    store = await LevelDBMessageStore.open(folder)
    await fill(store, 1000)
    await store.close()

    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CHILD,
        str(folder),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(60):
            out, err = await child.communicate()
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()

    assert child.returncode == 0, err.decode()
    running, closed, *outcomes, after = out.decode().splitlines()
    assert int(running.split()[1]) >= 2
    assert closed == "closed"
    full = f"read 1000 {1000 * LONG}"
    assert outcomes[0] in {"cancelled", full}
    assert set(outcomes[1:]) <= {full, "refused"}, outcomes
    assert after == "after close refused"
