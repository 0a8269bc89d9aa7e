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
"""

from __future__ import annotations

import gc
from typing import Final

from aiohttp import web

YOUNG_THRESHOLD: Final = 20_000
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
