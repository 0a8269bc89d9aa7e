"""The search benchmark at a tiny size, so it cannot rot; no timing is asserted."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import search

pytestmark = pytest.mark.slow


def test_the_search_benchmark_runs_every_query_and_finds_what_it_planted(tmp_path: Path) -> None:
    result = search.measure(300, 1, tmp_path)
    found = {q["what"]: q["first_page"] for q in result["queries"]}
    assert set(found) == {what for what, _ in search.QUERIES}
    assert found["rare word"] == 1  # message 0 carries it, in one of the searcher's groups
    assert found["no match"] == 0
    for script in ("Cyrillic", "Greek", "Arabic", "Devanagari", "CJK prefix", "German, ß as ss"):
        assert found[script] > 0, script
    assert result["reindex_seconds"] > 0
    assert "| rare word |" in search.markdown(result)
