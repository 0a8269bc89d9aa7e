"""The data folder's size for the admin page: measured in a thread, shared, kept a minute."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from chatapp.clock import ManualClock
from chatapp.operators.disk_usage import DiskUsage, folder_bytes


def fill(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)


def test_a_folder_counts_every_file_below_it_as_du_does(tmp_path: Path) -> None:
    """Files in nested folders count by the blocks they take; a missing folder is None."""
    fill(tmp_path / "data" / "a", 10_000)
    fill(tmp_path / "data" / "messages" / "000001.ldb", 50_000)
    measured = folder_bytes(tmp_path / "data")
    assert measured is not None
    assert 60_000 <= measured <= 60_000 + 2 * 8192
    assert folder_bytes(tmp_path / "missing") is None


async def test_the_measure_is_kept_a_minute_and_shared_by_callers_meanwhile(
    tmp_path: Path,
) -> None:
    """Callers while a walk runs share it (one walk); for 60 s the answer is reused, then
    measured again; the walk runs off the event loop (in the function it is given)."""
    fill(tmp_path / "a", 4096)
    clock = ManualClock()
    walks = 0
    release = asyncio.Event()

    async def off_loop(work: Callable[[], int | None]) -> int | None:
        nonlocal walks
        walks += 1
        await release.wait()
        return await asyncio.to_thread(work)

    usage = DiskUsage(tmp_path, clock, off_loop=off_loop)
    waiting = [asyncio.ensure_future(usage.bytes_used()) for _ in range(5)]
    await asyncio.sleep(0)
    release.set()
    first = await asyncio.gather(*waiting)
    assert walks == 1
    assert len(set(first)) == 1
    assert first[0] is not None

    fill(tmp_path / "b", 1_000_000)
    clock.advance(59)
    assert await usage.bytes_used() == first[0]
    clock.advance(2)
    grown = await usage.bytes_used()
    assert walks == 2
    assert grown is not None
    assert grown >= first[0] + 1_000_000
