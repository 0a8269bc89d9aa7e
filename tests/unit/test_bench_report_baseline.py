"""The benchmark's before-and-after table compares only what the baseline ran."""

from __future__ import annotations

from bench.report_sections import baseline_section


def test_an_embedded_baseline_gets_no_cluster_rows() -> None:
    throughput = {"acked_per_s": 6000.0, "delivered_per_s": 6000.0}
    results = {
        "meta": {"baseline": "/tmp/before"},
        "scenarios": {"B": {**throughput, "acked_per_s": 6600.0, "delivered_per_s": 6600.0}},
        "baseline": {"B": throughput},
    }

    lines = baseline_section(results)

    rows = [line for line in lines if line.startswith("| B |")]
    what = "acknowledged msg/s, server on one core"
    assert rows == [f"| B | {what} | 6,000 | 6,600 | 1.10x (better) |"]
    assert not any("three nodes" in line for line in lines)
