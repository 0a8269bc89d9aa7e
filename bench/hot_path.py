"""`python -m bench.hot_path`: the Python work a group message costs per recipient.

The scenarios measure the server whole, through the kernel, on a machine
that other programs share, and a change of a few per cent of CPU per
message is lost in their noise (C's p99 moved by 2.5x between runs of the
same commit on 2026-12-04). This measures, in one process and without
sockets, the two loops that run once per member of a group message:

- fan-out: `FanOut.message_accepted` to `members` live connections, each a
  real `Connection` on a real `WireSocket` whose transport keeps up and
  writes nowhere, then the turn's flush;
- batch: `prepare_send` and `form_batch` of one send to `members`, on a
  real LevelDB in a temporary folder (the counters are read once, then
  cached, as in the server).

Each is timed over `messages` messages, `rounds` times; the fastest round
counts (the others were slowed by something else). With `--baseline DIR`
the same runs are made on the `chatapp` in DIR, alternating with this
tree's, and the report gives after / before:

    python -m bench.hot_path
    python -m bench.hot_path --baseline /tmp/before   # e.g. a `git worktree` of main

Each tree is measured in a subprocess that runs this file with PYTHONPATH
set to the tree, so DIR needs no `bench` of its own.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MEASURES = ("fan_out_us", "batch_us")


class _Transport:
    """A transport that keeps up and writes nowhere (`gateway.wire.Transport`)."""

    def __init__(self) -> None:
        self.writes = 0

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0

    def write(self, data: bytes) -> None:
        pass

    def writelines(self, data: list[bytes]) -> None:
        self.writes += 1

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


async def _fan_out_us(members: int, messages: int, rounds: int) -> float:
    from chatapp.gateway.connection import Connection
    from chatapp.gateway.fanout import FanOut
    from chatapp.gateway.registry import ConnectionRegistry
    from chatapp.gateway.wire import TurnWrites, WireSocket
    from chatapp.messaging import MessageAccepted
    from chatapp.messaging.models import StoredMessage

    turn = TurnWrites()
    registry = ConnectionRegistry()
    user_ids = list(range(1, members + 1))
    transports = []
    for user_id in user_ids:
        transports.append(_Transport())
        socket = WireSocket(transports[-1], turn, max_message=1 << 20)
        connection = Connection(
            socket,
            connection_id=f"c{user_id}",
            user_id=user_id,
            device_id=1,
            queue_size=256,
        )
        connection.skip_to(0)
        registry.add(connection)
    fan_out = FanOut(registry, social=None, conversations=None, friends=None, presence=None)  # type: ignore[arg-type]
    message = StoredMessage(
        channel_id=7,
        message_id=1,
        sender_id=1,
        text="a line of a group chat, " * 4,
        created_at=1,
        client_msg_id="m",
        reply_to=None,
        mentions=[],
    )
    message_json = message.model_dump_json()
    seq = 0
    best = float("inf")
    for _ in range(rounds):
        # Events are made outside the timed part: the store's answer makes them.
        events = []
        for _ in range(messages):
            seq += 1
            events.append(
                MessageAccepted(
                    message=message,
                    inbox_seqs=dict.fromkeys(user_ids, seq),
                    origin_connection="c1",
                    message_json=message_json,
                )
            )
        started = time.perf_counter()
        for event in events:
            await fan_out.message_accepted(event)
            turn._flush()
        best = min(best, (time.perf_counter() - started) / messages)
    # Every member but the sender got every message, one write a turn: else this timed nothing.
    if [t.writes for t in transports] != [0] + [rounds * messages] * (members - 1):
        raise RuntimeError("the fan-out did not write each message once to every other member")
    return best * 1e6


async def _batch_us(members: int, messages: int, rounds: int, folder: Path) -> float:
    from chatapp.messaging.adapters import leveldb_batch
    from chatapp.messaging.adapters.leveldb_layout import open_db

    db = open_db(folder / "messages")
    committed = leveldb_batch.Counters()
    user_ids = list(range(1, members + 1))
    sent = 0
    best = float("inf")
    try:
        for _ in range(rounds):
            started = time.perf_counter()
            for _ in range(messages):
                sent += 1
                send = leveldb_batch.prepare_send(
                    channel_id=7,
                    sender_id=1,
                    client_msg_id=f"m{sent}",
                    text="a line of a group chat, " * 4,
                    member_ids=user_ids,
                    created_at=1,
                )
                batch = leveldb_batch.form_batch(db, [send], committed)
                send.future.cancel()
                if len(batch.puts) != members + 2:  # the message, its inbox entries, its receipt
                    raise RuntimeError(f"a batch of {len(batch.puts)} puts, not {members + 2}")
            best = min(best, (time.perf_counter() - started) / messages)
    finally:
        db.close()
    return best * 1e6


def _measure(source: Path, members: int, messages: int, rounds: int) -> dict[str, float]:
    import uvloop

    import chatapp

    # The venv's own chatapp would answer for a DIR that holds none, and measure itself.
    if not Path(chatapp.__file__).resolve().is_relative_to(source.resolve()):
        raise RuntimeError(f"{source} has no chatapp package (found {chatapp.__file__})")

    async def both() -> dict[str, float]:
        with tempfile.TemporaryDirectory() as folder:
            return {
                "fan_out_us": await _fan_out_us(members, messages, rounds),
                "batch_us": await _batch_us(members, messages, rounds, Path(folder)),
            }

    return uvloop.run(both())


def _measure_tree(source: Path, members: int, messages: int, rounds: int) -> dict[str, float]:
    """One measurement of the `chatapp` in `source`, in a process of its own."""
    done = subprocess.run(
        [
            sys.executable,
            "-P",  # not bench/ first on sys.path: its modules' names would shadow others
            str(Path(__file__).resolve()),
            f"--measure={source}",
            f"--members={members}",
            f"--messages={messages}",
            f"--rounds={rounds}",
        ],
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                filter(None, (str(source), os.environ.get("PYTHONPATH")))
            ),
        },
        cwd=source,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"measuring {source} failed:\n{done.stderr}")
    result: dict[str, float] = json.loads(done.stdout)
    return result


def run(
    *, members: int, messages: int, rounds: int, repeats: int, baseline: Path | None
) -> dict[str, Any]:
    """The fastest of `repeats` processes per tree, alternating trees."""
    trees = {"after": ROOT} | ({"before": baseline} if baseline else {})
    best: dict[str, dict[str, float]] = {name: {} for name in trees}
    for repeat in range(repeats):
        # Each goes first in turn, so neither gains from what the other warmed or heated.
        order = list(trees.items())
        for name, source in order[repeat % 2 :] + order[: repeat % 2]:
            measured = _measure_tree(source, members, messages, rounds)
            for key in MEASURES:
                best[name][key] = min(best[name].get(key, float("inf")), measured[key])
    return {
        "members": members,
        "messages": messages,
        "rounds": rounds,
        "repeats": repeats,
        "baseline": str(baseline) if baseline else None,
        "us_per_message": best,
    }


def markdown(result: dict[str, Any]) -> str:
    after = result["us_per_message"]["after"]
    before = result["us_per_message"].get("before")
    members = result["members"]
    lines = [
        f"Python µs per message to {members} members: the fastest round of "
        f"{result['messages']} messages, {result['rounds']} rounds in each of "
        f"{result['repeats']} processes per tree.",
        "",
    ]
    if before is None:
        lines += [
            "| loop | µs per message | µs per member, the sender included |",
            "| --- | --- | --- |",
        ]
        for key in MEASURES:
            lines.append(f"| {key[:-3]} | {after[key]:.1f} | {after[key] / members:.2f} |")
    else:
        lines += ["| loop | before | after | after / before |", "| --- | --- | --- | --- |"]
        for key in MEASURES:
            ratio = after[key] / before[key]
            lines.append(f"| {key[:-3]} | {before[key]:.1f} | {after[key]:.1f} | {ratio:.2f}x |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hot_path", description=__doc__)
    parser.add_argument("--members", type=int, default=100)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3, help="processes per tree")
    parser.add_argument("--baseline", type=Path, help="a tree whose chatapp is compared")
    parser.add_argument("--json", type=Path, help="also write the result here")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(_measure(args.measure, args.members, args.messages, args.rounds)))
        return 0
    result = run(
        members=args.members,
        messages=args.messages,
        rounds=args.rounds,
        repeats=args.repeats,
        baseline=args.baseline.resolve() if args.baseline else None,
    )
    print(markdown(result), end="")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
