"""The serving process's collector settings: start-up objects frozen, collections spaced out."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
import structlog.testing

from chatapp.bootstrap.collector import (
    OLDER_THRESHOLDS,
    YOUNG_THRESHOLD,
    CollectorPauses,
    settle_collector,
)


@pytest.fixture
def restored_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_collector")
def test_settling_freezes_what_exists_and_spaces_collections() -> None:
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    kept = [[index] for index in range(100)]

    settle_collector()

    assert gc.get_freeze_count() >= len(kept)
    assert gc.get_threshold() == (YOUNG_THRESHOLD, *OLDER_THRESHOLDS)
    assert YOUNG_THRESHOLD > 700  # CPython's default, which the module explains is too eager


def test_the_pauses_are_counted_while_installed_and_logged_when_removed() -> None:
    pauses = CollectorPauses()
    pauses.install()
    try:
        gc.collect(1)
        gc.collect(1)
        gc.collect()
    finally:
        with structlog.testing.capture_logs() as logged:
            pauses.remove()
    assert pauses.collections[1] == 2
    assert pauses.collections[2] == 1
    assert pauses.seconds[1] > 0
    assert pauses.seconds[2] > 0
    gc.collect()
    assert pauses.collections[2] == 1  # no longer counting
    (line,) = [entry for entry in logged if entry["event"] == "collector_pauses"]
    assert line["collections"] == pauses.collections
    assert len(line["seconds"]) == 3
