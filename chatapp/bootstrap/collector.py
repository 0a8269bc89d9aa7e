"""The garbage collector of a serving process, set for a server that allocates per message.

Every send makes short-lived containers (frames, dicts, futures, models), and
at CPython's default the youngest generation is collected every 700 net
allocations; with a send window of thousands of messages in flight, most of
those collections find nothing to free, and their cascades into the older
generations rescan everything the process made at start-up (the app, its
routes, schemas, caches). Measured with `python -m bench --scenarios B`
(docs/benchmarks-profile.md): the collector at its default took about a
quarter of the serving core.

So, once the app has started: what exists then lives as long as the process
and is frozen out of every collection, and the young generation waits for
`YOUNG_THRESHOLD` net allocations. Cycles are still collected, only less often;
the memory this can hold back is the garbage of that many allocations.

A young collection costs what is alive in the young generation, not what was
allocated: under load that is the sends in flight (in B, 1,600 of them, about
30,000 objects), traversed and promoted at every collection although they
die by reference count soon after (none of B's collections found a cycle).
So fewer collections cost less in all: at 20,000, B spent 8.5 to 9.7 µs a
message in the collector (about a tenth of a message's cost), in 40
collections of 20 ms and one of 110; at 100,000, 1.9 to 2.1 µs, in 3 or 4
collections of 60 ms (docs/benchmarks-profile.md). A and C, whose sends in
flight are few, ran none at either. `CollectorPauses` keeps the count and the
time, for the metrics and a log line at shutdown.
"""

from __future__ import annotations

import gc
import time
from typing import Any, Final

import structlog
from aiohttp import web

log = structlog.get_logger(__name__)

YOUNG_THRESHOLD: Final = 100_000
"""Net container allocations between collections of the youngest generation."""
OLDER_THRESHOLDS: Final = (20, 20)
"""Collections of one generation between collections of the next (CPython's are 10, 10)."""


def settle_collector() -> None:
    """Freeze what exists now and space the collections out; see the module's docstring."""
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *OLDER_THRESHOLDS)


async def settle_collector_on_startup(app: web.Application) -> None:
    """`settle_collector` as an `on_startup` handler, run once the app's stores are open."""
    del app
    settle_collector()


class CollectorPauses:
    """How many collections of each generation ran, and how long they held the process.

    A `gc.callbacks` entry while installed; the cost is two clock reads a collection.
    """

    def __init__(self) -> None:
        self.collections = [0, 0, 0]
        self.seconds = [0.0, 0.0, 0.0]
        self.collected = [0, 0, 0]
        self._began: float | None = None

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
            return
        if self._began is None:  # installed during a collection
            return
        generation = info["generation"]
        self.collections[generation] += 1
        self.seconds[generation] += time.perf_counter() - self._began
        self.collected[generation] += info["collected"]
        self._began = None

    def install(self) -> None:
        gc.callbacks.append(self)

    def remove(self) -> None:
        """Stop counting, and log the totals, for whoever reads the log after a stop."""
        if self in gc.callbacks:
            gc.callbacks.remove(self)
        log.info(
            "collector_pauses",
            collections=self.collections,
            seconds=[round(seconds, 4) for seconds in self.seconds],
            collected=self.collected,
        )
