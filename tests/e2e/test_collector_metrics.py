"""/metrics shows how often the garbage collector ran and how long it held the server."""

from __future__ import annotations

import asyncio
import gc
import re
from pathlib import Path

from bench.session import collector_figures
from chatapp.testing.server import run_server


def _by_generation(metrics: str, name: str) -> dict[str, float]:
    return {
        generation: float(value)
        for generation, value in re.findall(
            rf'^{name}_total{{generation="(\d)"}} (\S+)$', metrics, re.M
        )
    }


async def test_a_collection_shows_in_the_counts_and_pauses_of_its_generation(
    tmp_path: Path,
) -> None:
    async with run_server(tmp_path / "d") as server:
        client = await server.user()
        before = (await client.raw_request("GET", "/metrics")).text
        assert set(_by_generation(before, "chatapp_gc_collections")) == {"0", "1", "2"}

        gc.collect()  # the server runs in this process: a full collection is one of its own

        after = (await client.raw_request("GET", "/metrics")).text
        counted = _by_generation(after, "chatapp_gc_collections")
        paused = _by_generation(after, "chatapp_gc_pause_seconds")
        assert counted["2"] >= _by_generation(before, "chatapp_gc_collections")["2"] + 1
        assert paused["2"] > _by_generation(before, "chatapp_gc_pause_seconds")["2"]


async def test_the_benchmark_reads_the_same_figures_from_a_running_server(tmp_path: Path) -> None:
    async with run_server(tmp_path / "d") as server:
        gc.collect()
        figures = await asyncio.to_thread(collector_figures, server.url)
    assert figures is not None
    assert len(figures["collections"]) == len(figures["seconds"]) == 3
    assert figures["collections"][2] >= 1
    assert figures["seconds"][2] > 0


def test_the_benchmark_finds_no_figures_where_nothing_answers() -> None:
    assert collector_figures("http://127.0.0.1:9") is None
