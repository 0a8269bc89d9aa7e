"""The hot-path benchmark at a tiny size, so it cannot rot; no timing is asserted."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import hot_path


def test_the_hot_path_benchmark_measures_both_loops_on_both_trees() -> None:
    # This tree as its own baseline: both sides run, in their own processes.
    result = hot_path.run(members=3, messages=5, rounds=1, repeats=1, baseline=hot_path.ROOT)
    for tree in ("after", "before"):
        measured = result["us_per_message"][tree]
        assert set(measured) == set(hot_path.MEASURES)
        assert all(value > 0 for value in measured.values())
    report = hot_path.markdown(result)
    assert "| fan_out |" in report
    assert "| batch |" in report
    assert "after / before" in report


def test_without_a_baseline_the_report_gives_the_cost_per_member() -> None:
    result = hot_path.run(members=4, messages=5, rounds=1, repeats=1, baseline=None)
    assert set(result["us_per_message"]) == {"after"}
    assert "µs per member" in hot_path.markdown(result)


def test_a_baseline_without_chatapp_is_refused_rather_than_measured_as_this_tree(
    tmp_path: Path,
) -> None:
    with pytest.raises(RuntimeError, match="has no chatapp package"):
        hot_path.run(members=3, messages=2, rounds=1, repeats=1, baseline=tmp_path)
