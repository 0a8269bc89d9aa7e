"""`python -m bench.idle_memory`: what one idle, authenticated WebSocket holds in the server.

Two fresh servers, one after the other, each given the same connections
(hello'd, `ready` and `synced` received, heartbeating as scenario D's do):

- **RSS**: the server as it runs, its resident memory from /proc before and
  after the connections open, per connection;
- **tracemalloc**: the same server, started by a wrapper that starts tracing
  on SIGUSR1 and dumps a snapshot on SIGUSR2 (the hook is in the wrapper, not
  in the server: nothing is reachable over HTTP, and a server started any
  other way has none). Tracing starts once the warm-up connections have
  closed and before the measured ones open, so the snapshot holds what was
  made since and is still alive. Per connection, it is grouped by the
  innermost frame of the project or of aiohttp that made each block (so an
  `asyncio.Queue` counts where it was created), and by the line that
  allocated it.

tracemalloc counts Python's own allocations only: what the kernel holds for a
socket, and the allocator's slack, are in the RSS figure and not in its.

With `--baseline DIR` the servers of another checkout run too (`git worktree
add /tmp/base <commit>`), and the report holds both and their ratio. Output:
Markdown on stdout, and `--json PATH` for the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import procstat
from bench.loadgen.backend import Target, backend_for, bounded
from bench.loadgen.fleet import Heartbeats, close_all, connect_all, new_session
from bench.loadgen.ledger import Ledger
from bench.loadgen.link import Link
from bench.processes import PYTHON, Placement, pinned_to, raise_open_files_limit
from bench.processes import server_environment as environment
from chatapp.config import Settings
from chatapp.testing.process import wait_until_ready
from chatapp.testing.server import free_port

# The server's command with a tracemalloc hook: SIGUSR1 starts tracing (with
# the depth given), SIGUSR2 collects garbage and dumps a snapshot to the path
# in the environment (written whole, then renamed, so the reader never sees
# half of one). Tracing starts just before the connections open, so the
# snapshot holds what was made since and is still alive: what they hold.
_TRACED = """
import gc, os, runpy, signal, sys, tracemalloc
depth = int(sys.argv.pop(1))
out = os.environ["BENCH_TRACEMALLOC_SNAPSHOT"]
def start(*_):
    tracemalloc.start(depth)
def dump(*_):
    gc.collect()
    tracemalloc.take_snapshot().dump(out + ".part")
    os.replace(out + ".part", out)
