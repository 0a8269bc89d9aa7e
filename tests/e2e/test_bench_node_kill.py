"""`python -m bench.node_kill` at a tiny size: the run completes, and nothing is lost.

Its timings are a benchmark's and are not asserted here.
"""

from __future__ import annotations

from pathlib import Path

from bench.node_kill import run


async def test_a_killed_nodes_devices_resync_elsewhere_and_miss_nothing(tmp_path: Path) -> None:
    result = await run(tmp_path, devices=6, rate=20, before=1.0, after=1.0)
    assert result["moved"] == 2
    assert result["resynced"] == 2
    assert result["moved_to_killed_node_again"] == 0
    assert result["messages_acked"] > 0
    assert result["lost"] == 0
    assert result["duplicated"] == 0
