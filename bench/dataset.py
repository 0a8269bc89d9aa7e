"""Fill a data folder's message store with many messages, fast, through the server's own store.

    python -m bench.dataset fill MESSAGES_DIR CHANNELS.json COUNT RESULT.json
    python -m bench.dataset merge MESSAGES_DIR PART_DIR...

`fill` writes COUNT messages with `LevelDBMessageStore.append`, thousands in
flight at once so the store's group commit writes large batches; they go
round-robin into the channels of CHANNELS.json (`{"channel_id", "members"}`,
channels that exist in the folder's user database), from their members in
turn. Several `fill`s on disjoint channels (so disjoint inboxes) run in
parallel into folders of their own, and `merge` copies their records, as
written by the store, into one. The server must not be running.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import plyvel

from chatapp.messaging.adapters import LevelDBMessageStore

IN_FLIGHT = 8192
MERGE_BATCH = 100_000


async def fill(folder: Path, channels: list[dict[str, Any]], count: int) -> dict[str, Any]:
    store = await LevelDBMessageStore.open(folder)
    started = time.perf_counter()
    created_at = int(time.time() * 1000)
    try:
        done = 0
        while done < count:
            chunk = range(done, min(count, done + IN_FLIGHT))
            await asyncio.gather(
                *(_append(store, channels, number, created_at) for number in chunk)
            )
            done = chunk.stop
    finally:
        await store.close()
    return {"messages": count, "seconds": round(time.perf_counter() - started, 2)}


async def _append(
    store: LevelDBMessageStore, channels: list[dict[str, Any]], number: int, created_at: int
) -> None:
    channel = channels[number % len(channels)]
    members: list[int] = channel["members"]
    sender = members[(number // len(channels)) % len(members)]
    await store.append(
        sender_id=sender,
        channel_id=channel["channel_id"],
        client_msg_id=f"seed-{number}",
        text=f"message {number} of the cold-start data set, about as long as a chat line",
        member_ids=members,
        created_at=created_at + number // 1000,
    )


def merge(destination: Path, parts: list[Path]) -> dict[str, Any]:
    """Copy every record of the parts into `destination`, in large unsynced batches, then sync."""
    started = time.perf_counter()
    records = 0
    database = plyvel.DB(str(destination), create_if_missing=True)
    try:
        for part in parts:
            source = plyvel.DB(str(part))
            try:
                batch = database.write_batch()
                for key, value in source.iterator():
                    batch.put(key, value)
                    records += 1
                    if records % MERGE_BATCH == 0:
                        batch.write()
                        batch = database.write_batch()
                batch.write()
            finally:
                source.close()
        database.write_batch(sync=True).write()
        database.compact_range()
    finally:
        database.close()
    return {"records": records, "seconds": round(time.perf_counter() - started, 2)}


def _run_fill(folder: Path, channels: list[dict[str, Any]], count: int) -> dict[str, Any]:
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:
        runner = asyncio.Runner()
    with runner:
        return runner.run(fill(folder, channels, count))


def main(argv: list[str]) -> int:
    if len(argv) == 5 and argv[0] == "fill":
        folder, channels_path, count, result_path = Path(argv[1]), Path(argv[2]), argv[3], argv[4]
        result = _run_fill(folder, json.loads(channels_path.read_text()), int(count))
        Path(result_path).write_text(json.dumps(result))
        return 0
    if len(argv) >= 3 and argv[0] == "merge":
        print(json.dumps(merge(Path(argv[1]), [Path(part) for part in argv[2:]])))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