signal.signal(signal.SIGUSR1, start)
signal.signal(signal.SIGUSR2, dump)
runpy.run_module("chatapp", run_name="__main__", alter_sys=True)
"""
WARM_UP_CONNECTIONS = 50
# `max_connections_per_user` at its default: more for one account are refused (4429).
DEVICES_PER_USER_LIMIT: int = Settings.model_fields["max_connections_per_user"].default
OUR_CODE = (f"{os.sep}chatapp{os.sep}", f"{os.sep}aiohttp{os.sep}", f"{os.sep}multidict{os.sep}")


@dataclass
class Sizes:
    connections: int
    users: int
    settle_seconds: float
    depth: int
    top: int


class Server:
    """`python -m chatapp serve` of one checkout, on a free port, pinned as the bench pins it."""

    def __init__(
        self, work: Path, source: Path | None, *, traced_depth: int | None, connections: int
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.snapshot_path = work / "snapshot.tracemalloc"
        work.mkdir(parents=True, exist_ok=True)
        # Room for every connection asked for (the default is 16,000), if the
        # open-file limit has it: the server lowers it otherwise, and says so.
        extra = {"CHATAPP_MAX_CONNECTIONS": str(connections + WARM_UP_CONNECTIONS)}
        env = environment(self.port, work / "data", extra, source)
        env["BENCH_TRACEMALLOC_SNAPSHOT"] = str(self.snapshot_path)
        if source is not None:
            env["PYTHONPATH"] = str(source)
        command = [PYTHON, "-m", "chatapp", "serve"]
        if traced_depth is not None:
            command = [PYTHON, "-c", _TRACED, str(traced_depth), "serve"]
        with (work / "server.log").open("ab") as log:
            self.process = subprocess.Popen(
                command,
                env=env,
                cwd=work,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=pinned_to(Placement.for_this_machine().server_cpus),
            )
        try:
            wait_until_ready(self.url, 120, self.process)
        except (RuntimeError, TimeoutError) as exc:
            self.stop()
            tail = (work / "server.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{exc}; its log ends:\n{tail}") from None

    def target(self) -> Target:
        return Target("chat", [self.url], [f"ws://127.0.0.1:{self.port}/ws"], [self.process.pid])

    def start_tracing(self) -> None:
        self.process.send_signal(signal.SIGUSR1)

    async def snapshot(self) -> tracemalloc.Snapshot:
        self.snapshot_path.unlink(missing_ok=True)
        self.process.send_signal(signal.SIGUSR2)
        deadline = time.monotonic() + 600
        while not self.snapshot_path.exists():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("the server dumped no snapshot")
            await asyncio.sleep(0.2)
        return tracemalloc.Snapshot.load(str(self.snapshot_path))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def _progress(what: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {what}", file=sys.stderr, flush=True)


async def measure(server: Server, sizes: Sizes, *, traced: bool) -> dict[str, Any]:
    """Open the connections on `server`; RSS per connection, and what tracemalloc saw."""
    _progress(f"accounts ({'traced' if traced else 'plain'} server)")
    target = server.target()
    backend = backend_for(target)
    per_user = -(-sizes.connections // sizes.users)
    try:
        accounts = await backend.accounts(sizes.users, "idle")
        tokens = await bounded(lambda a: backend.device_tokens(a, per_user), accounts, 4)
    finally:
        await backend.close()
    devices = [
        (account.user_id, token)
        for column in range(per_user)
        for account, own in zip(accounts, tokens, strict=True)
        for token in own[column : column + 1]
    ][: sizes.connections]
    ledger = Ledger()
    session = new_session()
    warm = [
        Link(i, user, token, ledger)
        for i, (user, token) in enumerate(devices[:WARM_UP_CONNECTIONS])
    ]
    links = [Link(i, user, token, ledger) for i, (user, token) in enumerate(devices)]
    beats = Heartbeats(links, interval=5.0)
    try:
        # Once through every path a connection takes, so that what is made once
        # per process (caches, interned strings) is not counted per connection.
        await connect_all(warm, session, target)
        await asyncio.gather(*(link.close() for link in warm))
        await asyncio.sleep(sizes.settle_seconds)
        before_rss = procstat.sample(target.pid).rss_bytes
        if traced:
            server.start_tracing()
            await asyncio.sleep(0.5)
        _progress(f"opening {len(links)} connections")
        # Heartbeats from the start: opening many takes longer than the idle
        # period (60 s), after which a silent socket is closed.
        beats.start()
        failures = await connect_all(links, session, target)
        await asyncio.sleep(sizes.settle_seconds)
        open_links = sum(1 for link in links if link.is_open)
        after_rss = procstat.sample(target.pid).rss_bytes
        after = await server.snapshot() if traced else None
        _progress("closing")
    finally:
        await beats.stop()
        await close_all(links, session)
    result: dict[str, Any] = {
        "connections": open_links,
        "failures": len(failures),
        # Why, in a few words each: a failure is a finding, not only a count.
        "first_failures": sorted(set(failures))[:3],
        "rss_per_connection_kib": round((after_rss - before_rss) / open_links / 1024, 2),
    }
    if after is not None:
        _progress("attributing the snapshot")
        result.update(_attribute(after, open_links, sizes.top))
    return result


def _attribute(snapshot: tracemalloc.Snapshot, count: int, top: int) -> dict[str, Any]:
    """What was made since tracing started, per connection: in all, by owner, by line."""
    noise = [tracemalloc.Filter(False, tracemalloc.__file__)]
    stats = snapshot.filter_traces(noise).statistics("traceback")
    by_owner: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    by_line: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    total = 0
    for stat in stats:
        frames = list(stat.traceback)  # oldest first
        owner = next(
            (f for f in reversed(frames) if any(part in f.filename for part in OUR_CODE)),
            frames[-1],
        )
        for table, frame in ((by_owner, owner), (by_line, frames[-1])):
            entry = table[f"{_short(frame.filename)}:{frame.lineno}"]
            entry[0] += stat.size
            entry[1] += stat.count
        total += stat.size
    return {
        "traced_bytes_per_connection": round(total / count),
        "by_owner": _table(by_owner, count, top),
        "by_line": _table(by_line, count, top),
    }


def _table(entries: dict[str, list[int]], count: int, top: int) -> list[dict[str, Any]]:
    ranked = sorted(entries.items(), key=lambda item: -item[1][0])[:top]
    return [
        {"where": where, "bytes": round(size / count), "blocks": round(blocks / count, 2)}
        for where, (size, blocks) in ranked
    ]


def _short(filename: str) -> str:
    for marker in ("site-packages/", "/chatapp/", "/lib/python3"):
        at = filename.rfind(marker)
        if at >= 0:
            return filename[at + len(marker) :] if marker != "/chatapp/" else filename[at + 1 :]
    return filename


async def run_one(source: Path | None, sizes: Sizes, work: Path) -> dict[str, Any]:
    result: dict[str, Any] = {"source": str(source) if source else "this tree"}
    for traced in (False, True) if sizes.depth else (False,):
        server = Server(
            work / ("traced" if traced else "plain"),
            source,
            traced_depth=sizes.depth if traced else None,
            connections=sizes.connections,
        )
        try:
            measured = await measure(server, sizes, traced=traced)
        finally:
            server.stop()
        if traced:
            result["traced"] = measured
        else:
            result.update(measured)
    return result


def report(results: list[dict[str, Any]]) -> str:
    lines = []
    for result in results:
        lines += [
            f"## {result['source']}: {result['connections']} idle connections",
            "",
            f"- RSS per connection: {result['rss_per_connection_kib']} KiB",
            f"- failed to open: {result['failures']}",
            *(f"  - {reason}" for reason in result.get("first_failures", [])),
        ]
        traced = result.get("traced")
        if traced is None:
            lines.append("")
            continue
        lines += [
            f"- traced by tracemalloc per connection: "
            f"{traced['traced_bytes_per_connection']} B "
            f"(RSS under tracemalloc {traced['rss_per_connection_kib']} KiB)",
            "",
            "| made by (innermost frame of chatapp or aiohttp) | bytes | blocks |",
            "| --- | ---: | ---: |",
            *(f"| `{e['where']}` | {e['bytes']} | {e['blocks']} |" for e in traced["by_owner"]),
            "",
            "| allocated at | bytes | blocks |",
            "| --- | ---: | ---: |",
            *(f"| `{e['where']}` | {e['bytes']} | {e['blocks']} |" for e in traced["by_line"]),
            "",
        ]
    if len(results) == 2:
        now, base = results
        rss = now["rss_per_connection_kib"] / base["rss_per_connection_kib"]
        ratios = f"this / baseline: RSS {rss:.2f}"
        if "traced" in now and "traced" in base:
            traced_now = now["traced"]["traced_bytes_per_connection"]
            traced = traced_now / base["traced"]["traced_bytes_per_connection"]
            ratios += f", traced {traced:.2f}"
        lines.append(ratios)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.idle_memory", description=__doc__)
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument(
        "--users",
        type=int,
        help="accounts the connections are spread over (default: 500, or more so that none "
        f"needs over {DEVICES_PER_USER_LIMIT}, the server's default per user)",
    )
    parser.add_argument("--settle", type=float, default=3.0, help="seconds before each reading")
    parser.add_argument(
        "--depth", type=int, default=16, help="tracemalloc frames per block; 0: RSS only"
    )
    parser.add_argument("--top", type=int, default=20, help="rows per table")
    parser.add_argument("--baseline", type=Path, help="another checkout, measured after this one")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args(argv)
    limit = raise_open_files_limit()
    if args.connections + 100 > limit:
        parser.error(f"{args.connections} connections need more open files than {limit}")
    users = args.users or max(500, -(-args.connections // DEVICES_PER_USER_LIMIT))
    sizes = Sizes(args.connections, users, args.settle, args.depth, args.top)
    sources: list[Path | None] = [None] if args.baseline is None else [None, args.baseline]
    results = []
    with tempfile.TemporaryDirectory(prefix="idle-memory-") as work:
        for index, source in enumerate(sources):
            results.append(asyncio.run(run_one(source, sizes, Path(work) / str(index))))
    text = report(results)
    print(text)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
